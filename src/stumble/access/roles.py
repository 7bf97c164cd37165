"""Roles and the permission model: what a person holding an API token may read or change.

A route asks for one ``Permission``; a token carries one ``Role``; ``ROLE_PERMISSIONS`` is the
only place that says which role grants what, so a reviewer reads the whole policy here:

=========  ======================================================================
admin      everything: write keys, API tokens, settings, and every read below
engineer   aggregates, raw events and session paths (a short window), data health, metrics,
           fix records
analyst    aggregates only (with small-cell suppression), never a raw row; fix records
auditor    the audit log, retention status and data health: proof, not product data
=========  ======================================================================

Raw rows are the one read that can come close to a person, so ``READ_RAW`` is granted for a
window (``RAW_WINDOW_DEFAULT``) that the query layer enforces, and every such read is audited.
A write key is not a role: it lets a browser send events and grants no permission here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Final


class Permission(enum.StrEnum):
    """One thing a route may ask for; values are stable (audit records and the API use them)."""

    READ_AGGREGATES = "read_aggregates"
    """Reports built from rollups and suppressed aggregates: funnels, field errors, timings."""
    READ_RAW = "read_raw"
    """Raw events and session paths, only within the raw window."""
    READ_AUDIT = "read_audit"
    """The audit log: who read what, who changed keys, tokens and settings."""
    READ_HEALTH = "read_health"
    """Data health: ingest counts, refusals by reason code, loader lag."""
    READ_RETENTION = "read_retention"
    """Retention status: the tiers in force and when data was last deleted."""
    READ_METRICS = "read_metrics"
    """Operational metrics (the Prometheus exposition)."""
    RECORD_FIXES = "record_fixes"
    """Record a UI fix and the day it verifies itself (the review loop's own record)."""
    MANAGE_KEYS = "manage_keys"
    MANAGE_TOKENS = "manage_tokens"
    MANAGE_SETTINGS = "manage_settings"


class Role(enum.StrEnum):
    """Who a token speaks for; see the module docstring for the table."""

    ADMIN = "admin"
    ENGINEER = "engineer"
    ANALYST = "analyst"
    AUDITOR = "auditor"

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self]

    def grants(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self]


RAW_WINDOW_DEFAULT: Final = timedelta(days=7)
"""How far back ``READ_RAW`` reaches unless settings say otherwise (design brief: 7 days)."""

ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = MappingProxyType(
    {
        Role.ADMIN: frozenset(Permission),
        Role.ENGINEER: frozenset(
            {
                Permission.READ_AGGREGATES,
                Permission.READ_RAW,
                Permission.READ_HEALTH,
                Permission.READ_METRICS,
                Permission.RECORD_FIXES,
            }
        ),
        Role.ANALYST: frozenset({Permission.READ_AGGREGATES, Permission.RECORD_FIXES}),
        Role.AUDITOR: frozenset(
            {Permission.READ_AUDIT, Permission.READ_HEALTH, Permission.READ_RETENTION}
        ),
    }
)
