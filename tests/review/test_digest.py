"""The weekly digest on the dashboard tests' simulated dataset (UI 1.4.2 in 2026-W10, 2.0.0 in
2026-W11): its content, the Markdown golden file, the standalone HTML in Debian's Chromium
with every request refused, and the weekly job on a controllable clock against a real HTTP
receiver."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.web.serving import served

from stumble.access.audit import AuditAction, AuditLog, audit_paths, read_records
from stumble.analytics.health import HealthResult, ReasonCount, SkewSummary
from stumble.config import Settings
from stumble.plan.model import TrackingPlan
from stumble.review.calendar import Week
from stumble.review.delivery import Deliverer
from stumble.review.digest import (
    NOT_DRAWN,
    Digest,
    DigestJob,
    FixSummary,
    _health_warnings,
    build_digest,
    chart_svg,
    digest_message,
    fix_summaries,
    load_fixes,
    render_html,
    render_markdown,
    send_time,
    week_due,
)
from stumble.storage import DuckDBStore

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("STUMBLE_UPDATE_GOLDEN") == "1"
W10, W11 = Week(2026, 10), Week(2026, 11)
DESK = "team_service_desk"
FIXES = (
    FixSummary("fix-0003", "Mask the IIN field", DESK, dt.date(2026, 3, 23), "open"),
    FixSummary(
        "fix-0001", "Explain the password rule", "team_platform", dt.date(2026, 3, 12), "open"
    ),
    FixSummary(
        "fix-0002",
        "Faster report export",
        "team_reports",
        dt.date(2026, 3, 11),
        "verified",
        verdict="improved",
        checked_on=dt.date(2026, 3, 11),
    ),
    FixSummary(
        "fix-0000",
        "An old fix",
        "team_search",
        dt.date(2026, 2, 1),
        "verified",
        verdict="regressed",
        checked_on=dt.date(2026, 2, 1),
    ),
)


@pytest.fixture(scope="module")
def digest(store: DuckDBStore, plan: TrackingPlan) -> Digest:
    return build_digest(store, plan, W11, fixes=FIXES)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (STUMBLE_UPDATE_GOLDEN=1)"


# --- content --------------------------------------------------------------------------------


def test_the_digest_holds_the_weeks_review(digest: Digest, plan: TrackingPlan) -> None:
    assert digest.key == "digest:2026-W11:prod"
    assert digest.environment == "prod"  # the dashboard's choice: prod has data
    assert digest.problems, "the seed's dataset has problems beyond the plan's thresholds"
    assert [p.rank for p in digest.problems] == list(range(1, len(digest.problems) + 1))
    assert all(p.owner.startswith("team_") and p.action for p in digest.problems)
    assert [s.scenario for s in digest.scenarios] == list(plan.scenarios)
    # UI 2.0.0 shipped in W11: the request form converts better than in W10, significantly.
    request = digest.scenarios[0]
    assert request.scenario == "create_service_request"
    assert request.conversion.tone == "good"
    assert request.conversion.direction == "up"
    assert any(line.startswith("create service request: conversion") for line in digest.changes)
    # open fixes by verification day, then the verdict reached during the week; older ones not
    assert [f.fix_id for f in digest.fixes] == ["fix-0001", "fix-0003", "fix-0002"]
    assert digest.overdue(digest.fixes[0])
    assert not digest.overdue(digest.fixes[1])


def test_new_items_are_those_absent_or_at_most_half_as_frequent_last_week(
    store: DuckDBStore, plan: TrackingPlan, digest: Digest
) -> None:
    first_week = build_digest(store, plan, W10)
    # Nothing was stored the week before W10: everything it shows is new.
    assert first_week.field_errors
    assert all(e.sessions_before is None for e in first_week.field_errors)
    assert all(f.sessions_before is None for f in first_week.failures)
    for item in (*digest.field_errors, *digest.failures):
        assert item.sessions_before is None or item.sessions >= 2 * item.sessions_before
    # W10's field errors carry on into W11 at a similar rate (or fall with 2.0.0): not new.
    assert len(digest.field_errors) < len(first_week.field_errors)


def test_a_teams_copy_lists_its_items_first_and_keeps_everyone_elses(digest: Digest) -> None:
    platform = digest.for_team("team_platform")

    assert platform.team == "team_platform"
    assert sorted(platform.problems, key=lambda p: p.rank) == list(digest.problems)
    owners = [p.owner for p in platform.problems]
    assert "team_platform" in owners
    mine = owners.count("team_platform")
    assert owners[:mine] == ["team_platform"] * mine
    assert platform.scenarios[0].owner == "team_platform"
    assert platform.fixes[0].owner == "team_platform"
    assert len(platform.scenarios) == len(digest.scenarios)


def test_health_warnings_are_counts_and_reason_codes() -> None:
    result = HealthResult(
        per_day=[],
        rejected=[
            ReasonCount(reason="privacy.iin", environment="prod", count=7, field_path="params.q"),
            ReasonCount(reason="schema.unknown_field", environment="prod", count=3),
            ReasonCount(reason="privacy.iin", environment="staging", count=100),
        ],
        redactions=[],
        duplicates=[],
        clock_skew=[
            SkewSummary(
                environment="prod",
                events=1000,
                p01_ms=-10.0,
                p50_ms=40.0,
                p99_ms=7_000_000.0,
                max_abs_ms=7_200_000,
                buckets={"beyond_1h": 0.012},
            )
        ],
        timers=[],
        not_in_plan=[],
        schema_versions=[],
        test_data=[],
    )
    warnings = _health_warnings(result, "prod")

    assert [(w.kind, w.count) for w in warnings] == [("refused", 10), ("clock_skew", 12)]
    assert warnings[0].text == "events refused (most: privacy.iin 7, schema.unknown_field 3)"
    assert "params.q" not in warnings[0].text


def test_fix_records_become_summaries(tmp_path: Path) -> None:
    from tests.review.test_fixes import draft

    from stumble.review.fixes import FixBook, FixVerdict

    recorded = FixBook(tmp_path).add(draft())
    (summary,) = load_fixes(tmp_path)
    assert summary == FixSummary(
        recorded.fix_id,
        recorded.title,
        DESK,
        recorded.verify_on,
        "open",
        environment="prod",
    )
    checked = dt.datetime(2026, 3, 16, 8, tzinfo=dt.UTC)
    verdict = FixVerdict(
        outcome="improved",
        checked_at=checked,
        before_from=dt.date(2026, 3, 2),
        before_to=dt.date(2026, 3, 8),
        after_from=dt.date(2026, 3, 9),
        after_to=dt.date(2026, 3, 15),
        sessions_before=600,
        sessions_after=616,
        evidence=[],
    )
    (verified,) = fix_summaries([msgspec.structs.replace(recorded, verdict=verdict)])
    assert (verified.status, verified.verdict, verified.checked_on) == (
        "verified",
        "improved",
        checked.date(),
    )


# --- Markdown -------------------------------------------------------------------------------


def test_markdown_is_stable(digest: Digest) -> None:
    check_golden("digest-2026-W11.md", render_markdown(digest.for_team(DESK)))


def test_markdown_marks_the_teams_items(digest: Digest) -> None:
    text = render_markdown(digest.for_team(DESK))
    everyone = render_markdown(digest)

    assert "**your team**" in text
    assert "your team" not in everyone
    assert text.count("\n1. ") == 1
    assert "OVERDUE" in text  # fix-0001 was due on 2026-03-12


# --- HTML -----------------------------------------------------------------------------------


def test_html_is_standalone(digest: Digest) -> None:
    html = render_html(digest.for_team(DESK))

    assert html.startswith("<!doctype html>")
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href)\s*=", html), "no external asset, no link to follow"
    # no CSS fetch either: url() only names a clip path inside the document, once each
    references = re.findall(r"url\(([^)]*)\)", html)
    assert references
    assert all(ref.startswith("#") for ref in references)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "inline SVGs must not share an id"
    assert {ref[1:] for ref in references} <= set(ids)
    assert "@import" not in html
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)
    # the problems chart and one sparkline per scenario with data
    assert len(svgs) == 1 + sum(1 for s in digest.scenarios if s.trend)
    for svg in svgs:
        assert 'width="' in svg
        assert "<path" in svg
    for section in ("problems", "scenarios", "changes", "field-errors", "failures", "fixes"):
        assert f'id="{section}"' in html


def test_a_chart_never_fetches_and_a_bad_one_costs_only_itself() -> None:
    fetching = {"mark": "bar", "data": {"url": "https://example.org/values.json"}}
    assert chart_svg(fetching) == NOT_DRAWN  # vl-convert refuses every data URL
    drawn = chart_svg({"mark": "bar", "data": {"values": [{"a": 1}]}, "encoding": {}})
    assert drawn.startswith("<svg")


def test_the_message_is_keyed_per_week_and_environment(digest: Digest) -> None:
    message = digest_message(digest.for_team(DESK))

    assert message.key == "digest:2026-W11:prod"
    assert message.subject.startswith("stumble: Weekly UX review 2026-W11 · prod:")
    assert message.html is not None
    assert message.markdown == message.text
    data = json.loads(msgspec.json.encode(message.data))
    assert data["week"] == "2026-W11"
    assert data["team"] == DESK
    assert data["problems"][0]["owner"] == DESK  # the team's own problem first
    assert {f["fix_id"] for f in data["fixes"]} == {"fix-0001", "fix-0002", "fix-0003"}


@pytest.mark.browser
def test_html_renders_in_chromium_without_any_request(digest: Digest) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    html = render_html(digest.for_team(DESK))
    requested: list[str] = []

    def refuse(route: Any) -> None:
        requested.append(route.request.url)
        route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 700, "height": 900})
            page.route("**/*", refuse)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.set_content(html, wait_until="load")
            boxes = page.eval_on_selector_all(
                "svg",
                "els => els.map(e => [e.getBoundingClientRect().width,"
                " e.getBoundingClientRect().height, e.querySelectorAll('path').length])",
            )
            # Labels measured by vl-convert must fit where Chromium draws them.
            overflow = page.eval_on_selector_all(
                "svg",
                "els => Math.max(0, ...els.flatMap(svg => {"
                " const box = svg.getBoundingClientRect();"
                " return [...svg.querySelectorAll('text')].map(t => {"
                " const r = t.getBoundingClientRect();"
                " return Math.max(box.left - r.left, r.right - box.right); }); }))",
            )
            heading = page.inner_text("h1")
            # For a person to look at: $STUMBLE_ARTIFACTS/screenshots (test-artifacts/).
            shots = Path(os.environ.get("STUMBLE_ARTIFACTS") or REPO / "test-artifacts")
            (shots / "screenshots").mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "screenshots/digest-2026-W11.png"), full_page=True)
        finally:
            browser.close()

    assert requested == []
    assert errors == []
    assert heading == "Weekly UX review 2026-W11 · prod"
    assert len(boxes) == 1 + sum(1 for s in digest.scenarios if s.trend)
    assert all(width > 0 and height > 0 and paths > 0 for width, height, paths in boxes)
    assert overflow <= 1.0, f"a chart label sticks out of its chart by {overflow:.1f} px"


# --- the weekly job -------------------------------------------------------------------------


@dataclass
class Hooks:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    failures_left: int = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            if self.failures_left > 0:
                self.failures_left -= 1
                return JSONResponse({}, status_code=502)
            self.bodies.append(json.loads(await request.body()))
            return JSONResponse({})

        return Starlette(routes=[Route("/hook/{team}", hook, methods=["POST"])])


@pytest.fixture
def hooks() -> Iterator[tuple[Hooks, str]]:
    box = Hooks()
    with served(box.app()) as url:
        yield box, url


BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def berlin(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment in March 2026, Berlin time, as the scheduler passes it (aware UTC)."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=BERLIN).astimezone(dt.UTC)


def job_settings(data_dir: Path, url: str) -> Settings:
    return msgspec.convert(
        {
            "data_dir": str(data_dir),
            "review_timezone": "Europe/Berlin",
            "digest_weekday": "monday",
            "digest_time": "09:00",
            "team_webhooks": {DESK: [f"{url}/hook/desk"], "team_platform": [f"{url}/hook/pf"]},
            "team_chat_webhooks": {"team_search": [f"{url}/hook/search"]},
        },
        Settings,
    )


def make_job(config: Settings, store: DuckDBStore, plan: TrackingPlan) -> DigestJob:
    audit = AuditLog.in_data_dir(Path(config.data_dir))
    deliverer = Deliverer(config, audit=audit)
    return DigestJob(config, store, plan, deliverer, fixes=lambda: FIXES)


def test_send_time_is_local(tmp_path: Path) -> None:
    config = job_settings(tmp_path, "http://127.0.0.1:9")
    assert send_time(config, W11) == berlin(16, 9)
    assert week_due(config, berlin(16, 8, 59)) is None
    assert week_due(config, berlin(16, 9)) == W11
    assert week_due(config, berlin(22, 23, 59)) == W11  # Sunday night: still W11's
    config.digest_weekday = "wednesday"
    assert week_due(config, berlin(17, 12)) is None
    assert week_due(config, berlin(18, 9)) == W11


def test_the_job_sends_each_team_its_digest_once(
    tmp_path: Path, hooks: tuple[Hooks, str], store: DuckDBStore, plan: TrackingPlan
) -> None:
    box, url = hooks
    config = job_settings(tmp_path, url)
    job = make_job(config, store, plan)

    assert not job.due(berlin(16, 8, 59))
    assert job.due(berlin(16, 9))
    job.run(berlin(16, 9))
    teams = sorted(body.get("team", "chat") for body in box.bodies)
    assert teams == ["chat", "team_platform", DESK]
    desk = next(b for b in box.bodies if b.get("team") == DESK)
    assert desk["key"] == "digest:2026-W11:prod"
    assert desk["data"]["team"] == DESK
    chat = next(b for b in box.bodies if "text" in b)
    assert chat["text"].startswith("# Weekly UX review 2026-W11 · prod")

    # Run again, or restart the server (a new job): nothing more is due or sent.
    assert not job.due(berlin(16, 9, 1))
    job.run(berlin(16, 9, 1))
    restarted = make_job(config, store, plan)
    assert not restarted.due(berlin(18, 12))
    restarted.run(berlin(18, 12))
    assert len(box.bodies) == 3

    records = read_records(audit_paths(tmp_path).log).records
    sends = [r for r in records if r.action == AuditAction.DIGEST_SEND]
    assert sorted(r.detail.target for r in sends) == sorted(
        f"{team}/digest:2026-W11:prod" for team in (DESK, "team_platform", "team_search")
    )


def test_a_failed_send_is_retried_later(
    tmp_path: Path, hooks: tuple[Hooks, str], store: DuckDBStore, plan: TrackingPlan
) -> None:
    box, url = hooks
    config = job_settings(tmp_path, url)
    config.team_chat_webhooks = {}
    config.team_webhooks = {DESK: [f"{url}/hook/desk"]}
    box.failures_left = 1
    job = make_job(config, store, plan)

    job.run(berlin(16, 9))
    assert box.bodies == []
    assert not job.due(berlin(16, 9, 5))  # waits before trying again
    assert job.due(berlin(16, 9, 20))
    job.run(berlin(16, 9, 20))
    assert [b["team"] for b in box.bodies] == [DESK]
    assert not job.due(berlin(16, 9, 40))
