"""The demo service desk that ``stumble demo`` serves next to the collector.

``demo_routes(services)`` returns the routes to pass as ``create_app(extra_routes=...)``:

* ``/demo/...``: the static app (``web/demo/``); any other page path under it gets
  ``index.html``, so deep links such as ``/demo/requests/new?ui=2`` work;
* ``/demo/config.js``: the SDK's endpoint (this origin), the write key and the plan's schema
  version;
* ``/demo/api/...``: a stand-in back end with small artificial delays. Its bodies are closed
  Structs that forbid unknown fields: it takes choices from lists and yes/no check results,
  never typed text, so nothing a person types has a way out of the page.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
import json
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal, TypeVar

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from stumble.access.keys import DEV_KEY_FILE
from stumble.app import CollectorServices
from stumble.web.access import PUBLIC, declared

PAGE_FILES: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# The page loads scripts, styles and data from this origin only; the SDK posts here too.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_BODY_BYTES: Final = 4096
MAX_CREATED_REQUESTS: Final = 1000
MAX_EXPORT_JOBS: Final = 100
MAX_EXPORT_ROWS: Final = 5000
NO_STORE: Final = {"cache-control": "no-store"}

RequestType = Literal["access", "hardware", "software", "contract_change"]
Category = Literal["new", "change", "incident"]
Priority = Literal["normal", "high", "low"]
ReportFormat = Literal["xlsx", "pdf", "csv"]

REQUEST_TYPES: Final[tuple[str, ...]] = RequestType.__args__  # type: ignore[attr-defined]
CATEGORIES: Final[tuple[str, ...]] = Category.__args__  # type: ignore[attr-defined]
PRIORITIES: Final[tuple[str, ...]] = Priority.__args__  # type: ignore[attr-defined]
TITLES: Final[dict[str, tuple[str, ...]]] = {
    "access": ("Access to the accounting system", "VPN access", "Shared folder rights"),
    "hardware": ("Replace a laptop battery", "Second monitor", "Printer on floor 3"),
    "software": ("Install an office suite", "Licence renewal", "Update the bank client"),
    "contract_change": ("Change the payment terms", "Extend a service contract"),
}


# --- request bodies: closed, so no free text fits ------------------------------------------


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    """Sign-in takes no credentials: they stay in the page."""


class StepCheck(msgspec.Struct, forbid_unknown_fields=True):
    step: Annotated[int, Meta(ge=1, le=3)]
    iin_bin_check_digit_ok: bool


class NewRequest(msgspec.Struct, forbid_unknown_fields=True):
    request_type: RequestType
    category: Category
    priority: Priority


class ExportOrder(msgspec.Struct, forbid_unknown_fields=True):
    report_format: ReportFormat
    days: Annotated[int, Meta(ge=1, le=3660)]


# --- the stand-in back end -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceRequest:
    id: str
    request_type: str
    category: str
    priority: str
    status: str
    created: str
    title: str


@dataclasses.dataclass(slots=True)
class ExportJob:
    id: str
    report_format: str
    rows: int
    ready_at: float
    """``time.monotonic()`` when the file is ready."""


Body = TypeVar("Body")


class DemoBackend:
    """In-memory requests and export jobs; every answer comes after a short, random delay.

    ``latency`` scales the delays (0 answers at once)."""

    def __init__(self, *, seed: int | None = None, latency: float = 1.0) -> None:
        self._rng = random.Random(seed)  # noqa: S311 -- pretend latency and fake rows, not secrets
        self._latency = latency
        self._catalogue = _catalogue(random.Random(7))  # noqa: S311 -- the same fake list always
        self._created: OrderedDict[str, ServiceRequest] = OrderedDict()
        self._jobs: OrderedDict[str, ExportJob] = OrderedDict()
        self._next_request = 2001
        self._next_job = 100_001

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/demo/api/auth/login", self.sign_in, methods=["POST"]),
            Route("/demo/api/search", self.search, methods=["GET"]),
            Route("/demo/api/requests/check", self.check_step, methods=["POST"]),
            Route("/demo/api/requests", self.create_request, methods=["POST"]),
            Route("/demo/api/requests/{request_id}", self.get_request, methods=["GET"]),
            Route("/demo/api/reports/export", self.start_export, methods=["POST"]),
            Route("/demo/api/reports/export/{job_id}", self.export_status, methods=["GET"]),
            Route("/demo/api/reports/export/{job_id}/file", self.export_file, methods=["GET"]),
        ]

    async def _pause(self, low_s: float, high_s: float) -> None:
        await asyncio.sleep(self._rng.uniform(low_s, high_s) * self._latency)

    async def sign_in(self, request: Request) -> Response:
        return await _with_body(request, SignIn, self._signed_in)

    async def _signed_in(self, _: SignIn) -> Response:
        await self._pause(0.15, 0.4)
        return JSONResponse({"signed_in": True}, headers=NO_STORE)

    async def search(self, request: Request) -> Response:
        wanted = request.query_params.get("type", "")
        if wanted and wanted not in REQUEST_TYPES:
            return _error(400, "search.unknown_type")
        await self._pause(0.2, 0.9)
        found = [r for r in self._all_requests() if not wanted or r.request_type == wanted]
        return JSONResponse({"results": [_public(r) for r in found]}, headers=NO_STORE)

    async def check_step(self, request: Request) -> Response:
        return await _with_body(request, StepCheck, self._checked)

    async def _checked(self, check: StepCheck) -> Response:
        await self._pause(0.3, 0.8)  # the registry look-up people wait for at step 2
        if not check.iin_bin_check_digit_ok:
            return JSONResponse({"field_errors": ["iin_bin"]}, 422, headers=NO_STORE)
        return JSONResponse({"ok": True}, headers=NO_STORE)

    async def create_request(self, request: Request) -> Response:
        return await _with_body(request, NewRequest, self._created_request)

    async def _created_request(self, new: NewRequest) -> Response:
        await self._pause(0.3, 1.2)
        record = ServiceRequest(
            id=f"RQ-{self._next_request}",
            request_type=new.request_type,
            category=new.category,
            priority=new.priority,
            status="registered",
            created=dt.date.today().isoformat(),  # noqa: DTZ011 -- the server's local day
            title=TITLES[new.request_type][0],
        )
        self._next_request += 1
        _remember(self._created, record.id, record, MAX_CREATED_REQUESTS)
        return JSONResponse(_public(record), 201, headers=NO_STORE)

    async def get_request(self, request: Request) -> Response:
        wanted = request.path_params["request_id"]
        await self._pause(0.1, 0.4)
        for record in self._all_requests():
            if record.id == wanted:
                return JSONResponse(_public(record), headers=NO_STORE)
        return _error(404, "request.not_found")

    async def start_export(self, request: Request) -> Response:
        return await _with_body(request, ExportOrder, self._started_export)

    async def _started_export(self, order: ExportOrder) -> Response:
        await self._pause(0.2, 0.5)
        rows = min(MAX_EXPORT_ROWS, order.days * self._rng.randint(20, 60))
        # a bigger report takes longer, as the simulated history's exports do
        seconds = min(4.0, 1.0 + rows / 2000) * self._latency
        job = ExportJob(
            f"EX-{self._next_job}", order.report_format, rows, time.monotonic() + seconds
        )
        self._next_job += 1
        _remember(self._jobs, job.id, job, MAX_EXPORT_JOBS)
        return JSONResponse({"id": job.id, "status": "running"}, 202, headers=NO_STORE)

    async def export_status(self, request: Request) -> Response:
        job = self._jobs.get(request.path_params["job_id"])
        if job is None:
            return _error(404, "export.not_found")
        await self._pause(0.05, 0.2)
        if time.monotonic() < job.ready_at:
            return JSONResponse({"id": job.id, "status": "running"}, headers=NO_STORE)
        size = len(self._report_file(job))
        body = {"id": job.id, "status": "ready", "rows": job.rows, "file_size": size}
        return JSONResponse(body, headers=NO_STORE)

    async def export_file(self, request: Request) -> Response:
        job = self._jobs.get(request.path_params["job_id"])
        if job is None or time.monotonic() < job.ready_at:
            return _error(404, "export.not_ready")
        headers = {**NO_STORE, "content-disposition": f'attachment; filename="{job.id}.csv"'}
        return Response(self._report_file(job), media_type="text/csv", headers=headers)

    def _report_file(self, job: ExportJob) -> bytes:
        """The same rows for the same job (its id seeds them); CSV whatever format was asked."""
        rng = random.Random(job.id)  # noqa: S311 -- fake report rows
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["request", "type", "priority", "status"])
        for number in range(job.rows):
            request_type = rng.choice(REQUEST_TYPES)
            writer.writerow([f"RQ-{1000 + number}", request_type, rng.choice(PRIORITIES), "closed"])
        return out.getvalue().encode()

    def _all_requests(self) -> list[ServiceRequest]:
        return [*reversed(self._created.values()), *self._catalogue]


def _catalogue(rng: random.Random) -> list[ServiceRequest]:
    """Two dozen existing requests for search to find."""
    today = dt.date.today()  # noqa: DTZ011 -- the server's local day
    records = []
    for number in range(1001, 1025):
        request_type = rng.choice(REQUEST_TYPES)
        records.append(
            ServiceRequest(
                id=f"RQ-{number}",
                request_type=request_type,
                category=rng.choice(CATEGORIES),
                priority=rng.choice(PRIORITIES),
                status=rng.choice(("registered", "in_progress", "done")),
                created=(today - dt.timedelta(days=rng.randint(1, 60))).isoformat(),
                title=rng.choice(TITLES[request_type]),
            )
        )
    return records


def _public(record: ServiceRequest) -> dict[str, str]:
    return dataclasses.asdict(record)


K = TypeVar("K")
V = TypeVar("V")


def _remember(store: OrderedDict[K, V], key: K, value: V, cap: int) -> None:
    store[key] = value
    while len(store) > cap:
        store.popitem(last=False)


async def _with_body(
    request: Request, shape: type[Body], handle: Callable[[Body], Awaitable[Response]]
) -> Response:
    """Decode a small JSON body into ``shape`` (unknown fields refused), then ``handle`` it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _error(413, "body.too_large")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return _error(413, "body.too_large")
    try:
        body = msgspec.json.decode(raw, type=shape)
    except msgspec.DecodeError:
        return _error(400, "body.invalid")
    return await handle(body)


