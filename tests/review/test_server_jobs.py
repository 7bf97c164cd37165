"""The review loop inside a running server: a fix whose day has come is verified by the
server's own scheduler and its verdict reaches the owner team's webhook, once."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from tests.review.test_delivery import Receiver
from tests.web.serving import served

from stumble.access.audit import AuditAction, audit_paths, read_records
from stumble.app import create_app
from stumble.cli.serve import bootstrap_data_dir
from stumble.config import Settings
from stumble.review.fixes import Change, Expectation, FixBook, FixRecord

TEAM = "team_service_desk"


def due_fix(today: dt.date) -> FixRecord:
    return FixRecord(
        fix_id="",
        title="Mask and hint on the IIN/BIN field",
        problem="field_error: iin_bin (format) on service_request step 2",
        scenario="create_service_request",
        hypothesis="A mask and a concrete message will halve format errors.",
        change=Change(ui_version="2.0.0", shipped_on=today - dt.timedelta(days=8)),
        owner=TEAM,
        expectations=[
            Expectation.parse("field_error_share:service_request step 2 iin_bin format=-20%")
        ],
        verify_on=today - dt.timedelta(days=1),
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=8),
        created_by="cli",
    )


def test_the_server_verifies_a_due_fix_and_tells_its_team_once(tmp_path: Path) -> None:
    box = Receiver()
    with served(box.app()) as hook_url:
        data_dir = tmp_path / "data"
        settings = Settings(
            data_dir=str(data_dir),
            review_timezone="UTC",
            fix_check_time="00:00",
            team_webhooks={TEAM: [f"{hook_url}/hook/desk"]},
        )
        bootstrap_data_dir(settings)
        fix = FixBook(data_dir).add(due_fix(dt.datetime.now(dt.UTC).date()))
        with served(create_app(settings)):
            deadline = time.monotonic() + 30
            while not FixBook(data_dir).get(fix.fix_id).verdict:
                assert time.monotonic() < deadline, "the server's scheduler did not verify it"
                time.sleep(0.2)
            while not any(b.get("key") == f"fix:{fix.fix_id}:verified" for _, b in box.bodies):
                assert time.monotonic() < deadline, "the verdict did not reach the webhook"
                time.sleep(0.2)
            time.sleep(3)  # another tick or two: nothing is sent twice
        verified = FixBook(data_dir).get(fix.fix_id)
    assert verified.verdict is not None
    # No traffic was ever stored: the verdict says so rather than guessing.
    assert verified.verdict.outcome == "no significant change"
    assert [e.verdict for e in verified.verdict.evidence] == ["no data"]
    sent = [b for _, b in box.bodies if b.get("key") == f"fix:{fix.fix_id}:verified"]
    assert len(sent) == 1 and sent[0]["team"] == TEAM
    assert sent[0]["data"]["outcome"] == "no significant change"
    records = read_records(audit_paths(data_dir).log).records
    targets = [r.detail.target for r in records if r.action == AuditAction.FIX_VERIFY and r.detail]
    # The verification, then its delivery to the team (the deliverer audits every send).
    assert targets == [fix.fix_id, f"{TEAM}/fix:{fix.fix_id}:verified"]
