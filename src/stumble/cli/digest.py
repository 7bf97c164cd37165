"""``stumble digest``: the weekly digest of a week, printed as Markdown or standalone HTML, or
sent to every configured team with ``--send``.

It reads the database file itself, so it runs while no server holds it (DuckDB allows one
process); a running server sends the digest on its own schedule. Without ``--send`` nothing
is written anywhere. With it, delivery is the server's: idempotent per (week, environment,
recipient) through the ledger in ``<data_dir>/review/``, every attempt audited (as ``cli``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stumble.cli.common import (
    CommandError,
    add_data_options,
    plan_of,
    require_data_dir,
    settings_from,
)

if TYPE_CHECKING:
    from stumble.config import Settings
    from stumble.review.calendar import Week
    from stumble.review.digest import Digest
    from stumble.storage.base import EventStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "digest",
        help="the weekly digest: print it (Markdown or HTML) or --send it to every team",
        description="Top problems with owners and actions, scenarios against the week before, "
        "new field errors and failures, fixes, data health. Aggregates only: groups of fewer "
        "than 5 sessions are hidden.",
    )
    add_data_options(parser)
    parser.add_argument("--week", help="ISO week, e.g. 2026-W49 (default: the last full week)")
    parser.add_argument("--env", help="environment (default: prod when it has data)")
    parser.add_argument("--team", help="print the copy a team gets (its items first)")
    parser.add_argument("--format", choices=("md", "html"), default="md", help="output (md)")
    parser.add_argument(
        "--send",
        action="store_true",
        help="send to every team with a channel in the settings (each recipient once, audited)",
    )
    parser.set_defaults(func=_digest)


def _digest(args: argparse.Namespace) -> int:
    from stumble.review.digest import render_html, render_markdown  # noqa: PLC0415

    settings = settings_from(args)
    data_dir = require_data_dir(settings)
    week = _week(args.week, settings)
    digest = _build(settings, data_dir, week, args.env)
    if args.send:
        return _send(settings, data_dir, digest)
    shown = digest.for_team(args.team) if args.team else digest
    sys.stdout.write(render_html(shown) if args.format == "html" else render_markdown(shown))
    return 0


def _week(text: str | None, settings: Settings) -> Week:
    from stumble.review.calendar import CalendarError, Week, review_zone  # noqa: PLC0415

    if text:
        try:
            return Week.parse(text)
        except CalendarError as error:
            raise CommandError(str(error), 2) from None
    today = dt.datetime.now(review_zone(settings.review_timezone)).date()
    return Week.of(today).previous()


def _build(settings: Settings, data_dir: Path, week: Week, env: str | None) -> Digest:
    from stumble.review.digest import build_digest, load_fixes  # noqa: PLC0415
    from stumble.review.fixes import FixError  # noqa: PLC0415

    plan = plan_of(settings)
    try:
        fixes = load_fixes(data_dir)
    except FixError as error:
        raise CommandError(str(error)) from None
    store = _open_store(settings, data_dir)
    try:
        return build_digest(store, plan, week, environment=env, fixes=fixes)
    finally:
        store.close()


def _open_store(settings: Settings, data_dir: Path) -> EventStore:
    from stumble.encryption import load_data_keys  # noqa: PLC0415
    from stumble.storage import DatabaseInUseError, DuckDBStore, database_path  # noqa: PLC0415

    path = database_path(data_dir)
    if not path.exists():
        raise CommandError(f"no database at {path}; run `stumble serve` or `stumble simulate`")
    try:
        return DuckDBStore(
            path,
            threads=settings.duckdb_threads,
            migrate=False,
            data_keys=load_data_keys(settings.data_key_file, data_dir),
        )
    except DatabaseInUseError:
        raise CommandError(
            "the database is in use by a running server, which sends the digest itself "
            f"({settings.digest_weekday}s at {settings.digest_time}); stop it to build one here"
        ) from None


def _send(settings: Settings, data_dir: Path, digest: Digest) -> int:
    from stumble.access.audit import Actor, AuditError, AuditLog  # noqa: PLC0415
    from stumble.encryption import load_data_keys  # noqa: PLC0415
    from stumble.review.delivery import Deliverer, explain  # noqa: PLC0415
    from stumble.review.digest import digest_message  # noqa: PLC0415

    audit = AuditLog.in_data_dir(
        data_dir,
        digest_interval_s=settings.audit_digest_interval_s,
        data_keys=load_data_keys(settings.data_key_file, data_dir),
    )
    deliverer = Deliverer(settings, audit=audit, actor=Actor.cli())
    teams = deliverer.teams()
    if not teams:
        raise CommandError(
            "no team has a channel: set team_emails (with smtp_host), team_webhooks or "
            "team_chat_webhooks in the settings",
            2,
        )
    failed = 0
    try:
        for team in teams:
            report = deliverer.notify(team, digest_message(digest.for_team(team)))
            failed += len(report.failed)
            print(
                f"{team}: {len(report.sent)} sent, {len(report.already_sent)} already sent, "
                f"{len(report.failed)} failed"
            )
            for reason in report.reasons:
                print(f"  {reason}: {explain(reason)}")
    except AuditError as error:
        raise CommandError(f"{error}; sending stopped (what was sent is in the ledger)") from None
    finally:
        with contextlib.suppress(AuditError):  # the records are fsynced; only the digest waits
            audit.close()
    if failed:
        print(f"error: {failed} recipient(s) failed; run again to retry them", file=sys.stderr)
    return 1 if failed else 0