def _error(status: int, reason: str) -> Response:
    return JSONResponse({"error": reason, "status": status}, status, headers=NO_STORE)


# --- the pages ----------------------------------------------------------------------------


def _page_file(name: str) -> bytes:
    return resources.files("stumble.web").joinpath("demo", name).read_bytes()


async def _page(request: Request) -> Response:
    """A file of the app, else ``index.html`` for any page path (the app routes in the browser)."""
    path = request.path_params["path"]
    if path == "api" or path.startswith("api/"):
        return _error(404, "api.not_found")
    name = path if path in PAGE_FILES else "index.html"
    if name == "index.html" and "." in path.rsplit("/", 1)[-1]:
        return PlainTextResponse("not found", 404)  # a missing asset, not a page
    headers = {"cache-control": "no-cache", "content-security-policy": CONTENT_SECURITY_POLICY}
    return Response(_page_file(name), media_type=PAGE_FILES[name], headers=headers)


async def _to_app(_: Request) -> Response:
    return RedirectResponse("/demo/", 308)


def _config_script(
    services: CollectorServices, write_key: str | None
) -> Callable[[Request], Awaitable[Response]]:
    async def config_js(_: Request) -> Response:
        settings = {
            "endpoint": "",  # the collector is this same origin
            "key": write_key or read_dev_key(services.data_dir) or "",
            "schemaVersion": services.plan.schema_version,
        }
        script = f"window.stumbleDemo = {json.dumps(settings)};\n"
        return Response(script, media_type="text/javascript; charset=utf-8", headers=NO_STORE)

    return config_js


def read_dev_key(data_dir: Path) -> str | None:
    """The dev key's token as ``stumble serve`` or ``stumble demo`` saved it, if any."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def demo_routes(
    services: CollectorServices,
    *,
    write_key: str | None = None,
    backend: DemoBackend | None = None,
) -> list[BaseRoute]:
    """The demo's routes. ``write_key`` defaults to the dev key saved in the data directory
    (read per request, so a key made after start-up is picked up).

    All public: they are the demo service desk's own pages and stand-in back end, not stumble's
    data (its config script holds only the dev write key, which reads nothing)."""
    routes = [
        Route("/demo", _to_app, methods=["GET"]),
        Route("/demo/config.js", _config_script(services, write_key), methods=["GET"]),
        *(backend or DemoBackend()).routes(),
        Route("/demo/{path:path}", _page, methods=["GET"]),
    ]
    return [declared(route, PUBLIC) for route in routes]
