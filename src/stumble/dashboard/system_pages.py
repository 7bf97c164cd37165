"""The pages about the system rather than the product: the tracking plan, administration, the
audit log and raw events. Builders take what they show as typed arguments (the web layer reads
keys, tokens, the audit log and raw rows, and audits the reads that need it)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from stumble.access.audit import AuditRecord, VerifyResult
from stumble.access.keys import WriteKey
from stumble.access.tokens import Token
from stumble.analytics.results import Column, Table
from stumble.config import Settings
from stumble.dashboard.model import Callout, Facts, Page, Pager, RowAction, Section, TableBlock
from stumble.plan.model import Scenario, TrackingPlan, describe_window
from stumble.raw_events import EventsPage, SessionTimeline


def _when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- tracking plan ------------------------------------------------------------------------


def plan_page(plan: TrackingPlan) -> Page:
    events = Table(
        "Events",
        (
            Column("event"),
            Column("kind"),
            Column("owner"),
            Column("description"),
            Column("closed values"),
            Column("status"),
        ),
        [
            (
                name,
                spec.kind,
                spec.owner or "–",
                spec.description,
                "; ".join(f"{field}: {len(values)}" for field, values in spec.values.items()),
                "deprecated" if spec.deprecated else "active",
            )
            for name, spec in sorted(plan.events.items())
        ],
    )
    scenarios = Table(
        "Scenarios",
        (
            Column("scenario"),
            Column("owner"),
            Column("steps"),
            Column("window"),
            Column("thresholds"),
        ),
        [
            (
                name,
                scenario.owner or "–",
                " → ".join(step.label for step in scenario.steps),
                describe_window(scenario.window_ms),
                _thresholds(scenario),
            )
            for name, scenario in sorted(plan.scenarios.items())
        ],
    )
    aliases = Table(
        "Aliases (renamed targets keep their trend)",
        (Column("old name"), Column("reported as")),
        sorted(plan.aliases.items()),
    )
    routes = Table(
        "Declared routes (the only routes stored)",
        (Column("route"),),
        [(route,) for route in plan.routes],
    )
    context = Table(
        "Context dimensions",
        (Column("dimension"), Column("allowed values")),
        [(name, ", ".join(values)) for name, values in sorted(plan.context.items())],
    )
    version = f"schema version {plan.schema_version}"
    if plan.min_schema_version:
        version += f" (oldest accepted: {plan.min_schema_version})"
    return Page(
        slug="plan",
        question="What do we track, who owns it, and what counts as a problem?",
        owner="the product team that owns the tracking plan",
        sections=[
            Section(
                "Scenarios and thresholds",
                [TableBlock("scenarios", scenarios)],
                intro=f"The plan in force: {version}.",
            ),
            Section("Events", [TableBlock("events", events)]),
            Section(
                "Context, aliases and routes",
                [
                    TableBlock("context", context),
                    TableBlock("aliases", aliases),
                    TableBlock("routes", routes),
                ],
            ),
        ],
        uses_filters=False,
    )


def _thresholds(scenario: Scenario) -> str:
    t = scenario.thresholds
    parts = [
        ("conversion ≥", t.min_conversion, "share"),
        ("step drop-off ≤", t.max_step_drop_off, "share"),
        ("field-error share ≤", t.max_field_error_share, "share"),
        ("step p95 ≤", t.max_step_p95_ms, "ms"),
        ("operation p95 ≤", t.max_operation_p95_ms, "ms"),
        ("error rate ≤", t.max_error_rate, "share"),
    ]
    shown = []
    for label, value, kind in parts:
        if value is None:
            continue
        text = f"{value:.0%}" if kind == "share" else f"{value / 1000:g} s"
        shown.append(f"{label} {text}")
    return "; ".join(shown) or "none"


# --- admin --------------------------------------------------------------------------------


def admin_page(
    keys: Sequence[WriteKey], tokens: Sequence[Token], settings: Settings, now: dt.datetime
) -> Page:
    key_table = Table(
        "Write keys",
        (
            Column("key"),
            Column("environment"),
            Column("label"),
            Column("state"),
            Column("sample rate", "share"),
            Column("allowed origins"),
            Column("created"),
        ),
        [
            (
                key.key_id,
                key.environment,
                key.label,
                "revoked" if key.revoked else ("enabled" if key.enabled else "off (kill switch)"),
                key.sample_rate,
                ", ".join(key.origins) or "any",
                _when(key.created_at_ms),
            )
            for key in keys
        ],
        "change with `stumble keys` (revoke, kill switch, sample rate); the secret is never shown",
    )
    token_table = Table(
        "API tokens",
        (Column("name"), Column("role"), Column("state"), Column("created"), Column("expires")),
        [
            (
                t.name,
                t.role,
                str(t.state(now)),
                _when(t.created_at_ms),
                _when(t.expires_at_ms) or "never",
            )
            for t in tokens
        ],
        "change with `stumble tokens create|revoke`; tokens are stored hashed",
    )
    retention = Facts(
        [
            *(
                (f"raw events, {env}", _days(days))
                for env, days in sorted(settings.retention_raw_days.items())
            ),
            ("raw events, other environments", _days(settings.retention_raw_default_days)),
            ("daily rollups", f"{settings.retention_rollup_months} months before this one"),
            ("quarantine counters", _days(settings.retention_quarantine_days)),
            ("audit log kept", _days(settings.retention_audit_days)),
            ("raw reads reach back", f"{_days(settings.raw_access_days)} (engineers, audited)"),
            ("audit log signed every", f"{settings.audit_digest_interval_s / 60:g} minutes"),
            (
                "encryption at rest",
                "on" if settings.data_key_file else "off, unless STUMBLE_DATA_KEY is set",
            ),
        ]
    )
    return Page(
        slug="admin",
        question="Who can send and read data, and how long is it kept?",
        owner="the administrators of this stumble",
        sections=[
            Section(
                "Write keys",
                [TableBlock("keys", key_table, exportable=False, actions=_key_actions(keys))],
                intro="Turning a key off is the kill switch: browsers stop sending within a "
                "second, and what they send meanwhile is refused.",
            ),
            Section(
                "API tokens",
                [
                    TableBlock(
                        "tokens", token_table, exportable=False, actions=_token_actions(tokens, now)
                    )
                ],
            ),
            Section("Retention and access", [retention]),
        ],
        uses_filters=False,
    )


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def _key_actions(keys: Sequence[WriteKey]) -> list[RowAction | None]:
    actions: list[RowAction | None] = []
    for key in keys:
        if key.revoked:
            actions.append(None)
            continue
        turn_on = not key.enabled
        actions.append(
            RowAction(
                label="Turn on" if turn_on else "Turn off",
                url=f"/api/v1/keys/{key.key_id}",
                body=json.dumps({"enabled": turn_on}),
                confirm=""
                if turn_on
                else f"Turn off write key {key.key_id} ({key.environment})? "
                "Browsers using it stop sending.",
            )
        )
    return actions


def _token_actions(tokens: Sequence[Token], now: dt.datetime) -> list[RowAction | None]:
    return [
        RowAction(
            label="Revoke",
            url=f"/api/v1/tokens/{token.token_id}/revoke",
            confirm=f"Revoke the API token {token.name}? It stops working within a second.",
        )
        if token.is_active(now)
        else None
        for token in tokens
    ]


# --- audit --------------------------------------------------------------------------------


def audit_page(
    records: Sequence[AuditRecord], verification: VerifyResult | None, unreadable: int
) -> Page:
    table = Table(
        "Latest records, newest first",
        (
            Column("#", "int"),
            Column("time"),
            Column("who"),
            Column("action"),
            Column("outcome"),
            Column("route or target"),
            Column("filters"),
            Column("rows", "int"),
        ),
        [
            (
                r.seq,
                r.at,
                f"{r.actor.kind}:{r.actor.name}" if r.actor.name else str(r.actor.kind),
                str(r.action),
                str(r.outcome),
                (r.detail.route or r.detail.target or "") if r.detail else "",
                ", ".join(r.detail.filters) if r.detail else "",
                r.detail.rows if r.detail else None,
            )
            for r in reversed(records)
        ],
        "filters are named, never their values; reading this page is itself recorded",
    )
    return Page(
        slug="audit",
        question="Who read or changed what, and is the record intact?",
        owner="InfoSec and the auditors",
        sections=[
            Section("Integrity", [_integrity(verification, unreadable)]),
            Section("Records", [TableBlock("records", table, exportable=False)]),
        ],
        uses_filters=False,
    )


def _integrity(verification: VerifyResult | None, unreadable: int) -> Callout:
    if verification is None:
        return Callout("The chain could not be checked: the audit key is not readable.", "warning")
    if verification.broken is not None:
        broken = verification.broken
        return Callout(f"Broken at {broken.where}: {broken.reason} — {broken.explanation}", "bad")
    text = (
        f"Intact: {verification.records} records and {verification.digests} signed digests "
        "check out."
    )
    if verification.unsigned:
        text += f" The last {verification.unsigned} are not yet covered by a digest."
    if unreadable:
        text += f" {unreadable} lines could not be read."
    return Callout(text, "good")


# --- raw events ---------------------------------------------------------------------------


RAW_COLUMNS = (
    Column("time"),
    Column("event"),
    Column("kind"),
    Column("screen"),
    Column("session"),
    Column("details"),
)


def raw_page(page: EventsPage, environment: str, window: str, next_link: str | None) -> Page:
    table = Table(
        f"Latest events in {environment}",
        RAW_COLUMNS,
        [
            (
                _when(e.ts),
                e.event_name,
                e.kind,
                e.screen_id,
                e.session_id,
                _details(e),
            )
            for e in page.events
        ],
        "session: a keyed pseudonym that changes daily; follow it for the session's timeline",
    )
    return Page(
        slug="raw",
        question="What exactly happened? (raw events, engineers only)",
        owner="engineering",
        sections=[
            Section(
                "Events",
                [
                    Callout(
                        f"Raw rows are readable for {window}; every read is in the audit log.",
                        "info",
                    ),
                    TableBlock(
                        "events",
                        table,
                        exportable=False,
                        link_column=4,
                        link_prefix="/raw/session/",
                    ),
                    Pager(next_link),
                ],
            ),
        ],
        uses_filters=False,
    )


def _details(event: object) -> str:
    fields = (
        "action_id",
        "target",
        "form_id",
        "step",
        "field_id",
        "error_type",
        "operation",
        "status",
        "duration_ms",
        "http_status",
        "metric",
        "value",
    )
    parts = []
    for name in fields:
        value = getattr(event, name, None)
        if value is not None:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def session_page(timeline: SessionTimeline, pseudonym: str) -> Page:
    table = Table(
        "Timeline",
        (
            Column("after", "ms"),
            Column("screen"),
            Column("event"),
            Column("kind"),
            Column("details"),
        ),
        [
            (e.since_start_ms, e.screen_id, e.event_name, e.kind, _details(e))
            for e in timeline.events
        ],
    )
    return Page(
        slug="raw",
        question=f"One session, step by step ({pseudonym})",
        owner="engineering",
        sections=[Section("Timeline", [TableBlock("timeline", table, exportable=False)])],
        uses_filters=False,
    )
