"""The dashboard: server-rendered pages a UX team reads in its weekly review.

``dashboard_routes(services, credentials)`` returns the page routes for ``create_app``. Each page
declares its permission like every route (``web/access.py``); a page a role may not open is
left out of its navigation, and answers 403 when followed anyway. A browser that is not signed
in is sent to ``/signin`` (a token form) instead of getting JSON.

Pages are built by ``stumble.dashboard`` (typed view models from the same reports the JSON API
serves) and rendered with Jinja2, autoescaped. Pages run no inline script and load nothing from
another host: styles, scripts and the chart bundle are served from ``/static``. Every table
has a CSV export (``/export/{page}/{table}.csv`` with the page's filters), which is audited.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import functools
import gzip
import hashlib
import io
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from stumble.access.audit import (
    AuditAction,
    AuditDetail,
    AuditError,
    AuditLog,
    Outcome,
    read_key,
    read_records,
    verify,
)
from stumble.access.keys import KeyRing
from stumble.access.roles import Permission, Role
from stumble.access.tokens import TokenRing
from stumble.analytics.queries import DEFAULT_MIN_GROUP_SIZE, QueryError
from stumble.analytics.rendering import format_value
from stumble.analytics.results import Table
from stumble.config import Settings
from stumble.dashboard import pages, system_pages
from stumble.dashboard.alerts_page import alerts_page
from stumble.dashboard.cache import ResultCache
from stumble.dashboard.context import PageContext, PageParamError
from stumble.dashboard.filters import RANGE_LABELS, FilterError, ViewFilters
from stumble.dashboard.fixes_page import fix_form, fixes_page
from stumble.dashboard.inventory import Inventory, take_inventory
from stumble.dashboard.model import Page
from stumble.encryption import DataKeyRing
from stumble.pipeline import PipelineStatus
from stumble.plan.model import TrackingPlan
from stumble.raw_events import (
    RawParamError,
    RawWindow,
    events_request,
    read_events_page,
    read_session,
    record_raw_read,
    rows_answered,
    session_request,
)
from stumble.reports.catalog import ReportDefaults
from stumble.review.alerts import active_silences, current_states, read_history
from stumble.review.fixes import FixBook, FixError
from stumble.storage.base import EventStore, StorageError
from stumble.web.access import (
    PUBLIC,
    Credentials,
    Principal,
    RouteAccess,
    actor_of,
    requires,
    secured,
)

log = logging.getLogger("stumble.dashboard")

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS: Final = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "cache-control": "no-store",
}
STATIC_FILES: Final = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "charts.css": "text/css; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
}
AUDIT_PAGE_LIMIT: Final = 200
MAX_TABLE_ROWS: Final = 200
"""Rows a table view shows (at 10M events a failures table has thousands: 2.5 MB of HTML)."""
SIGNIN_PATH: Final = "/signin"
EXPORT_ROUTE: Final = "/export/:page/:table"


class DashboardServices(Protocol):
    """What the pages read from the running server (``CollectorServices`` has it all)."""

    @property
    def store(self) -> EventStore: ...

    @property
    def plan(self) -> TrackingPlan: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def keys(self) -> KeyRing: ...

    @property
    def tokens(self) -> TokenRing: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def data_keys(self) -> DataKeyRing | None: ...

    @property
    def fixes(self) -> FixBook: ...

    def pipeline_status(self) -> PipelineStatus: ...


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    access: RouteAccess
    report_page: pages.PageBuilder | None = None
    """Pages built from the reports take the filter bar; the others are built by hand."""


AGGREGATES: Final = requires(Permission.READ_AGGREGATES)
NAVIGATION: Final = (
    NavItem("/", "Overview", AGGREGATES, pages.overview),
    NavItem("/funnel", "Funnels", AGGREGATES, pages.funnel),
    NavItem("/forms", "Form errors", AGGREGATES, pages.forms),
    NavItem("/operations", "Operations", AGGREGATES, pages.operations),
    NavItem("/failures", "Failures", AGGREGATES, pages.failures),
    NavItem("/compare", "Compare", AGGREGATES, pages.compare),
    NavItem("/usage", "Usage and loops", AGGREGATES, pages.usage),
    NavItem("/fixes", "Fixes", AGGREGATES),
    NavItem("/health", "Data health", requires(Permission.READ_HEALTH), pages.health),
    NavItem("/alerts", "Alerts", requires(Permission.READ_AGGREGATES, Permission.READ_HEALTH)),
    NavItem("/plan", "Tracking plan", requires(Permission.READ_AGGREGATES, Permission.READ_HEALTH)),
    NavItem("/raw", "Raw events", requires(Permission.READ_RAW)),
    NavItem("/audit", "Audit log", requires(Permission.READ_AUDIT)),
    NavItem("/admin", "Admin", requires(Permission.MANAGE_TOKENS)),
)
BY_SLUG: Final = {("overview" if item.path == "/" else item.path[1:]): item for item in NAVIGATION}


# --- rendering ----------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("stumble.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["max_table_rows"] = MAX_TABLE_ROWS
    env.filters["fmt"] = format_value
    env.filters["is_number_column"] = lambda column: column.format != "text"
    return env


def _asset_versions() -> dict[str, str]:
    """A short content hash per static file: links change when a file does, so a browser
    may cache them for long."""
    versions = {}
    for name in STATIC_FILES:
        resource = resources.files("stumble.web").joinpath("static", name)
        if resource.is_file():
            versions[name] = hashlib.sha256(resource.read_bytes()).hexdigest()[:12]
    return versions


class Renderer:
    def __init__(self) -> None:
        self.templates = _environment()
        self.assets = _asset_versions()

    def html(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self.templates.get_template(template).render(assets=self.assets, **context)
        return HTMLResponse(body, status, headers=PAGE_HEADERS)

    def problem(self, request: Request, status: int, title: str, text: str) -> HTMLResponse:
        principal = getattr(request.state, "principal", None)
        return self.html(
            "problem.html",
            status,
            title=title,
            text=text,
            nav=_nav_for(principal.role) if principal else [],
            principal=principal,
            current="",
        )


def _nav_for(role: Role) -> list[NavItem]:
    return [item for item in NAVIGATION if item.access.granted_to(role)]


def _landing(role: Role) -> str:
    allowed = _nav_for(role)
    return allowed[0].path if allowed else SIGNIN_PATH


def _local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@dataclass(frozen=True, slots=True)
class FilterBar:
    """What the filter form offers: the filters' state and each picker's choices."""

    filters: ViewFilters
    inventory: Inventory
    roles: tuple[str, ...]
    devices: tuple[str, ...]
    range_labels: Mapping[str, str]

    def environment_options(self) -> list[tuple[str, str]]:
        """Every environment with events, with its count; the chosen one even when empty."""
        options = [(e.name, f"{e.name} ({e.events:,} events)") for e in self.inventory.environments]
        if self.filters.env not in {name for name, _ in options}:
            options.append((self.filters.environment, f"{self.filters.env} (no events)"))
        return options

    def flag_options(self) -> list[tuple[str, str]]:
        return [
            option
            for flag in self.inventory.flags
            for option in ((flag, f"{flag} on"), (f"!{flag}", f"{flag} off"))
        ]

    @staticmethod
    def plain_options(
        values: Iterable[str], labels: Mapping[str, str] | None = None
    ) -> list[tuple[str, str]]:
        return [(value, (labels or {}).get(value, value)) for value in values]


def dashboard_routes(services: DashboardServices, credentials: Credentials) -> list[BaseRoute]:
    """Every page of the dashboard, the sign-in page, static files and CSV exports."""
    return DashboardPages(services, credentials).routes()


class DashboardPages:
    """The endpoints, sharing a renderer and the caches of report results and inventories."""

    def __init__(self, services: DashboardServices, credentials: Credentials) -> None:
        self.services = services
        self.credentials = credentials
        self.renderer = Renderer()
        self.reports = ResultCache()
        self.inventories = ResultCache()

    def refuse(self, request: Request, status: int, code: str) -> Response:
        if status == 401:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target = f"{SIGNIN_PATH}?{urlencode({'next': wanted})}"
            return RedirectResponse(target, 303, headers={"cache-control": "no-store"})
        text = "Your role does not include this page. Ask an administrator if you need it."
        return self.renderer.problem(request, 403, "Not available to your role", text)

    def page_route(
        self, path: str, endpoint: Callable[[Request], Awaitable[Response]], access: RouteAccess
    ) -> BaseRoute:
        return secured(path, endpoint, access, ["GET"], self.credentials, refuse=self.refuse)

    def context_for(
        self,
        filters: ViewFilters,
        query: Mapping[str, str],
        *,
        with_pipeline: bool = False,
        with_fixes: bool = False,
    ) -> PageContext:
        """Blocking (inventory, fixes, the pipeline's state): call it on a worker thread."""
        key = (filters.start, filters.end, filters.env)
        inventory = self.inventories.get_or_compute(
            key,
            lambda: take_inventory(self.services.store, filters.start, filters.end, filters.env),
        )
        chosen = filters.with_environment(filters.env or inventory.default_environment())
        return PageContext(
            store=self.services.store,
            plan=self.services.plan,
            filters=chosen,
            inventory=inventory,
            query=query,
            min_group_size=DEFAULT_MIN_GROUP_SIZE,
            cache=self.reports,
            # Only the overview shows the loop's health; only data health the pipeline.
            fixes=self.services.fixes.all() if with_fixes else (),
            pipeline=self.services.pipeline_status() if with_pipeline else None,
            defaults=ReportDefaults.from_settings(self.services.settings),
        )

    async def built(
        self, request: Request, builder: pages.PageBuilder
    ) -> tuple[Page, PageContext] | Response:
        """The page and its context, or the problem page that says why it cannot be shown."""
        query = {key: request.query_params[key] for key in request.query_params}
        try:
            filters = ViewFilters.parse(query, dt.datetime.now(dt.UTC).date())
            context = await asyncio.to_thread(
                functools.partial(
                    self.context_for,
                    filters,
                    query,
                    with_pipeline=builder is pages.health,
                    with_fixes=builder is pages.overview,
                )
            )
            page = await asyncio.to_thread(builder, context)
        except (FilterError, PageParamError, QueryError) as error:
            return self.renderer.problem(request, 400, "This view cannot be shown", str(error))
        except StorageError as error:
            log.warning("page %s failed: %s", request.url.path, type(error).__name__)
            text = "The database did not answer. Try again in a moment."
            return self.renderer.problem(request, 503, "Storage unavailable", text)
        return page, context

    def show(self, request: Request, page: Page, current: str, bar: FilterBar | None) -> Response:
        principal: Principal = request.state.principal
        return self.renderer.html(
            "page.html",
            page=page,
            nav=_nav_for(principal.role),
            current=current,
            principal=principal,
            bar=bar,
            export_query=_export_query(bar, page),
        )

    def report_endpoint(self, item: NavItem) -> Callable[[Request], Awaitable[Response]]:
        builder = item.report_page
        assert builder is not None

        async def endpoint(request: Request) -> Response:
            role = request.state.principal.role
            if item.path == "/" and not item.access.granted_to(role):
                return RedirectResponse(_landing(role), 303)
            result = await self.built(request, builder)
            if isinstance(result, Response):
                return result
            page, context = result
            plan_context = self.services.plan.context
            bar = FilterBar(
                context.filters,
                context.inventory,
                tuple(plan_context.get("role", ())),
                tuple(plan_context.get("device_type", ())),
                RANGE_LABELS,
            )
            return self.show(request, page, item.path, bar)

        return endpoint

    async def export(self, request: Request) -> Response:
        slug, table_id = request.path_params["page"], request.path_params["table"]
        item = BY_SLUG.get(slug)
        role = request.state.principal.role
        if item is None or (item.report_page is None and slug not in ("plan", "fixes")):
            return self.renderer.problem(
                request, 404, "No such export", "That table does not exist."
            )
        if not item.access.granted_to(role):
            return self.refuse(request, 403, "access.forbidden")
        if item.report_page is not None:
            result = await self.built(request, item.report_page)
            if isinstance(result, Response):
                return result
            page, context = result
            period = f"{context.filters.start}_{context.filters.end}"
        elif slug == "fixes":
            fixes = await asyncio.to_thread(self.services.fixes.all)
            page, period = fixes_page(fixes, dt.datetime.now(dt.UTC).date()), "current"
        else:
            page, period = system_pages.plan_page(self.services.plan), "current"
        table = page.tables().get(table_id)
        if table is None:
            return self.renderer.problem(
                request, 404, "No such export", "That table does not exist."
            )
        detail = AuditDetail(
            route=EXPORT_ROUTE,
            target=f"{slug}.{table_id}",
            filters=tuple(sorted(request.query_params)),
            rows=len(table.rows),
        )
        if not await _audited(self.services.audit, request, AuditAction.EXPORT, detail):
            text = "Exports are recorded in the audit log, which cannot be written just now."
            return self.renderer.problem(request, 503, "Export unavailable", text)
        filename = f"stumble-{slug}-{table_id}-{period}.csv"
        return Response(
            _csv(table),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{quote(filename)}"',
                "cache-control": "no-store",
            },
        )

    async def alerts_endpoint(self, request: Request) -> Response:
        page = await asyncio.to_thread(self._alerts_page)
        return self.show(request, page, "/alerts", None)

    def _alerts_page(self) -> Page:
        data_dir = Path(self.services.settings.data_dir)
        now = dt.datetime.now(dt.UTC)
        return alerts_page(
            current_states(data_dir), read_history(data_dir), now, active_silences(data_dir, now)
        )

    async def fixes_endpoint(self, request: Request) -> Response:
        try:
            fixes = await asyncio.to_thread(self.services.fixes.all)
        except FixError as error:
            return self.renderer.problem(request, 503, "Fixes unavailable", str(error))
        today = dt.datetime.now(dt.UTC).date()
        form = None
        if request.state.principal.role.grants(Permission.RECORD_FIXES):
            wanted = ("problem", "scenario", "owner", "expect", "env")
            prefill = {k: request.query_params[k] for k in wanted if k in request.query_params}
            form = fix_form(
                self.services.plan, await self._environments(today, prefill.get("env")), today,
                prefill,
            )  # fmt: skip
        page = fixes_page(fixes, today, form)
        return self.show(request, page, "/fixes", None)

    async def _environments(self, today: dt.date, first: str | None) -> list[str]:
        """Environments with data over the last 28 days, the dashboard's default (or ``first``)
        leading: what a fix may be checked in."""
        start = today - dt.timedelta(days=27)
        inventory = await asyncio.to_thread(
            self.inventories.get_or_compute,
            (start, today, None),
            lambda: take_inventory(self.services.store, start, today, None),
        )
        names = [env.name for env in inventory.environments]
        lead = first or inventory.default_environment()
        return [lead, *(name for name in names if name != lead)]

    async def plan_endpoint(self, request: Request) -> Response:
        return self.show(request, system_pages.plan_page(self.services.plan), "/plan", None)

    async def admin_endpoint(self, request: Request) -> Response:
        now = dt.datetime.now(dt.UTC)
        page = system_pages.admin_page(
            self.services.keys.all(), self.services.tokens.list(), self.services.settings, now
        )
        return self.show(request, page, "/admin", None)

    async def audit_endpoint(self, request: Request) -> Response:
        detail = AuditDetail(route="/audit")
        if not await _audited(self.services.audit, request, AuditAction.AUDIT_READ, detail):
            text = "Reading the audit log is itself recorded, and the log cannot be written now."
            return self.renderer.problem(request, 503, "Audit log unavailable", text)
        page = await asyncio.to_thread(_audit_page, self.services)
        return self.show(request, page, "/audit", None)

    async def raw_endpoint(self, request: Request) -> Response:
        pairs = [(k, v) for k, v in request.query_params.multi_items()]
        if not any(k == "env" for k, _ in pairs):
            today = dt.datetime.now(dt.UTC).date()
            days = self.services.settings.raw_access_days
            inventory = await asyncio.to_thread(
                take_inventory, self.services.store, today - dt.timedelta(days=days), today, None
            )
            pairs.append(("env", inventory.default_environment()))
        window = RawWindow.ending_now(self.services.settings.raw_access_days)
        try:
            raw = events_request(pairs, window)
            answer = await asyncio.to_thread(read_events_page, self.services.store, raw)
        except RawParamError as error:
            return self.renderer.problem(request, 400, "This view cannot be shown", str(error))
        except StorageError:
            return self.renderer.problem(
                request, 503, "Storage unavailable", "Try again in a moment."
            )
        if not await _raw_read_audited(
            self.services.audit, request, "/raw", raw, rows_answered(answer)
        ):
            text = "Raw reads are recorded in the audit log, which cannot be written just now."
            return self.renderer.problem(request, 503, "Raw events unavailable", text)
        env = raw.query.environment or ""
        following = None
        if answer.next is not None:
            kept = [(k, v) for k, v in pairs if k != "after"]
            following = "/raw?" + urlencode([*kept, ("after", answer.next)])
        page = system_pages.raw_page(answer, env, window.describe(), following)
        return self.show(request, page, "/raw", None)

    async def session_endpoint(self, request: Request) -> Response:
        pseudonym = request.path_params["pseudonym"]
        window = RawWindow.ending_now(self.services.settings.raw_access_days)
        try:
            raw = session_request(pseudonym, list(request.query_params.multi_items()), window)
            timeline = await asyncio.to_thread(read_session, self.services.store, raw)
        except RawParamError as error:
            return self.renderer.problem(request, 400, "This view cannot be shown", str(error))
        except StorageError:
            return self.renderer.problem(
                request, 503, "Storage unavailable", "Try again in a moment."
            )
        rows = rows_answered(timeline)
        if not await _raw_read_audited(self.services.audit, request, "/raw/session/:id", raw, rows):
            text = "Raw reads are recorded in the audit log, which cannot be written just now."
            return self.renderer.problem(request, 503, "Raw events unavailable", text)
        if timeline is None:
            text = "No such session in the raw window (pseudonyms change every day)."
            return self.renderer.problem(request, 404, "No such session", text)
        return self.show(request, system_pages.session_page(timeline, pseudonym), "/raw", None)

    async def signin_page(self, request: Request) -> Response:
        target = _local_path(request.query_params.get("next"))
        return self.renderer.html("signin.html", next=target, principal=None, nav=[], current="")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        media_type = STATIC_FILES.get(name)
        resource = resources.files("stumble.web").joinpath("static", name)
        if media_type is None or not resource.is_file():
            return Response("not found", 404, media_type="text/plain")
        # Links carry the file's content hash (?v=), so a changed file is a new URL.
        headers = {"cache-control": "public, max-age=86400", "vary": "accept-encoding"}
        body = resource.read_bytes()
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["content-encoding"] = "gzip"
            body = _gzipped(name, body)
        return Response(body, media_type=media_type, headers=headers)

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            self.page_route(item.path, self.report_endpoint(item), item.access)
            for item in NAVIGATION
            if item.report_page is not None and item.path != "/"
        ]
        routes += [
            # Anyone signed in may ask for "/": roles without reports are sent to their first page.
            self.page_route("/", self.report_endpoint(NAVIGATION[0]), requires(*Permission)),
            self.page_route("/plan", self.plan_endpoint, BY_SLUG["plan"].access),
            self.page_route("/fixes", self.fixes_endpoint, BY_SLUG["fixes"].access),
            self.page_route("/alerts", self.alerts_endpoint, BY_SLUG["alerts"].access),
            self.page_route("/admin", self.admin_endpoint, BY_SLUG["admin"].access),
            self.page_route("/audit", self.audit_endpoint, BY_SLUG["audit"].access),
            self.page_route("/raw", self.raw_endpoint, BY_SLUG["raw"].access),
            self.page_route(
                "/raw/session/{pseudonym}", self.session_endpoint, BY_SLUG["raw"].access
            ),
            self.page_route(
                "/export/{page}/{table}.csv",
                self.export,
                requires(Permission.READ_AGGREGATES, Permission.READ_HEALTH),
            ),
            secured(SIGNIN_PATH, self.signin_page, PUBLIC, ["GET"]),
            secured("/static/{name}", self.static, PUBLIC, ["GET"]),
        ]
        return routes


