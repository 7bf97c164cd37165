"""``stumble report NAME``: any report of the catalog, from the data directory or a server.

``--data DIR`` opens the database file itself (only while no server holds it: DuckDB allows
one process); ``--server URL`` asks a running server's read API. Either way the same typed
report is rendered as a table, Markdown or JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stumble.cli.common import (
    add_data_options,
    plan_of,
    refused_by_server,
    server_headers,
    settings_from,
)

if TYPE_CHECKING:
    from stumble.analytics.results import Report

FORMATS = ("table", "json", "md")
NAMES = (
    "funnel",
    "timings",
    "field-errors",
    "loops",
    "usage",
    "failures",
    "compare",
    "top-problems",
    "health",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="print a report (funnel, field-errors, compare, top-problems...)",
        description="Reports are aggregates: groups of fewer than 5 sessions are hidden.",
    )
    report.add_argument("name", choices=NAMES, help="the report")
    add_data_options(report)
    report.add_argument("--server", help="read from a running server, e.g. http://127.0.0.1:8710")
    report.add_argument("--from", dest="from_", metavar="DATE", help="first day or datetime")
    report.add_argument("--to", metavar="DATE", help="last day (inclusive) or end datetime")
    report.add_argument("--env", help="environment (default prod; health: every one)")
    report.add_argument("--by", help="breakdown: role, division, device_type, browser, ...")
    report.add_argument("--scenario", help="scenario of the plan (funnel, compare)")
    report.add_argument(
        "--filter",
        "-f",
        action="append",
        default=[],
        metavar="NAME=VALUES",
        help="role=operator, ui_version=1.4.2,2.0.0, flag=new_form or flag=!new_form",
    )
    report.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other parameter: a.ui_version=1.4.2, b.flag=x, form=..., limit=5",
    )
    report.add_argument("--format", choices=FORMATS, default="table", help="output (table)")
    report.set_defaults(func=_report)


def report_params(args: argparse.Namespace) -> dict[str, str]:
    """The catalog's string parameters from the command line."""
    params: dict[str, str] = {}
    named = {"from": args.from_, "to": args.to, "env": args.env, "by": args.by}
    named["scenario"] = args.scenario
    params.update({key: value for key, value in named.items() if value})
    for item in [*args.filter, *args.param]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def _report(args: argparse.Namespace) -> int:
    from stumble.analytics.rendering import render  # noqa: PLC0415

    try:
        params = report_params(args)
        if args.server:
            report = _from_server(args.server, args.name, params)
        else:
            report = _from_files(args, args.name, params)
    except ReportError as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.exit_code
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(report, args.format))
    return 0


class ReportError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _from_files(args: argparse.Namespace, name: str, params: dict[str, str]) -> Report[Any]:
    from stumble.reports.catalog import (  # noqa: PLC0415
        ReportDefaults,
        ReportParamError,
        run_report,
    )
    from stumble.storage import DuckDBStore, StorageError, database_path  # noqa: PLC0415

    settings = settings_from(args)
    path = database_path(Path(settings.data_dir))
    if not path.exists():
        raise ReportError(f"no database at {path}; run `stumble serve` or `stumble simulate`")
    plan = plan_of(settings)
    from stumble.encryption import load_data_keys  # noqa: PLC0415
    from stumble.storage.duckdb_encryption import DatabaseKeyError  # noqa: PLC0415

    data_keys = load_data_keys(settings.data_key_file, Path(settings.data_dir))
    try:
        store = DuckDBStore(
            path, threads=settings.duckdb_threads, migrate=False, data_keys=data_keys
        )
    except DatabaseKeyError:
        raise  # one line of its own: see cli.common.expected_failure
    except StorageError:
        raise ReportError(
            "the database is in use (a running server holds it); use --server URL"
        ) from None
    try:
        return run_report(
            store,
            plan,
            name,
            params,
            now=dt.datetime.now(dt.UTC),
            check_environment=True,
            defaults=ReportDefaults.from_settings(settings),
        )
    except ReportParamError as error:
        raise ReportError(str(error), 2) from None
    finally:
        store.close()


def _from_server(url: str, name: str, params: dict[str, str]) -> Report[Any]:
    import httpx  # noqa: PLC0415
    import msgspec  # noqa: PLC0415

    from stumble.analytics.results import Report  # noqa: PLC0415
    from stumble.reports.catalog import REPORTS  # noqa: PLC0415

    try:
        response = httpx.get(
            f"{url.rstrip('/')}/api/v1/reports/{name}",
            params=params,
            headers=server_headers(),
            timeout=120,
        )
    except httpx.HTTPError as error:
        raise ReportError(f"cannot reach {url} ({type(error).__name__})") from None
    if response.status_code in (401, 403):
        raise ReportError(refused_by_server(response.status_code), 2)
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = body.get("message") or body.get("error") or "no detail"
        raise ReportError(f"the server answered {response.status_code}: {detail}", 2)
    result_type = REPORTS[name].result_type
    decoded: Report[Any] = msgspec.json.decode(response.content, type=Report[result_type])  # type: ignore[valid-type]
    return decoded
