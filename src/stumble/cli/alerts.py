"""``stumble alerts``: the alert rules and their states, a dry run, and silences.

* ``list``: every rule the server has evaluated, its state, since when, its last value;
* ``test [RULE]``: evaluate now and say what would change and notify, changing nothing (it
  opens the database, so only while no server holds it);
* ``silence RULE --for 2h`` / ``--until 2026-12-10`` and ``unsilence RULE``: a silenced rule
  is still evaluated and recorded, but nobody is notified. Both are audited.

``list`` reads the state file only: it creates nothing and works while the server runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from stumble.cli.common import (
    CommandError,
    add_data_options,
    plan_of,
    require_data_dir,
    settings_from,
)

if TYPE_CHECKING:
    from stumble.config import Settings
    from stumble.review.alerts import Preview, RuleState, Silence
    from stumble.review.messages import DeliveryReport, Message

_DURATION: Final = re.compile(r"([1-9][0-9]{0,4})([smhd])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_SILENCE: Final = dt.timedelta(days=90)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser(
        "alerts",
        help="alert rules: list their states, test them now, silence them",
        description="Rules come from the tracking plan; the server evaluates them on a schedule.",
    )
    commands = alerts.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="rules, state, since when, last value")
    add_data_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_list)
    test = commands.add_parser("test", help="evaluate now; notify nothing, change nothing")
    test.add_argument("rule", nargs="?", help="one rule id (default: every rule that moves)")
    add_data_options(test)
    test.add_argument("--env", default=None, help="environment (default prod)")
    test.add_argument("--json", action="store_true", help="print JSON")
    test.set_defaults(func=_test)
    silence = commands.add_parser("silence", help="stop a rule's notifications for a while")
    silence.add_argument("rule", help="the rule id (stumble alerts list)")
    add_data_options(silence)
    span = silence.add_mutually_exclusive_group(required=True)
    span.add_argument("--for", dest="for_", metavar="DURATION", help="30m, 2h, 3d")
    span.add_argument("--until", metavar="DATE", help="YYYY-MM-DD (its start, review time zone)")
    silence.set_defaults(func=_silence)
    unsilence = commands.add_parser("unsilence", help="lift a rule's silence")
    unsilence.add_argument("rule", help="the rule id")
    add_data_options(unsilence)
    unsilence.set_defaults(func=_unsilence)


# --- list ------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    import msgspec  # noqa: PLC0415

    from stumble.review.alerts import RuleState, active_silences, current_states  # noqa: PLC0415

    FIELDS = RuleState.__struct_fields__  # noqa: N806

    data_dir = require_data_dir(settings_from(args))
    states = current_states(data_dir)
    silences = active_silences(data_dir, dt.datetime.now(dt.UTC))
    if args.json:
        # every field, defaults included: a JSON reader should not have to know them
        rows = [
            {
                **{name: msgspec.to_builtins(getattr(state, name)) for name in FIELDS},
                "silenced_until_ms": s.until_ms if (s := silences.get(state.rule)) else None,
            }
            for state in states
        ]
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
        return 0
    if not states:
        print("no alert rule has been evaluated yet: the server evaluates them on a schedule")
        return 0
    for line in _table(states, silences):
        print(line)
    return 0


def _table(states: list[RuleState], silences: dict[str, Silence]) -> list[str]:
    from stumble.review.alerts import shown  # noqa: PLC0415

    header = ("state", "since", "rule", "owner", "last value", "against", "sessions")
    rows = [header]
    for state in states:
        last = state.last
        value = shown(state.metric, last.value if last else None)
        against = shown(state.metric, state.threshold if last is None else last.reference)
        sessions = "" if last is None else str(last.sessions)
        if last is not None and last.status == "no_data":
            value = "too few sessions"
        mark = " (silenced)" if state.rule in silences else ""
        since = _when(state.since_ms)
        rows.append((state.state + mark, since, state.rule, state.owner, value, against, sessions))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- test ------------------------------------------------------------------------------------


def _test(args: argparse.Namespace) -> int:
    import msgspec  # noqa: PLC0415

    settings = settings_from(args)
    data_dir = require_data_dir(settings)
    previews = _previews(settings, data_dir, args.env)
    if args.rule:
        previews = [p for p in previews if p.rule.id == args.rule]
        if not previews:
            raise CommandError(f"no rule {args.rule} now; `stumble alerts list` names them", 2)
    else:
        previews = [
            p for p in previews if p.evaluation.status == "breaching" or p.before != p.after
        ]
    if args.json:
        rows = [
            {"before": p.before, "after": p.after, "notifies": p.notifies,
             "owner": p.rule.owner, "evaluation": msgspec.to_builtins(p.evaluation)}
            for p in previews
        ]  # fmt: skip
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
        return 0
    if not previews:
        print("nothing breaches and no rule would change state")
    for preview in previews:
        print(_describe(preview))
    return 0


def _previews(settings: Settings, data_dir: Path, env: str | None) -> list[Preview]:
    from stumble.access.audit import AuditLog  # noqa: PLC0415
    from stumble.analytics.queries import DEFAULT_ENVIRONMENT  # noqa: PLC0415
    from stumble.encryption import load_data_keys  # noqa: PLC0415
    from stumble.review.alerts import AlertJob  # noqa: PLC0415
    from stumble.storage import DuckDBStore, database_path  # noqa: PLC0415
    from stumble.storage.base import DatabaseInUseError  # noqa: PLC0415

    path = database_path(data_dir)
    if not path.exists():
        raise CommandError(f"no database at {path}; run `stumble serve` or `stumble simulate`")
    plan = plan_of(settings)
    keys = load_data_keys(settings.data_key_file, data_dir)
    try:
        store = DuckDBStore(path, threads=settings.duckdb_threads, migrate=False, data_keys=keys)
    except DatabaseInUseError as error:
        raise CommandError(
            f"the database is in use by a running server ({error.holder or 'another process'}); "
            "`stumble alerts test` reads it directly: the server evaluates the rules itself, "
            "see `stumble alerts list`"
        ) from None
    try:
        job = AlertJob(
            store=store,
            plan=plan,
            settings=settings,
            notifier=_Refuse(),
            audit=AuditLog.in_data_dir(data_dir, data_keys=keys),  # not written by a preview
            environment=env or DEFAULT_ENVIRONMENT,
        )
        return job.preview(dt.datetime.now(dt.UTC))
    finally:
        store.close()


class _Refuse:
    """The notifier of a dry run: ``preview`` never notifies, and this makes sure of it."""

    def notify(self, team: str, message: Message) -> DeliveryReport:
        raise AssertionError("a dry run notified")


def _describe(preview: Preview) -> str:
    from stumble.review.alerts import shown  # noqa: PLC0415

    ev = preview.evaluation
    metric = preview.rule.metric
    move = (
        preview.before
        if preview.before == preview.after
        else f"{preview.before} -> {preview.after}"
    )
    if ev.status == "no_data":
        return f"{preview.rule.id}: {move}; too few sessions ({ev.sessions})"
    parts = [
        f"{preview.rule.id}: {move}; {ev.status}",
        f"value {shown(metric, ev.value)} against {shown(metric, ev.reference)}",
        f"{ev.sessions} sessions",
    ]
    if ev.p_value is not None:
        parts.append(f"p = {ev.p_value:.2g} (alpha/{ev.tested})")
    if preview.notifies:
        parts.append(f"would notify {preview.rule.owner}")
    return "; ".join(parts)


# --- silences -------------------------------------------------------------------------------


def _silence(args: argparse.Namespace) -> int:
    from stumble.review.calendar import review_zone  # noqa: PLC0415

    settings = settings_from(args)
    data_dir = require_data_dir(settings)
    _known_rule(data_dir, args.rule)
    now = dt.datetime.now(dt.UTC)
    if args.for_:
        until = now + parse_duration(args.for_)
    else:
        until = parse_until(args.until, review_zone(settings.review_timezone))
    if until <= now:
        raise CommandError("--until must be in the future", 2)
    if until - now > MAX_SILENCE:
        raise CommandError("a silence lasts at most 90 days; fix the rule's threshold instead", 2)
    _change(data_dir, args.rule, until, now)
    print(f"silenced {args.rule} until {_when(round(until.timestamp() * 1000))}")
    return 0


def _unsilence(args: argparse.Namespace) -> int:
    from stumble.review.alerts import active_silences  # noqa: PLC0415

    data_dir = require_data_dir(settings_from(args))
    now = dt.datetime.now(dt.UTC)
    if args.rule not in active_silences(data_dir, now):
        print(f"{args.rule} is not silenced")
        return 0
    _change(data_dir, args.rule, None, now)
    print(f"{args.rule} notifies again")
    return 0


def _known_rule(data_dir: Path, rule: str) -> None:
    from stumble.review.alerts import current_states  # noqa: PLC0415

    if rule not in {state.rule for state in current_states(data_dir)}:
        raise CommandError(
            f"no rule {rule} has been evaluated; `stumble alerts list` names them", 2
        )


def _change(data_dir: Path, rule: str, until: dt.datetime | None, now: dt.datetime) -> None:
    from stumble.access.audit import Actor, AuditError, AuditLog  # noqa: PLC0415
    from stumble.cli.common import data_keys_of  # noqa: PLC0415
    from stumble.review.alerts import set_silence  # noqa: PLC0415

    audit = AuditLog.in_data_dir(data_dir, data_keys=data_keys_of(data_dir))
    try:
        audit.open()
        set_silence(data_dir, rule, until=until, now=now, audit=audit, actor=Actor.cli())
    except AuditError as error:
        raise CommandError(f"{error}; nothing was changed") from None
    finally:
        audit.close()


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``2h``, ``3d``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise CommandError("--for takes a duration such as 30m, 2h or 3d", 2)
    return dt.timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def parse_until(text: str, zone: dt.tzinfo) -> dt.datetime:
    """A date (the start of that day in the review's time zone: silenced *until* it) or an
    ISO datetime (UTC unless it says otherwise)."""
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), zone)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError("--until takes YYYY-MM-DD or an ISO datetime", 2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
