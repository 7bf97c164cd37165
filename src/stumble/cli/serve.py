"""``stumble serve``, ``stumble load`` and ``stumble health``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from stumble.access.keys import DEV_KEY_FILE, KeyRing
from stumble.cli.common import (
    CONFIG_FILE,
    CommandError,
    add_data_options,
    refused_by_server,
    require_data_dir,
    server_headers,
    settings_from,
)
from stumble.config import Settings, render_default_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the collector, loader and API on one port")
    add_data_options(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--tls-cert", help="PEM certificate: serve HTTPS (with --tls-key)")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument("--port", type=int, help="port (default 8710)")
    serve.set_defaults(func=_serve)

    load = sub.add_parser("load", help="load sealed spool segments into the database (offline)")
    add_data_options(load)
    load.set_defaults(func=_load)

    health = sub.add_parser("health", help="quarantine counts, spool and loader state (offline)")
    add_data_options(health)
    health.add_argument("--json", action="store_true", help="print JSON")
    health.add_argument("--server", help="ask a running server (e.g. http://127.0.0.1:8710)")
    health.set_defaults(func=_health)


def bootstrap_data_dir(settings: Settings) -> str | None:
    """On first start: the directory, a commented config and a ``dev`` key. Returns the new key."""
    data_dir = Path(settings.data_dir)
    # Private whatever the umask: keys, secrets and events are the service account's alone.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = data_dir / CONFIG_FILE
    if not config.exists():
        config.write_text(render_default_config(settings), encoding="utf-8")
        config.chmod(0o600)
    ring = KeyRing(data_dir)
    if ring.all():
        return None
    origins = [f"http://{host}:{settings.port}" for host in ("127.0.0.1", "localhost")]
    token, _ = ring.create("dev", origins, label="created on first start")
    key_file = data_dir / DEV_KEY_FILE
    key_file.write_text(token + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    return token


def dev_key(settings: Settings) -> str | None:
    path = Path(settings.data_dir) / DEV_KEY_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def print_welcome(settings: Settings, new_key: str | None) -> None:
    base = f"http://{settings.host}:{settings.port}"
    print(f"stumble {base}  (data: {Path(settings.data_dir).resolve()})")
    if new_key:
        print(f"created a dev write key (also in {settings.data_dir}/{DEV_KEY_FILE}):\n  {new_key}")
    key = new_key or dev_key(settings) or "<your write key>"
    print("send a batch:")
    print(
        f"  curl -X POST '{base}/v1/batch' -H 'Authorization: Bearer {key}' "
        "-H 'Content-Type: application/json' -d @batch.json"
    )
    print(f"browser SDK: <script src='{base}/sdk/stumble.js'></script>")
    print("read the reports: stumble tokens create --role analyst --name ux_team, then")
    print(f"  curl -H 'Authorization: Bearer <token>' {base}/api/v1/reports")


def _serve(args: argparse.Namespace) -> int:
    from stumble.app import create_app  # noqa: PLC0415
    from stumble.collector.server import serve  # noqa: PLC0415 - only serving commands need it

    settings = settings_from(
        args, host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    new_key = bootstrap_data_dir(settings)
    # Opens the database: a server already running on this directory stops us before the welcome.
    app = create_app(settings)
    print_welcome(settings, new_key)
    serve(app, settings)
    return 0


def _load(args: argparse.Namespace) -> int:
    from stumble.app import CollectorServices  # noqa: PLC0415

    settings = settings_from(args)
    require_data_dir(settings)
    services = CollectorServices(settings)
    services.open()
    services.spool.seal_now()
    services.loader.run_once()
    status = services.loader.status
    rows = status.rows_loaded
    services.close()
    if status.last_error:
        print(f"error: loading failed ({status.last_error}); segments stay in the spool")
        return 1
    segments, duplicates = status.segments_loaded, status.duplicates
    print(f"loaded {rows} rows from {segments} segments ({duplicates} duplicates dropped)")
    return 0


def _health_from_server(url: str) -> dict[str, Any]:
    """The database belongs to the running server (DuckDB allows one process), so ask it."""
    import httpx  # noqa: PLC0415

    try:
        response = httpx.get(
            f"{url.rstrip('/')}/api/v1/health", headers=server_headers(), timeout=30
        )
    except httpx.HTTPError as error:
        raise CommandError(f"cannot reach {url} ({type(error).__name__})") from None
    if response.status_code in (401, 403):
        raise CommandError(refused_by_server(response.status_code))
    if response.status_code != 200:
        raise CommandError(f"the server answered {response.status_code}")
    report: dict[str, Any] = response.json()
    return report


def _health_from_files(args: argparse.Namespace) -> dict[str, Any]:
    from stumble.app import CollectorServices, health_report  # noqa: PLC0415

    settings = settings_from(args)
    require_data_dir(settings)
    services = CollectorServices(settings)
    services.store.migrate()
    try:
        return health_report(services)
    finally:
        services.store.close()


def _health(args: argparse.Namespace) -> int:
    report = _health_from_server(args.server) if args.server else _health_from_files(args)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(
        f"spool: {report['spool']['sealed_segments']} sealed segments, "
        f"{report['spool']['unloaded_bytes']} bytes not loaded"
    )
    print("quarantine (rejected and redacted, counts only):")
    for row in report["quarantine"] or []:
        print(
            f"  {row['day']} {row['environment']:<8} {row['outcome']:<9} {row['reason']:<28} "
            f"{row['field_path']:<22} {row['event_name']:<24} {row['count']}"
        )
    if not report["quarantine"]:
        print("  (none)")
    return 0
