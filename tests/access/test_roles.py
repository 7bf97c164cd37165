"""The permission model, pinned: a change to who may do what must change this file too."""

from __future__ import annotations

from stumble.access.roles import ROLE_PERMISSIONS, Permission, Role

P = Permission


def test_the_table_is_exactly_the_documented_one() -> None:
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == {
        Role.ADMIN: set(Permission),
        Role.ENGINEER: {
            P.READ_AGGREGATES,
            P.READ_RAW,
            P.READ_HEALTH,
            P.READ_METRICS,
            P.RECORD_FIXES,
        },
        Role.ANALYST: {P.READ_AGGREGATES, P.RECORD_FIXES},
        Role.AUDITOR: {P.READ_AUDIT, P.READ_HEALTH, P.READ_RETENTION},
    }


def test_values_are_stable_names() -> None:
    assert [r.value for r in Role] == ["admin", "engineer", "analyst", "auditor"]
    assert {p.value for p in Permission} == {
        "read_aggregates",
        "read_raw",
        "read_audit",
        "read_health",
        "read_retention",
        "read_metrics",
        "record_fixes",
        "manage_keys",
        "manage_tokens",
        "manage_settings",
    }


def test_only_admin_manages_and_only_admin_and_engineer_read_raw() -> None:
    managing = {P.MANAGE_KEYS, P.MANAGE_TOKENS, P.MANAGE_SETTINGS}
    for role in Role:
        assert bool(role.permissions & managing) == (role is Role.ADMIN)
        assert role.grants(P.READ_RAW) == (role in {Role.ADMIN, Role.ENGINEER})


def test_analyst_reads_aggregates_only_and_auditor_no_product_data() -> None:
    assert Role.ANALYST.permissions == {P.READ_AGGREGATES, P.RECORD_FIXES}
    assert not Role.AUDITOR.grants(P.READ_AGGREGATES)
    assert not Role.AUDITOR.grants(P.READ_RAW)


def test_the_table_cannot_be_changed_at_run_time() -> None:
    assert not hasattr(ROLE_PERMISSIONS, "__setitem__")
    assert isinstance(ROLE_PERMISSIONS[Role.ANALYST], frozenset)
