"""The pages about the system: the plan as it is, administration without secrets, the audit
log's integrity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stumble.access.audit import BreakReason, BrokenRecord, VerifyResult
from stumble.access.keys import KeyRing
from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.config import Settings
from stumble.dashboard.model import Callout, TableBlock
from stumble.dashboard.system_pages import admin_page, audit_page, plan_page
from stumble.plan.model import TrackingPlan


def test_the_plan_page_lists_every_scenario_and_event(plan: TrackingPlan) -> None:
    page = plan_page(plan)
    tables = page.tables()
    assert [row[0] for row in tables["scenarios"].rows] == sorted(plan.scenarios)
    assert [row[0] for row in tables["events"].rows] == sorted(plan.events)
    request = next(r for r in tables["scenarios"].rows if r[0] == "create_service_request")
    assert "conversion ≥ 50%" in request[4] and "step p95 ≤ 120 s" in request[4]


def test_the_admin_page_shows_keys_and_tokens_but_never_a_secret(tmp_path: Path) -> None:
    keys = KeyRing(tmp_path)
    key_text, key = keys.create("prod", origins=["https://desk.example"])
    token_text, _ = TokenRing(tmp_path).create(Role.ANALYST, "ux_team")
    now = dt.datetime.now(dt.UTC)
    page = admin_page(keys.all(), TokenRing(tmp_path).list(), Settings(data_dir=str(tmp_path)), now)
    text = repr(page)
    assert key.key_id in text and "ux_team" in text
    for secret in (
        key_text,
        token_text,
        key.key_sha256,
        TokenRing(tmp_path).list()[0].token_sha256,
    ):
        assert secret not in text
    blocks = [b for s in page.sections for b in s.blocks if isinstance(b, TableBlock)]
    assert not any(b.exportable for b in blocks)


def test_the_audit_page_says_whether_the_chain_holds() -> None:
    intact = VerifyResult(records=3, digests=1, unsigned=2, head_checked=True)
    callout = audit_page([], intact, 0).sections[0].blocks[0]
    assert isinstance(callout, Callout) and callout.tone == "good"
    assert "not yet covered" in callout.text
    broken = VerifyResult(
        records=1, digests=0, unsigned=0, head_checked=True,
        broken=BrokenRecord(2, BreakReason.MALFORMED, "not JSON"),
    )  # fmt: skip
    assert audit_page([], broken, 0).sections[0].blocks[0].tone == "bad"  # type: ignore[union-attr]
    unknown = audit_page([], None, 0).sections[0].blocks[0]
    assert isinstance(unknown, Callout) and unknown.tone == "warning"
