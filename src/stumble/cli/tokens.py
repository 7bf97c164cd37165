"""``stumble tokens create|list|revoke``: API tokens for people and services reading stumble."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import msgspec

from stumble.access.audit import AuditAction, AuditDetail
from stumble.access.roles import Role
from stumble.access.tokens import Token, TokenError, TokenRing, check_token_name, from_ms
from stumble.cli.common import (
    CommandError,
    add_data_options,
    audit_change,
    audit_revocation,
    require_data_dir,
    settings_from,
)

MAX_LIFETIME: Final = timedelta(days=3650)
_RELATIVE_EXPIRY: Final = re.compile(r"([0-9]{1,7})([dhm])")
_ISO_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UNITS: Final = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
EXPIRES_HELP: Final = "90d, 12h, 30m, or a date YYYY-MM-DD (expires at 00:00 UTC that day)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tokens", help="manage API tokens (one role each) for reading stumble")
    actions = parser.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create an API token; the token is shown once")
    add_data_options(create)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", required=True, help="team or service, e.g. ux_team (no people)")
    create.add_argument("--expires", help=f"lifetime: {EXPIRES_HELP}; default never")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_create)

    listing = actions.add_parser("list", help="list API tokens (never the tokens themselves)")
    add_data_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_list)

    revoke = actions.add_parser("revoke", help="revoke a token: servers refuse it within a second")
    add_data_options(revoke)
    revoke.add_argument("token", metavar="ID_OR_NAME", help="token id, or name (all with it)")
    revoke.set_defaults(func=_revoke)


def parse_expiry(text: str, now: datetime) -> timedelta:
    """``90d``/``12h``/``30m`` or an ISO date (00:00 UTC that day) as a lifetime from ``now``."""
    relative = _RELATIVE_EXPIRY.fullmatch(text)
    if relative is not None:
        lifetime = int(relative.group(1)) * _UNITS[relative.group(2)]
    elif _ISO_DATE.fullmatch(text):
        lifetime = _midnight_utc(text) - now
    else:
        raise CommandError(f"--expires must be {EXPIRES_HELP}", 2)
    if lifetime <= timedelta(0):
        raise CommandError("--expires must be in the future", 2)
    if lifetime > MAX_LIFETIME:
        raise CommandError("--expires must be at most 3650 days away", 2)
    return lifetime


def _midnight_utc(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CommandError("--expires is not a calendar date (YYYY-MM-DD)", 2) from None
    return datetime.combine(day, time(0), UTC)


def _ring(args: argparse.Namespace) -> TokenRing:
    data_dir = require_data_dir(settings_from(args))
    try:
        return TokenRing(data_dir)
    except TokenError as error:
        raise CommandError(str(error)) from None


def _create(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    lifetime = None if args.expires is None else parse_expiry(args.expires, now)
    ring = _ring(args)
    try:
        check_token_name(args.name)  # before it is written anywhere, the audit log included
    except TokenError as error:
        raise CommandError(str(error)) from None
    audit_change(ring.path.parent, AuditAction.TOKEN_CREATE, AuditDetail(target=args.name))
    try:
        text, token = ring.create(Role(args.role), args.name, lifetime, now=now)
    except TokenError as error:
        raise CommandError(str(error)) from None
    if args.json:
        print(msgspec.json.encode(token.issued(text, now)).decode())
        return 0
    print(f"API token for {token.name} ({token.role}): {text}")
    print(f"token id: {token.token_id}; {_expiry_phrase(token)}.")
    print("Shown once: only its SHA-256 is stored. Revoke with `stumble tokens revoke ID`.")
    return 0


def _list(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    tokens = _ring(args).list()
    if args.json:
        print(msgspec.json.encode([t.info(now) for t in tokens]).decode())
        return 0
    if not tokens:
        print("no API tokens; create one with `stumble tokens create --role ROLE --name NAME`")
    for token in tokens:
        columns = f"{token.token_id}  {token.name:<24} {token.role:<8} {token.state(now):<7}"
        print(f"{columns}  {_expiry_phrase(token)}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    ring = _ring(args)
    try:
        tokens = ring.revoke(args.token)
    except TokenError as error:
        raise CommandError(str(error)) from None
    # Revoking is the safe direction: it is never held back for the audit log, only recorded.
    for token in tokens:
        audit_revocation(ring.path.parent, AuditAction.TOKEN_REVOKE, token.token_id)
    for token in tokens:
        assert token.revoked_at_ms is not None  # revoke() returns revoked tokens only
        when = _utc_text(token.revoked_at_ms)
        print(f"revoked {token.token_id} ({token.name}, {token.role}) at {when}")
    return 0


def _expiry_phrase(token: Token) -> str:
    if token.expires_at_ms is None:
        return "never expires"
    return f"expires {_utc_text(token.expires_at_ms)}"


def _utc_text(ms: int) -> str:
    return f"{from_ms(ms):%Y-%m-%d %H:%M} UTC"
