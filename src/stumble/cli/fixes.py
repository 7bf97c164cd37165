"""``stumble fixes add|list|show``: UI fixes with a date on which they verify themselves."""

from __future__ import annotations

import argparse
import datetime as dt

import msgspec

from stumble.access.audit import AuditAction, AuditDetail
from stumble.cli.common import (
    CommandError,
    add_data_options,
    audit_change,
    require_data_dir,
    settings_from,
)
from stumble.review.fixes import (
    Change,
    Expectation,
    FixBook,
    FixError,
    FixRecord,
    check_fix,
    verdict_message,
    windows,
)

EXPECT_HELP = (
    "METRIC:SUBJECT=-20%% (or =+ / =-), a compare metric, e.g. "
    "'field_error_share:service_request step 2 iin_bin format=-20%%'"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("fixes", help="record UI fixes and see their verification")
    actions = parser.add_subparsers(dest="fixes_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="record a fix and the day it is checked")
    add_data_options(add)
    add.add_argument("--title", required=True, help="what was changed, in a few words")
    add.add_argument("--problem", required=True, help="the problem, as top problems words it")
    add.add_argument("--scenario", required=True, help="the plan's scenario it belongs to")
    add.add_argument("--hypothesis", required=True, help="why the change should help")
    change = add.add_mutually_exclusive_group(required=True)
    change.add_argument("--ui-version", help="the UI version that carries the change")
    change.add_argument("--flag", help="the feature flag that turns the change on")
    add.add_argument("--shipped", required=True, help="the day it shipped, YYYY-MM-DD")
    add.add_argument("--owner", required=True, help="the owner team (a plan identifier)")
    add.add_argument("--expect", action="append", required=True, help=EXPECT_HELP)
    add.add_argument("--verify-on", required=True, help="the day to check it, YYYY-MM-DD")
    add.add_argument("--env", default="prod", help="the environment to check (default prod)")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(func=_add)

    listing = actions.add_parser("list", help="open and verified fixes")
    add_data_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_list)

    show = actions.add_parser("show", help="one fix with its verdict and evidence")
    add_data_options(show)
    show.add_argument("fix_id", metavar="FIX_ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_show)


def _book(args: argparse.Namespace) -> FixBook:
    return FixBook(require_data_dir(settings_from(args)))


def _day(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} must be a date (YYYY-MM-DD)", 2) from None


def _draft(args: argparse.Namespace) -> FixRecord:
    try:
        expectations = [Expectation.parse(text) for text in args.expect]
        return msgspec.convert(
            {
                "fix_id": "",
                "title": args.title,
                "problem": args.problem,
                "scenario": args.scenario,
                "hypothesis": args.hypothesis,
                "change": msgspec.to_builtins(
                    Change(
                        ui_version=args.ui_version,
                        flag=args.flag,
                        shipped_on=_day(args.shipped, "--shipped"),
                    )
                ),
                "owner": args.owner,
                "expectations": msgspec.to_builtins(expectations),
                "verify_on": _day(args.verify_on, "--verify-on").isoformat(),
                "environment": args.env,
                "created_at": dt.datetime.now(dt.UTC).isoformat(),
                "created_by": "cli",
            },
            FixRecord,
        )
    except FixError as error:
        raise CommandError(str(error), 2) from None
    except msgspec.ValidationError as error:  # names the field, never its value
        raise CommandError(f"invalid fix: {error}", 2) from None


def _add(args: argparse.Namespace) -> int:
    book = _book(args)
    draft = _draft(args)
    try:
        check_fix(draft)  # before anything is written, the audit record included
        audit_change(
            book.path.parent.parent, AuditAction.FIX_CREATE, AuditDetail(target=book.next_id())
        )
        fix = book.add(draft)
    except FixError as error:
        raise CommandError(str(error)) from None
    if args.json:
        print(msgspec.json.encode(fix).decode())
        return 0
    (before_from, before_to), (after_from, after_to) = windows(fix)
    print(f"recorded {fix.fix_id}: {fix.title} ({fix.change.describe()}), owner {fix.owner}")
    print(
        f"on {fix.verify_on} the server compares {after_from}..{after_to} with "
        f"{before_from}..{before_to} and tells {fix.owner} the verdict"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    fixes = _load(args)
    if args.json:
        print(msgspec.json.encode(fixes).decode())
        return 0
    if not fixes:
        print("no fixes recorded; add one with `stumble fixes add`")
    today = dt.datetime.now(dt.UTC).date()
    for fix in fixes:
        state = (
            fix.verdict.outcome
            if fix.verdict
            else ("overdue" if fix.overdue(today) else f"checked on {fix.verify_on}")
        )
        print(f"{fix.fix_id}  {fix.owner:<20} {state:<24} {fix.title}")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        fix = _book(args).get(args.fix_id)
    except FixError as error:
        raise CommandError(str(error)) from None
    if args.json:
        print(msgspec.json.encode(fix).decode())
        return 0
    print(f"{fix.fix_id}: {fix.title}")
    print(f"  problem:    {fix.problem}")
    print(f"  hypothesis: {fix.hypothesis}")
    print(f"  change:     {fix.change.describe()}; owner {fix.owner}; scenario {fix.scenario}")
    for expectation in fix.expectations:
        print(f"  expects:    {expectation.describe()}")
    if fix.verdict is None:
        print(f"  verified:   not yet (on {fix.verify_on})")
        return 0
    print("  verdict:")
    for line in verdict_message(fix).text.splitlines():
        print(f"    {line}")
    return 0


def _load(args: argparse.Namespace) -> list[FixRecord]:
    try:
        return _book(args).all()
    except FixError as error:
        raise CommandError(str(error)) from None
