"""Loops and returns per screen equal the simulation and an independent recount."""

from __future__ import annotations

from collections import Counter, defaultdict

from tests.analytics.conftest import Dataset, whole

from stumble.analytics.loops import run_loops
from stumble.analytics.queries import LoopQuery


def test_navigation_events_add_up_to_the_ground_truth(seed_story: Dataset) -> None:
    report = run_loops(seed_story.store, LoopQuery(whole())).data
    totals: Counter[str] = Counter()
    for screen in report.screens:
        for nav, use in screen.navigation.items():
            totals[nav] += use.events or 0
    assert {nav: n for nav, n in totals.items() if n} == seed_story.truth.all.navigation


def test_rates_per_screen_equal_an_independent_recount(seed_story: Dataset) -> None:
    report = run_loops(seed_story.store, LoopQuery(whole(by="ui_version"))).data
    on_screen: defaultdict[tuple[str, str | None], set[str]] = defaultdict(set)
    used: defaultdict[tuple[str, str, str | None], set[str]] = defaultdict(set)
    views: Counter[tuple[str, str]] = Counter()
    for event in seed_story.events():
        if event.kind not in ("screen_view", "navigation"):
            continue
        for group in (None, event.ui_version):
            on_screen[event.screen_id, group].add(event.session_id)
            if event.nav is not None:
                used[event.screen_id, event.nav, group].add(event.session_id)
        if event.kind == "screen_view":
            views[event.screen_id, event.session_id] += 1
    for row in report.screens:
        sessions = on_screen[row.screen_id, row.group]
        assert row.sessions == len(sessions)
        for nav, use in row.navigation.items():
            assert use.sessions.value == len(used[row.screen_id, nav, row.group]) / len(sessions)
        if row.group is None:
            again = sum(1 for (screen, _), n in views.items() if screen == row.screen_id and n > 1)
            assert row.reopened.value == again / len(sessions)
    request_form = report.screen("request_create", "1.4.2")
    fixed = report.screen("request_create", "2.0.0")
    assert request_form is not None and fixed is not None
    # People leave the broken form (back/close/cancel) more often than the fixed one.
    leave = ("back", "close", "cancel")
    before = sum(request_form.navigation[n].sessions.value or 0 for n in leave)
    after = sum(fixed.navigation[n].sessions.value or 0 for n in leave)
    assert before > after
