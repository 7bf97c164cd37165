"""Wiring: the services one stumble process runs and the one ASGI app that serves them.

The edges (``collector/`` for ingest, ``web/`` for the read API and pages, ``cli/``) never
import each other; they meet here. ``create_app(settings)`` builds everything from a data
directory; the lifespan opens the spool (recovering a torn tail), migrates the store, starts
the loader thread and a task that picks up key changes made by ``stumble keys`` while the
server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from stumble.access.audit import (
    AuditAction,
    AuditDetail,
    AuditError,
    AuditLog,
    read_records,
)
from stumble.access.keys import KeyRing, WriteKey
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing, time_zone
from stumble.access.roles import Permission
from stumble.access.sessions import SessionStore
from stumble.access.tokens import TokenError, TokenRing
from stumble.admission import AdmissionRules, TimeRules
from stumble.analytics.frustration import FrustrationThresholds
from stumble.collector.enrich import Enricher
from stumble.collector.ingest import BatchIngest, IngestLimits, RateLimiter
from stumble.collector.loader import Loader
from stumble.collector.metrics import CollectorMetrics
from stumble.collector.offline import OfflineIngest
from stumble.collector.quarantine import Quarantine
from stumble.config import Settings
from stumble.encryption import DataKeyRing, load_data_keys
from stumble.events import IDENTIFIER_MAX_LENGTH, IDENTIFIER_PATTERN, ROUTE_MAX_LENGTH
from stumble.pipeline import PipelineStatus
from stumble.plan.load import default_plan_path, load_plan
from stumble.plan.model import TrackingPlan
from stumble.retention import RetentionPolicy
from stumble.review.alerts import AlertJob
from stumble.review.calendar import review_zone
from stumble.review.delivery import Deliverer
from stumble.review.digest import DigestJob, load_fixes
from stumble.review.fixes import FixBook, FixJob
from stumble.review.scheduler import Job, run_jobs_forever
from stumble.rollups import RollupMaintainer
from stumble.spool import Spool, SpoolConfig
from stumble.storage import DuckDBStore, EventStore
from stumble.web.access import (
    PUBLIC,
    WRITE_KEY,
    Credentials,
    ProxySignOn,
    actor_of,
    declared,
    requires,
    secured,
    undeclared_routes,
)
from stumble.web.admin import admin_routes
from stumble.web.api import report_routes
from stumble.web.dashboard import dashboard_routes
from stumble.web.raw import raw_routes
from stumble.web.review import review_routes
from stumble.web.security import add_security, allowed_hosts
from stumble.web.signin import session_routes

READ_METRICS: Final = Permission.READ_METRICS
READ_HEALTH: Final = Permission.READ_HEALTH
READ_AUDIT: Final = Permission.READ_AUDIT
AUDIT_DIGEST_CHECK_S: Final = 30.0
AUDIT_READ_LIMIT: Final = 1000

log = logging.getLogger("stumble.collector")
DB_FILE: Final = "stumble.duckdb"
SDK_FILES: Final = {
    "stumble.js": "text/javascript",
    "stumble.mjs": "text/javascript",
    "stumble-vitals.js": "text/javascript",
    "stumble-errors.js": "text/javascript",
}


class CollectorServices:
    """Everything one collector process owns, opened from a data directory."""

    def __init__(self, settings: Settings, store: EventStore | None = None) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        # Private whatever the umask: write keys, pseudonym secrets and events live here.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        secrets_dir = self.data_dir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        # Encryption at rest: on when a data key is configured (file or STUMBLE_DATA_KEY).
        self.data_keys: DataKeyRing | None = load_data_keys(settings.data_key_file, self.data_dir)
        self.keys = KeyRing(self.data_dir)
        self.tokens = TokenRing(self.data_dir)
        self.sessions = SessionStore(self.tokens)
        self.credentials = Credentials(
            self.tokens, self.sessions, ProxySignOn.from_settings(settings)
        )
        self.audit = AuditLog.in_data_dir(
            self.data_dir,
            digest_interval_s=settings.audit_digest_interval_s,
            data_keys=self.data_keys,
        )
        self.plan: TrackingPlan = load_plan(
            Path(settings.plan) if settings.plan else default_plan_path()
        )
        self.rules = AdmissionRules(self.plan, self.time_rules())
        self.spool = Spool(
            self.data_dir / "spool",
            SpoolConfig(
                max_segment_bytes=settings.spool_max_segment_bytes,
                max_segment_age_s=settings.spool_max_segment_age_s,
                max_unloaded_bytes=settings.spool_max_unloaded_bytes,
                fsync=settings.spool_fsync,
                retry_after_s=float(settings.retry_after_s),
            ),
            data_keys=self.data_keys,
        )
        self.store = store or DuckDBStore(
            self.data_dir / DB_FILE,
            threads=settings.duckdb_threads,
            memory_limit=settings.duckdb_memory_limit,
            data_keys=self.data_keys,
        )
        self.session_keys = SessionKeyRing(secrets_dir, time_zone(settings.session_key_time_zone))
        self.enricher = Enricher(self.session_keys, EventIdKey(secrets_dir))
        self.quarantine = Quarantine()
        self.fixes = FixBook(self.data_dir)
        self.metrics = CollectorMetrics()
        self.loader = Loader(
            spool=self.spool,
            store=self.store,
            quarantine=self.quarantine,
            metrics=self.metrics,
            session_keys=self.session_keys,
            retention=RetentionPolicy.from_settings(settings),
            interval_s=settings.loader_interval_s,
            audit=self.audit,
            rollups=self._rollups(),
        )
        self.metrics.bind_spool(self.spool.stats, self._loader_lag_s)

    def _rollups(self) -> RollupMaintainer | None:
        """Daily rollups for stores that run SQL (a test double has none)."""
        if not isinstance(self.store, DuckDBStore):
            return None
        return RollupMaintainer(
            self.store,
            self.plan,
            interval_s=self.settings.rollup_interval_s,
            frustration=FrustrationThresholds.from_settings(self.settings),
        )

    def review_jobs(self) -> list[Job]:
        """The review loop's scheduled work: the weekly digest, the alert rules and the fixes
        due for verification, all notifying through one deliverer (SMTP and webhooks)."""
        s = self.settings
        deliverer = Deliverer(s, audit=self.audit)
        hours, minutes = (int(part) for part in s.fix_check_time.split(":"))
        return [
            DigestJob(s, self.store, self.plan, deliverer, fixes=lambda: load_fixes(self.data_dir)),
            AlertJob(
                store=self.store,
                plan=self.plan,
                settings=s,
                notifier=deliverer,
                audit=self.audit,
                environment=s.review_environment,
            ),
            FixJob(
                self.fixes,
                self.store,
                self.plan,
                zone=review_zone(s.review_timezone),
                check_time=dt.time(hours, minutes),
                notifier=deliverer,
                audit=self.audit,
            ),
        ]

    def pipeline_status(self) -> PipelineStatus:
        """The loader and the spool now (blocking: the spool's stats may wait for an fsync)."""
        status = self.loader.status
        stats = self.spool.stats()
        return PipelineStatus(
            loader_alive=self.loader.alive(),
            segments_loaded=status.segments_loaded,
            rows_loaded=status.rows_loaded,
            duplicates_dropped=status.duplicates,
            last_error=status.last_error,
            unloaded_bytes=stats.unloaded_bytes,
            sealed_segments=stats.sealed_segments,
            oldest_sealed_age_s=stats.oldest_sealed_age_s or None,
        )

    def _loader_lag_s(self) -> float:
        return float(self.spool.stats().oldest_sealed_age_s or 0.0)

    def open(self) -> None:
        report = self.spool.open()
        if report.bytes_dropped:
            log.warning(
                "spool recovery dropped a torn tail: %d bytes, %d lines",
                report.bytes_dropped,
                report.lines_dropped,
            )
        self.store.migrate()
        self.audit.open()
        self.loader.run_once()  # catch up before taking traffic

    def start_loader(self) -> None:
        self.loader.start()

    def close(self) -> None:
        self.spool.close()
        self.loader.stop()
        self.store.close()
        with contextlib.suppress(AuditError):  # the shutdown digest is best effort
            self.audit.close()

    def time_rules(self) -> TimeRules:
        return TimeRules(
            max_age_ms=self.settings.max_event_age_days * 86_400_000,
            max_future_ms=self.settings.max_future_skew_s * 1000,
        )

    def offline_ingest(self, key: WriteKey) -> OfflineIngest:
        """Bulk loading without HTTP (simulator, demo history) through the same guard."""
        return OfflineIngest(
            rules=self.rules,
            key=key,
            enricher=self.enricher,
            store=self.store,
            work_dir=self.data_dir / "offline",
            max_events=self.settings.max_events_per_batch,
            quarantine=self.quarantine,
            data_keys=self.data_keys,
        )

    def batch_endpoint(self) -> BatchIngest:
        s = self.settings
        return BatchIngest(
            keys=self.keys,
            rules=lambda: self.rules,
            spool=self.spool,
            enricher=self.enricher,
            quarantine=self.quarantine,
            metrics=self.metrics,
            limits=IngestLimits(
                max_body_bytes=s.max_body_bytes,
                max_events=s.max_events_per_batch,
                body_read_timeout_s=s.body_read_timeout_s,
            ),
            rate_limiter=RateLimiter(s.rate_limit_events_per_s, s.rate_limit_burst),
        )


def create_app(
    settings: Settings,
    *,
    store: EventStore | None = None,
    extra_routes: Callable[[CollectorServices], list[BaseRoute]] | None = None,
) -> Starlette:
    """The whole server; ``extra_routes`` adds pages (the demo's), each declaring its access."""
    services = CollectorServices(settings, store)
    batch_endpoint = services.batch_endpoint()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        services.open()
        services.start_loader()
        # Everything built so far (plan, rules, detectors' tables, imported modules) lives as
        # long as the server: freezing it spares every later gen-2 collection from walking it
        # again (measured: 27 ms pauses that fed the p99 of the 202).
        gc.collect()
        gc.freeze()
        reload_task = asyncio.create_task(_reload_credentials_forever(services))
        digest_task = asyncio.create_task(_sign_audit_log_forever(services.audit))
        review_task = asyncio.create_task(run_jobs_forever(services.review_jobs()))
        try:
            yield
        finally:
            reload_task.cancel()
            digest_task.cancel()
            review_task.cancel()
            batch_endpoint.close()
            await asyncio.to_thread(services.close)

    creds = services.credentials
    routes: list[BaseRoute] = [
        declared(Route("/v1/batch", batch_endpoint, methods=["POST", "OPTIONS"]), WRITE_KEY),
        secured("/v1/config", _config_endpoint(services), WRITE_KEY, ["GET"]),
        secured("/healthz", _healthz, PUBLIC, ["GET"]),
        secured("/readyz", _readyz_endpoint(services), PUBLIC, ["GET"]),
        secured("/sdk/{name}", _sdk_file, PUBLIC, ["GET"]),
        secured("/metrics", _metrics_endpoint(services), requires(READ_METRICS), ["GET"], creds),
        secured(
            "/api/v1/health", _health_endpoint(services), requires(READ_HEALTH), ["GET"], creds
        ),
        *report_routes(services, creds),
        *raw_routes(services, creds, services.audit, raw_access_days=settings.raw_access_days),
        *session_routes(creds, services.audit, secure_cookies=bool(settings.tls_cert)),
        secured("/api/v1/audit", _audit_endpoint(services), requires(READ_AUDIT), ["GET"], creds),
        *review_routes(services, creds),
        *admin_routes(services, creds),
        *dashboard_routes(services, creds),
    ]
    if extra_routes is not None:
        routes.extend(extra_routes(services))
    app = Starlette(routes=routes, lifespan=lifespan)
    missing = undeclared_routes(app)
    if missing:
        raise RuntimeError(f"routes without an access declaration: {', '.join(missing)}")
    app.state.services = services
    add_security(app, allowed_hosts(settings))
    return app


async def _sign_audit_log_forever(audit: AuditLog) -> None:
    """A digest record every ``audit_digest_interval_s`` (the log checks whether one is due)."""
    while True:
        await asyncio.sleep(AUDIT_DIGEST_CHECK_S)
        try:
            await asyncio.to_thread(audit.maybe_write_digest)
        except AuditError as error:
            log.warning("could not sign the audit log: %s", type(error).__name__)


async def _reload_credentials_forever(services: CollectorServices) -> None:
    """``stumble keys`` and ``stumble tokens`` change files; a running server sees a revocation
    within a second."""
    while True:
        await asyncio.sleep(1.0)
        for name, reload in (
            ("write keys", services.keys.reload),
            ("tokens", services.tokens.reload),
        ):
            try:
                reload()
            except (OSError, ValueError, TokenError) as error:
                log.warning("could not reload %s: %s", name, type(error).__name__)


# --- endpoints ----------------------------------------------------------------------------


def _config_endpoint(services: CollectorServices) -> Callable[[Request], Any]:
    async def config(request: Request) -> Response:
        key = services.keys.authenticate(request.query_params.get("key", ""))
        if key is None:
            return JSONResponse({"error": "key.unknown_or_revoked", "status": 401}, 401)
        origin = request.headers.get("origin")
        if not key.allows_origin(origin):
            return JSONResponse({"error": "origin.not_allowed", "status": 403}, 403)
        body = {
            "enabled": key.enabled,
            "sample_rate": key.sample_rate,
            "flush_interval_ms": key.flush_interval_ms,
            "max_batch_events": min(100, services.settings.max_events_per_batch),
            "identifier_pattern": IDENTIFIER_PATTERN,
            "max_identifier_length": IDENTIFIER_MAX_LENGTH,
            "max_route_length": ROUTE_MAX_LENGTH,
            "max_digit_run": 8,
            "schema_version": services.plan.schema_version,
        }
        # private: the answer belongs to one write key (it is in the URL), so no shared cache
        # between a browser and the collector may keep it and hand it to anyone else.
        headers = {"cache-control": "private, max-age=300", "vary": "origin"}
        if origin is not None:
            headers["access-control-allow-origin"] = origin
        return JSONResponse(body, headers=headers)

    return config


async def _healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _readyz_endpoint(services: CollectorServices) -> Callable[[Request], Any]:
    async def readyz(_: Request) -> Response:
        checks = {
            "spool_writable": await asyncio.to_thread(_spool_writable, services.spool.directory),
            "loader_alive": services.loader.alive(),
        }
        ready = all(checks.values())
        return JSONResponse({"ready": ready, **checks}, 200 if ready else 503)

    return readyz


def _spool_writable(directory: Path) -> bool:
    """The directory accepts writes and its file system has room for at least one segment."""
    try:
        stat = os.statvfs(directory)
    except OSError:
        return False
    return os.access(directory, os.W_OK) and stat.f_bavail * stat.f_frsize > 1024 * 1024


def _metrics_endpoint(services: CollectorServices) -> Callable[[Request], Any]:
    async def metrics(_: Request) -> Response:
        # The spool's stats may wait behind an fsync: never block the event loop on it.
        stats = await asyncio.to_thread(services.spool.stats)
        body = await asyncio.to_thread(services.metrics.render, stats)
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

    return metrics


def _audit_endpoint(services: CollectorServices) -> Callable[[Request], Any]:
    """``GET /api/v1/audit?since=<epoch ms>``: the latest records (auditor, admin); reading
    the log is itself recorded, and refused when that record cannot be written."""

    async def audit(request: Request) -> Response:
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            return JSONResponse({"error": "audit.bad_since", "status": 400}, 400)
        actor = actor_of(request.state.principal)
        detail = AuditDetail(route="/api/v1/audit", filters=("since",))
        try:
            await asyncio.to_thread(
                services.audit.record, actor, AuditAction.AUDIT_READ, detail=detail
            )
        except AuditError:
            return JSONResponse({"error": "audit.unavailable", "status": 503}, 503)
        reading = await asyncio.to_thread(
            read_records, services.audit.path, since_ms=int(since), data_keys=services.data_keys
        )
        records = reading.records[-AUDIT_READ_LIMIT:]
        body = {
            "records": msgspec.to_builtins(records),
            "unreadable_lines": reading.unreadable_lines,
        }
        return JSONResponse(body, headers={"cache-control": "no-store"})

    return audit


def _health_endpoint(services: CollectorServices) -> Callable[[Request], Any]:
    async def health(_: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(health_report, services))

    return health


def health_report(services: CollectorServices) -> dict[str, Any]:
    """Loader, spool and quarantine state: what ``stumble health`` and the API show."""
    pipeline = services.pipeline_status()
    today = dt.datetime.now(dt.UTC).date()
    counts = services.store.ingest_counts(today - dt.timedelta(days=30), today)
    return {
        "loader": {
            "alive": pipeline.loader_alive,
            "segments_loaded": pipeline.segments_loaded,
            "rows_loaded": pipeline.rows_loaded,
            "duplicates_dropped": pipeline.duplicates_dropped,
            "last_error": pipeline.last_error,
        },
        "spool": {
            "unloaded_bytes": pipeline.unloaded_bytes,
            "sealed_segments": pipeline.sealed_segments,
            "oldest_sealed_age_s": pipeline.oldest_sealed_age_s or 0.0,
        },
        "quarantine": [
            {
                "day": c.day.isoformat(),
                "environment": c.environment,
                "event_name": c.event_name,
                "outcome": c.outcome,
                "reason": c.reason,
                "field_path": c.field_path,
                "count": c.count,
            }
            for c in counts
        ],
    }


async def _sdk_file(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = SDK_FILES.get(name)
    if media_type is None:
        return PlainTextResponse("not found", 404)
    resource = resources.files("stumble.collector").joinpath("sdk", name)
    if not resource.is_file():
        return PlainTextResponse("SDK not built", 404)
    return Response(
        resource.read_bytes(),
        media_type=media_type,
        headers={"cache-control": "public, max-age=3600", "access-control-allow-origin": "*"},
    )
