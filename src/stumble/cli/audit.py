"""``stumble audit verify|show``: check the audit log's hash chain and signatures, read it.

Both only read: a data directory or log that is not there is a one-line error, and nothing
is created (not even the audit key, which ``verify`` needs and only the writer makes).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec

from stumble.access.audit import (
    AuditError,
    AuditPaths,
    AuditRecord,
    VerifyResult,
    audit_paths,
    read_key,
    read_records,
    verify,
    verify_archives,
)
from stumble.cli.common import CommandError, add_data_options, settings_from
from stumble.encryption import DataKeyRing, load_data_keys

_AGE = re.compile(r"^(\d{1,5})([dh])$")
_SECONDS_PER_UNIT = {"d": 86_400, "h": 3_600}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("audit", help="check and read the tamper-evident audit log")
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    check = actions.add_parser(
        "verify", help="check the hash chain and digest signatures; exit 1 naming the first break"
    )
    add_data_options(check)
    check.set_defaults(func=_verify)

    show = actions.add_parser("show", help="print audit records, oldest first")
    add_data_options(show)
    show.add_argument("--since", help="from a UTC date (2026-12-01) or an age (7d, 12h)")
    show.add_argument("--json", action="store_true", help="print a JSON array of the records")
    show.set_defaults(func=_show)


def _existing_paths(args: argparse.Namespace) -> AuditPaths:
    data_dir = Path(settings_from(args).data_dir)
    if not data_dir.is_dir():
        raise CommandError(f"no stumble data directory at {data_dir}; pass --data DIR")
    paths = audit_paths(data_dir)
    if not paths.log.exists() and not paths.head.exists():
        raise CommandError(
            f"no audit log at {paths.log}; the server starts it with the first audited action"
        )
    return paths


def _data_keys(args: argparse.Namespace) -> DataKeyRing | None:
    """The data keys that decrypt an encrypted log (encryption at rest), if configured."""
    settings = settings_from(args)
    return load_data_keys(settings.data_key_file, Path(settings.data_dir))


def _verify(args: argparse.Namespace) -> int:
    paths = _existing_paths(args)
    try:
        key = read_key(paths.key)
    except FileNotFoundError:
        raise CommandError(f"no audit key at {paths.key}: digests cannot be checked") from None
    except AuditError as error:
        raise CommandError(str(error)) from None
    result = verify(paths.log, key, data_keys=_data_keys(args))
    print(_summary(result))
    archives_ok = True
    for check in verify_archives(paths.log, key, data_keys=_data_keys(args)):
        anchor = "" if check.anchored else "; the log after it does not continue its chain"
        print(f"archive {check.archive.path.name}: {_summary(check.result)}{anchor}")
        archives_ok = archives_ok and check.result.ok and check.anchored
    return 0 if result.ok and archives_ok else 1


def _summary(result: VerifyResult) -> str:
    if result.broken is not None:
        broken = result.broken
        return f"broken: {broken.where}: {broken.reason}: {broken.explanation}"
    text = f"ok: {result.records} records, {result.digests} digests"
    if result.unsigned:
        text += f"; the last {result.unsigned} are after the latest digest, not yet signed"
    if not result.head_checked:
        text += "; no head file, so records cut off the end cannot be detected"
    return text


def _show(args: argparse.Namespace) -> int:
    since_ms = _since_ms(args.since, time.time()) if args.since else 0
    paths = _existing_paths(args)
    reading = read_records(paths.log, since_ms=since_ms, data_keys=_data_keys(args))
    if args.json:
        print(msgspec.json.encode(reading.records).decode())
    else:
        for record in reading.records:
            print(_line(record))
    if reading.unreadable_lines:
        lines = ", ".join(str(n) for n in reading.unreadable_lines[:5])
        print(
            f"warning: unreadable lines skipped ({lines}…); run `stumble audit verify`",
            file=sys.stderr,
        )
    return 0


def _since_ms(text: str, now_s: float) -> int:
    """``2026-12-01`` (UTC midnight) or ``7d`` / ``12h`` before now."""
    age = _AGE.fullmatch(text)
    if age is not None:
        return int((now_s - int(age[1]) * _SECONDS_PER_UNIT[age[2]]) * 1000)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CommandError("--since must be a date (2026-12-01) or an age (7d, 12h)", 2) from None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _line(record: AuditRecord) -> str:
    return "  ".join(
        (
            record.at,
            f"#{record.seq}",
            str(record.actor),
            record.action,
            record.outcome,
            _detail_text(record),
        )
    ).rstrip()


def _detail_text(record: AuditRecord) -> str:
    if record.seal is not None:
        count = record.seal.count
        return f"signs the {count} records before it" if count else "opens the log"
    if record.detail is None:
        return ""
    fields = msgspec.to_builtins(record.detail)
    assert isinstance(fields, dict)
    return " ".join(
        f"{name}={','.join(value) if isinstance(value, list | tuple) else value}"
        for name, value in fields.items()
    )
