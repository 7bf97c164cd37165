"""Frustration signals on hand-built sessions: repeats, quick backs, dead actions; thresholds."""

from __future__ import annotations

import msgspec
from tests.analytics.handmade import SCOPE, click, event, view

from stumble.analytics.frustration import (
    FrustrationQuery,
    FrustrationResult,
    FrustrationThresholds,
    run_frustration,
)
from stumble.config import Settings
from stumble.events import StoredEvent
from stumble.storage import DuckDBStore

DEFAULTS = FrustrationThresholds()


def run(rows: list[StoredEvent], thresholds: FrustrationThresholds = DEFAULTS) -> FrustrationResult:
    with DuckDBStore(":memory:") as store:
        store.write_rows(rows)
        return run_frustration(store, FrustrationQuery(SCOPE, thresholds), min_group_size=1).data


def counts(rows: list) -> dict[tuple[str, str | None], tuple[int | None, int | None]]:  # type: ignore[type-arg]
    return {(r.screen_id, r.target): (r.events, r.sessions) for r in rows}


def test_repeated_actions_on_one_target_within_a_second() -> None:
    rows = [
        view(1, 0, "form"),
        click(1, 1, "form", "save"),
        click(1, 1.5, "form", "save"),  # a repeat
        click(1, 1.9, "form", "save"),  # and another
        click(1, 5, "form", "save"),  # four seconds later: a new try, not a repeat
        click(1, 5.2, "form", "cancel"),  # another target
        view(1, 6, "done"),
    ]
    result = run(rows)
    assert counts(result.repeats) == {("form", "save"): (2, 1)}


def test_text_inputs_are_left_out() -> None:
    rows = [click(1, t, "form", "name_field") for t in (1, 1.2, 1.4)] + [view(1, 9, "x")]
    assert counts(run(rows).repeats) == {("form", "name_field"): (2, 1)}
    excluded = run(rows, FrustrationThresholds(text_targets=("name_field",)))
    assert excluded.repeats == [] and excluded.dead_actions == []


def test_a_screen_left_at_once_for_the_one_before() -> None:
    rows = [view(1, 0, "list"), view(1, 10, "item"), view(1, 12, "list")]  # 2 s: quick back
    rows += [view(2, 0, "list"), view(2, 10, "item"), view(2, 30, "list")]  # 20 s: read it
    rows += [view(3, 0, "list"), view(3, 10, "item"), view(3, 12, "other")]  # went on
    assert counts(run(rows).quick_backs) == {("item", None): (1, 1)}


def test_an_action_followed_by_nothing() -> None:
    rows = [
        click(1, 0, "form", "print"),  # nothing for 10 s: dead
        click(1, 10, "form", "save"),
        event(1, "operation_start", 10.5, "form", operation="save", operation_id="o1"),
        click(1, 20, "form", "help"),  # the session's last event: not judged
    ]
    result = run(rows)
    assert counts(result.dead_actions) == {("form", "print"): (1, 1)}
    assert result.thresholds == {"repeat_ms": 1000, "quick_back_ms": 5000, "dead_ms": 3000}


def test_the_defaults_are_the_settings_defaults() -> None:
    settings = msgspec.structs.asdict(Settings())
    defaults = FrustrationThresholds()
    assert settings["frustration_repeat_ms"] == defaults.repeat_ms
    assert settings["frustration_quick_back_ms"] == defaults.quick_back_ms
    assert settings["frustration_dead_ms"] == defaults.dead_ms
    assert tuple(settings["frustration_text_targets"]) == defaults.text_targets