@functools.lru_cache(maxsize=len(STATIC_FILES))
def _gzipped(name: str, body: bytes) -> bytes:
    """Static files compressed once per process (the chart bundle: 885 kB, 307 kB gzipped)."""
    return gzip.compress(body, compresslevel=9, mtime=0)


def _export_query(bar: FilterBar | None, page: Page) -> str:
    items = bar.filters.query_items() if bar is not None else []
    items += list(page.extra_params.items())
    return urlencode(items)


def _csv(table: Table) -> bytes:
    """The table as CSV: numbers unformatted (ms and fractions, the units in the header), and
    text that a spreadsheet would run as a formula made inert."""
    out = io.StringIO()
    writer = csv.writer(out)
    units = {"ms": " (ms)", "share": " (fraction)"}
    writer.writerow([column.name + units.get(column.format, "") for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(value) for value in row])
    return out.getvalue().encode("utf-8")


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def _audited(
    audit: AuditLog, request: Request, action: AuditAction, detail: AuditDetail
) -> bool:
    """Whether the record was written (fsynced); the action goes ahead only then."""
    actor = actor_of(request.state.principal)
    try:
        await asyncio.to_thread(audit.record, actor, action, Outcome.OK, detail)
    except AuditError as error:
        log.warning("audit record failed: %s", type(error).__name__)
        return False
    return True


async def _raw_read_audited(
    audit: AuditLog, request: Request, route: str, raw: Any, rows: int
) -> bool:
    actor = actor_of(request.state.principal)
    try:
        await asyncio.to_thread(record_raw_read, audit, actor, route, raw, rows)
    except AuditError as error:
        log.warning("raw read refused, the audit log cannot be written: %s", type(error).__name__)
        return False
    return True


def _audit_page(services: DashboardServices) -> Page:
    audit = services.audit
    reading = read_records(audit.path, data_keys=services.data_keys)
    try:
        verification = verify(audit.path, read_key(audit.key_path), data_keys=services.data_keys)
    except (OSError, AuditError):
        verification = None
    records = reading.records[-AUDIT_PAGE_LIMIT:]
    return system_pages.audit_page(records, verification, len(reading.unreadable_lines))
