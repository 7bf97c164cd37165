"""``stumble demo``: a small service desk instrumented with the browser SDK, served next to the
collector, with a few weeks of simulated history so the reports show something at once.

The history goes through the collector's own admission step (privacy guard, plan, time rules)
and enrichment, exactly as a batch over HTTP would, before the server starts, and is loaded
into the database. It is added once: a database that already holds events is left alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from stumble.access.keys import DEV_KEY_FILE, KeyRing, KeyRingError, normalise_origin
from stumble.access.roles import Role
from stumble.cli.common import CommandError, add_data_options, settings_from
from stumble.cli.serve import bootstrap_data_dir, dev_key
from stumble.config import Settings

if TYPE_CHECKING:  # the collector is imported when a command runs: `stumble --help` stays fast
    from stumble.app import CollectorServices

DEMO_ADMIN: Final = "demo_admin"
DEMO_ADMIN_LIFETIME: Final = dt.timedelta(days=1)
SIGN_IN_LINK_LIFETIME: Final = dt.timedelta(hours=1)
DEFAULT_HISTORY_DAYS: Final = 21
DEFAULT_HISTORY_SESSIONS: Final = 3000
DEMO_RETENTION_DAYS: Final = 30
HISTORY_USER_AGENT: Final = "stumble-demo-history"
WILDCARD_HOSTS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 -- names, not a bind

log = logging.getLogger("stumble.demo")


class HistoryError(CommandError):
    """The simulated history could not be added; the message says why (never a value)."""


@dataclass(frozen=True, slots=True)
class HistoryReport:
    sessions: int
    events: int
    accepted: int
    rejected: int


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="serve a demo service desk instrumented with the SDK, with simulated history",
    )
    add_data_options(demo)
    demo.add_argument("--host", help="bind address (default 127.0.0.1)")
    demo.add_argument("--tls-cert", help="PEM certificate: serve HTTPS (with --tls-key)")
    demo.add_argument("--tls-key", help="PEM private key of --tls-cert")
    demo.add_argument("--port", type=int, help="port (default 8710)")
    demo.add_argument(
        "--history-days",
        type=int,
        default=DEFAULT_HISTORY_DAYS,
        help=f"days of simulated history before today (default {DEFAULT_HISTORY_DAYS})",
    )
    demo.add_argument(
        "--history-sessions",
        type=int,
        default=DEFAULT_HISTORY_SESSIONS,
        help=f"simulated sessions in all (default {DEFAULT_HISTORY_SESSIONS})",
    )
    demo.add_argument("--no-history", action="store_true", help="add no simulated history")
    demo.set_defaults(func=_demo)


# --- the write key the page uses ----------------------------------------------------------


def demo_origins(settings: Settings) -> list[str]:
    """The origins a browser on this machine uses for the demo page."""
    hosts = ["127.0.0.1", "localhost"]
    if settings.host not in WILDCARD_HOSTS and settings.host not in hosts:
        hosts.append(settings.host)
    origins = []
    for host in hosts:
        try:
            origins.append(normalise_origin(f"http://{host}:{settings.port}"))
        except KeyRingError:
            log.warning("the bind address is not usable in an origin; the page needs 127.0.0.1")
    return origins


def ensure_demo_key(settings: Settings) -> str:
    """The dev key's token, allowing the demo's origins; a new dev key if it is gone or revoked."""
    data_dir = Path(settings.data_dir)
    ring = KeyRing(data_dir)
    origins = demo_origins(settings)
    token = dev_key(settings)
    key = ring.authenticate(token) if token else None
    if token is None or key is None:
        token, _ = ring.create("dev", origins, label="stumble demo")
        key_file = data_dir / DEV_KEY_FILE
        key_file.write_text(token + "\n", encoding="utf-8")
        key_file.chmod(0o600)
        return token
    missing = [origin for origin in origins if origin not in key.origins]
    if missing:
        # a data directory first started on another port: the page's origin must be allowed
        ring.update(key.key_id, origins=[*key.origins, *missing])
    return token


# --- simulated history --------------------------------------------------------------------


def fill_history(
    services: CollectorServices,
    write_key: str,
    *,
    days: int,
    sessions: int,
    seed: int = 0,
) -> HistoryReport:
    """Simulate ``sessions`` sessions over the ``days`` days before today and admit them
    through the collector's own admission step (``CollectorServices.offline_ingest``), in
    batches as a client would send them, received now (so retention keeps them).

    The UI version changes half-way, from 1.4.2 to 2.0.0, as in the seed's story."""
    # Imported here: the simulator is only needed for this, and `stumble --help` stays fast.
    from stumble.simulate import SimulationParams, simulate_sessions  # noqa: PLC0415

    key = services.keys.authenticate(write_key)
    if key is None:
        raise HistoryError("the demo write key is not usable")
    params = SimulationParams(
        sessions=sessions, days=days, seed=seed, ui_version_change_day=days // 2
    )
    ingest = services.offline_ingest(key)
    simulated = sent = 0
    for session in simulate_sessions(params, services.plan):
        simulated += 1
        sent += len(session.events)
        # sent_at is now, not the simulated send time: the collector corrects clock skew
        # with it, and an old one would move every event to the moment of the replay.
        now = int(time.time() * 1000)
        ingest.add(session.events, sent_at=now, received_at_ms=now, user_agent=HISTORY_USER_AGENT)
    result = ingest.close()
    return HistoryReport(simulated, sent, result.accepted, result.rejected)


