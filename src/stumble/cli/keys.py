"""``stumble keys create|list|revoke|update``: write keys per environment."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec

from stumble.access.audit import AuditAction, AuditDetail
from stumble.access.keys import KeyRing, KeyRingError, WriteKey
from stumble.cli.common import add_data_options, audit_change, audit_revocation, settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="manage write keys (one environment each)")
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a write key; the key is shown once")
    add_data_options(create)
    create.add_argument("--env", required=True, help="environment: prod, staging, test, dev…")
    create.add_argument("--origin", action="append", default=[], help="allowed origin (repeat)")
    create.add_argument("--sample-rate", type=float, default=1.0, help="share of sessions kept")
    create.add_argument("--label", default="", help="a note for admins, e.g. the app's name")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_create)

    listing = actions.add_parser("list", help="list keys (never the secrets)")
    add_data_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_list)

    revoke = actions.add_parser("revoke", help="revoke a key: its batches get 401 within a second")
    add_data_options(revoke)
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_revoke)

    update = actions.add_parser("update", help="change sample rate, kill switch or origins")
    add_data_options(update)
    update.add_argument("key_id")
    update.add_argument("--sample-rate", type=float)
    update.add_argument("--disable", action="store_true", help="kill switch: SDKs stop sending")
    update.add_argument("--enable", action="store_true")
    update.add_argument("--origin", action="append", help="replace allowed origins (repeat)")
    update.set_defaults(func=_update)

    from stumble.cli import datakeys  # noqa: PLC0415 - encryption at rest: data keys

    datakeys.register_actions(actions)


def _ring(args: argparse.Namespace) -> KeyRing:
    return KeyRing(Path(settings_from(args).data_dir))


def _create(args: argparse.Namespace) -> int:
    ring = _ring(args)
    detail = AuditDetail(environment=args.env)
    audit_change(ring.path.parent, AuditAction.WRITE_KEY_CREATE, detail)
    try:
        token, record = ring.create(args.env, args.origin, args.sample_rate, args.label)
    except (KeyRingError, msgspec.ValidationError) as error:
        print(f"error: {error}")
        return 1
    if args.json:
        print(msgspec.json.encode({"key": token, **_public(record)}).decode())
    else:
        print(f"write key for {record.environment}: {token}")
        print(f"key id: {record.key_id} (use it to revoke); the key itself is not stored.")
    return 0


def _list(args: argparse.Namespace) -> int:
    keys = [_public(k) for k in _ring(args).all()]
    if args.json:
        print(msgspec.json.encode(keys).decode())
        return 0
    for k in keys:
        state = "revoked" if k["revoked_at_ms"] else ("disabled" if not k["enabled"] else "active")
        origins = ",".join(str(o) for o in k["origins"]) or "(server-side only)"  # type: ignore[attr-defined]
        print(
            f"{k['key_id']}  {k['environment']:<8} {state:<8} rate={k['sample_rate']:<5} {origins}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    ring = _ring(args)
    try:
        ring.revoke(args.key_id)
    except KeyRingError as error:
        print(f"error: {error}")
        return 1
    # Revoking is the safe direction: it is never held back for the audit log, only recorded.
    audit_revocation(ring.path.parent, AuditAction.WRITE_KEY_REVOKE, args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def _update(args: argparse.Namespace) -> int:
    changes: dict[str, object] = {}
    if args.sample_rate is not None:
        changes["sample_rate"] = args.sample_rate
    if args.disable or args.enable:
        changes["enabled"] = bool(args.enable)
    if args.origin:
        from stumble.access.keys import normalise_origin  # noqa: PLC0415

        changes["origins"] = [normalise_origin(o) for o in args.origin]
    ring = _ring(args)
    detail = AuditDetail(target=args.key_id, settings=tuple(sorted(changes)))
    audit_change(ring.path.parent, AuditAction.WRITE_KEY_UPDATE, detail)
    try:
        ring.update(args.key_id, **changes)
    except (KeyRingError, msgspec.ValidationError) as error:
        print(f"error: {error}")
        return 1
    print(f"updated {args.key_id}")
    return 0


def _public(key: WriteKey) -> dict[str, object]:
    data: dict[str, object] = msgspec.to_builtins(key)
    data.pop("key_sha256", None)
    data.setdefault("revoked_at_ms", None)
    return data
