"""``stumble retention run|status``: the retention tiers by hand, on a stopped server's data.

The server runs retention itself every hour (the loader's housekeeping). These commands open
the database file, which a running server holds: then they say so in one line and stop.
``run`` deletes what is past each tier (``--dry-run``: says what it would), writes a
``retention.run`` audit record per tier that deleted something (as ``cli``), and prints one
line per tier and the file size before and after. ``status`` prints the tiers in force and
what the store holds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stumble.cli.common import (
    add_data_options,
    open_database,
    require_data_dir,
    rollup_maintainer,
    settings_from,
)
from stumble.encryption import load_data_keys

if TYPE_CHECKING:
    from stumble.config import Settings
    from stumble.retention import (
        AuditExpiry,
        RawDeletion,
        RetentionPolicy,
        RetentionReport,
        RetentionStatus,
    )
    from stumble.storage import DuckDBStore


SERVER_RUNS_IT = "it runs retention itself every hour; stop it to run retention by hand"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("retention", help="delete what is past retention; tiers in force")
    actions = parser.add_subparsers(dest="retention_command", metavar="ACTION", required=True)

    run = actions.add_parser(
        "run",
        help="delete raw events, rollups and quarantine counters past their tiers (audited)",
        description="Server stopped: the server runs this itself every hour.",
    )
    add_data_options(run)
    run.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    run.set_defaults(func=_run)

    status = actions.add_parser("status", help="the tiers in force and what the store holds")
    add_data_options(status)
    status.set_defaults(func=_status)


def _run(args: argparse.Namespace) -> int:
    from stumble.access.audit import Actor, AuditError, AuditLog  # noqa: PLC0415
    from stumble.retention import (  # noqa: PLC0415
        RetentionAudit,
        RetentionPolicy,
        preview_retention,
        run_retention,
    )

    settings = settings_from(args)
    data_dir = require_data_dir(settings)
    policy = RetentionPolicy.from_settings(settings)
    now_ms = time.time_ns() // 1_000_000
    audit_log = AuditLog.in_data_dir(
        data_dir,
        digest_interval_s=settings.audit_digest_interval_s,
        data_keys=load_data_keys(settings.data_key_file, data_dir),
    )
    with open_database(settings, migrate=not args.dry_run, in_use=SERVER_RUNS_IT) as store:
        if args.dry_run:
            report = preview_retention(
                store, policy, now_ms, RetentionAudit(audit_log, Actor.cli())
            )
        else:
            try:
                report = run_retention(
                    store,
                    policy,
                    now_ms,
                    refresh_rollups=_rollup_refresh(store, settings),
                    audit=RetentionAudit(audit_log, Actor.cli()),
                )
            finally:
                with contextlib.suppress(AuditError):
                    audit_log.close()  # its closing digest signs the records just written
    for line in report_lines(report, policy):
        print(line)
    return 0


def _rollup_refresh(store: DuckDBStore, settings: Settings) -> Callable[[], object]:
    """The days loads dirtied are rolled up before anything is deleted, as in the server."""
    return rollup_maintainer(store, settings).refresh


def _status(args: argparse.Namespace) -> int:
    from stumble.retention import RetentionPolicy, retention_status  # noqa: PLC0415

    settings = settings_from(args)
    data_dir = require_data_dir(settings)
    policy = RetentionPolicy.from_settings(settings)
    with open_database(settings, migrate=False, in_use=SERVER_RUNS_IT) as store:
        status = retention_status(store)
    lines = status_lines(status, policy)
    lines.insert(-1, _archives_line(data_dir, policy))
    for line in lines:
        print(line)
    return 0


def _archives_line(data_dir: Path, policy: RetentionPolicy) -> str:
    from stumble.access.audit import archived_logs, audit_paths  # noqa: PLC0415

    archives = archived_logs(audit_paths(data_dir).log)
    oldest = f", the oldest from {_utc(archives[0].first_at_ms)}" if archives else ""
    return (
        f"audit: {_plural(len(archives), 'archived log')}{oldest} "
        f"({_plural(policy.audit_days, 'day')} kept; the live log is archived monthly)"
    )


# --- what is printed ----------------------------------------------------------------------


def report_lines(report: RetentionReport, policy: RetentionPolicy) -> list[str]:
    verb = "would delete" if report.dry_run else "deleted"
    lines = [_raw_line(deletion, verb) for deletion in report.raw]
    lines.append(
        f"rollups: {verb} {report.rollup_cells_deleted:,} cells of days before "
        f"{report.first_rollup_day} ({_plural(policy.rollup_months, 'month')} kept)"
    )
    lines.append(
        f"quarantine: {verb} {report.quarantine_counters_deleted:,} counters of days before "
        f"{report.first_quarantine_day} ({_plural(policy.quarantine_days, 'day')} kept)"
    )
    if report.audit is not None:
        lines.append(_audit_line(report.audit, policy, verb))
    lines.append(_space_line(report, policy))
    return lines


def _audit_line(expiry: AuditExpiry, policy: RetentionPolicy, verb: str) -> str:
    archived = f"; the log was archived as {expiry.archived}" if expiry.archived else ""
    return (
        f"audit: {verb} {expiry.records_deleted:,} records in "
        f"{_plural(expiry.files_deleted, 'archived log')} ending before "
        f"{_utc(expiry.cutoff_ms)} ({_plural(policy.audit_days, 'day')} kept){archived}"
    )


def _raw_line(deletion: RawDeletion, verb: str) -> str:
    sealed = f", {_plural(len(deletion.days_sealed), 'rollup day')} sealed"
    return (
        f"raw {deletion.environment}: {verb} {deletion.rows_deleted:,} events received before "
        f"{_utc(deletion.cutoff_ms)} ({_plural(deletion.days_kept, 'day')} kept)"
        + (sealed if deletion.days_sealed else "")
    )


def _space_line(report: RetentionReport, policy: RetentionPolicy) -> str:
    before = _size(report.bytes_before)
    if report.dry_run:
        return (
            f"database: {before} now (a run checkpoints it, and copies it into a smaller file "
            f"when more than {policy.compact_free_share:.0%} of it is free)"
        )
    how = (
        f"compacted: {report.space.free_share:.0%} was free"
        if report.space.compacted
        else f"checkpointed; {report.space.free_share:.0%} free, reused before the file grows"
    )
    return f"database: {before} → {_size(report.bytes_after)} ({how})"


def status_lines(status: RetentionStatus, policy: RetentionPolicy) -> list[str]:
    tiers = ", ".join(f"{env} {_plural(days, 'day')}" for env, days in policy.raw_days.items())
    other = _plural(policy.raw_default_days, "day")
    rollups = _plural(policy.rollup_months, "month")
    quarantine = _plural(policy.quarantine_days, "day")
    tier_line = f"tiers: raw {tiers}, any other environment {other}; rollups {rollups}; "
    lines = [tier_line + f"quarantine {quarantine}"]
    lines.extend(
        f"raw {held.environment}: {held.rows:,} events, oldest received "
        f"{_utc(held.oldest_received_ms)} ({_plural(policy.raw_days_for(held.environment), 'day')}"
        " kept)"
        for held in status.raw
    )
    lines.append(
        f"rollups: {_plural(status.rollup_days, 'day')}, oldest {status.oldest_rollup_day or '-'}"
        f" ({status.sealed_days} sealed, {status.dirty_days} waiting for a rebuild)"
    )
    lines.append(f"quarantine: oldest counter {status.oldest_counter_day or '-'}")
    lines.append(f"database: {_size(status.storage_bytes)}")
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _utc(epoch_ms: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:,.1f} MB"