def _fill_once(settings: Settings, write_key: str, days: int, sessions: int) -> None:
    """History for an empty database; a database that has events keeps what it has."""
    from stumble.app import CollectorServices  # noqa: PLC0415

    services = CollectorServices(settings)
    services.open()
    try:
        if services.store.count_events() > 0:
            print("history: the database already holds events; none added")
            return
        print(f"history: simulating {sessions} sessions over the {days} days before today…")
        started = time.perf_counter()
        report = fill_history(services, write_key, days=days, sessions=sessions)
    finally:
        services.close()  # seals the spool and loads it
    status = services.loader.status
    if status.last_error:
        raise HistoryError(f"loading the history failed ({status.last_error})")
    print(
        f"history: {report.accepted} events of {report.sessions} sessions stored "
        f"({report.rejected} rejected) in {time.perf_counter() - started:.1f} s"
    )


# --- signing in -------------------------------------------------------------------------------


def admin_sign_in_link(services: CollectorServices, settings: Settings) -> str:
    """A one-time link that signs a browser in as the demo's admin.

    Tokens are shown once and stored hashed, so each start replaces the demo's admin token
    (``demo_admin``) with a new one; the link is redeemable once, within the hour, in this
    process (sessions live in its memory)."""
    now = dt.datetime.now(dt.UTC)
    tokens = services.tokens
    if any(token.name == DEMO_ADMIN and token.is_active(now) for token in tokens.list()):
        tokens.revoke(DEMO_ADMIN, now=now)
    _, token = tokens.create(Role.ADMIN, DEMO_ADMIN, DEMO_ADMIN_LIFETIME, now=now)
    code = services.sessions.create_one_time_link(token, SIGN_IN_LINK_LIFETIME, now)
    host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
    return f"http://{host}:{settings.port}/signin/{code}"


# --- the command --------------------------------------------------------------------------


def _check_history_args(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.no_history:
        return None
    if not 1 <= args.history_days < settings.max_event_age_days:
        return f"--history-days must be from 1 to {settings.max_event_age_days - 1}"
    if args.history_sessions < 1:
        return "--history-sessions must be at least 1"
    return None


def print_urls(settings: Settings, new_key: str | None) -> None:
    host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
    base = f"http://{host}:{settings.port}"
    print(f"stumble demo  (data: {Path(settings.data_dir).resolve()})")
    if new_key:
        print(f"created a dev write key (also in {settings.data_dir}/{DEV_KEY_FILE})")
    print(f"  demo app:     {base}/demo/   (UI 1.4.2: {base}/demo/?ui=1, 2.0.0: {base}/demo/?ui=2)")
    print(f"  browser SDK:  {base}/sdk/stumble.js")
    print(f"  dashboard:    {base}/   (sign in with the link below)")
    print(f"  reports API:  {base}/api/v1/reports")
    print(f"  health:       {base}/api/v1/health   metrics: {base}/metrics")


def _demo(args: argparse.Namespace) -> int:
    from stumble.app import create_app  # noqa: PLC0415
    from stumble.collector.server import serve  # noqa: PLC0415 - only serving commands need it
    from stumble.web.demo_routes import demo_routes  # noqa: PLC0415

    settings = settings_from(
        args,
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        review_environment="dev",  # where the demo's key puts its history and live traffic
    )
    # The history is received when it is filled, in dev, whose raw tier is a day: a demo
    # opened again tomorrow would be empty. It is kept as long as prod's by default.
    dev_days = max(settings.retention_raw_days.get("dev", 1), DEMO_RETENTION_DAYS)
    settings.retention_raw_days = {**settings.retention_raw_days, "dev": dev_days}
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    problem = _check_history_args(args, settings)
    if problem:
        print(f"error: {problem}")
        return 2
    new_key = bootstrap_data_dir(settings)
    write_key = ensure_demo_key(settings)
    if not args.no_history:
        _fill_once(settings, write_key, args.history_days, args.history_sessions)
    app = create_app(
        settings, extra_routes=lambda services: demo_routes(services, write_key=write_key)
    )
    print_urls(settings, new_key)
    print(f"  sign in:      {admin_sign_in_link(app.state.services, settings)}   (admin, once)")
    serve(app, settings)
    return 0
