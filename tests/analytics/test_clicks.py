"""Clicks by target and position: counts per screen, the plan's aliases applied, small cells hidden."""

from __future__ import annotations

from tests.analytics.handmade import SCOPE, click, view

from stumble.analytics.clicks import ClickQuery, run_clicks
from stumble.storage import DuckDBStore


def test_a_renamed_target_keeps_one_trend() -> None:
    rows = []
    for s in range(6):  # before the redesign: btn_send; after: btn_submit
        rows += [view(s, 0, "form"), click(s, 1, "form", "btn_send", position="footer")]
    for s in range(6, 12):
        rows += [view(s, 0, "form"), click(s, 1, "form", "btn_submit", position="footer")]
        rows += [click(s, 2, "form", "btn_submit", position="footer")]
    for s in range(12, 20):
        rows += [view(s, 0, "form")]  # viewed, clicked nothing
    with DuckDBStore(":memory:") as store:
        store.write_rows(rows)
        query = ClickQuery(SCOPE, aliases=(("btn_send", "btn_submit"),))
        result = run_clicks(store, query, min_group_size=1).data
    (row,) = result.targets
    assert (row.screen_id, row.target, row.position) == ("form", "btn_submit", "footer")
    assert (row.events, row.sessions) == (18, 12)
    assert row.share == 12 / 20  # of the sessions that viewed the screen
    assert result.aliases == {"btn_send": "btn_submit"}


def test_targets_are_ranked_and_small_ones_hidden_with_a_complement() -> None:
    rows = []
    for s in range(20):
        rows += [view(s, 0, "list"), click(s, 1, "list", "row", position="body")]
    rows += [click(20, 1, "list", "sort", position="header")]  # one session: small
    rows += [click(s, 2, "list", "export", position="header") for s in range(3)]  # small too
    with DuckDBStore(":memory:") as store:
        store.write_rows(rows)
        result = run_clicks(store, ClickQuery(SCOPE), min_group_size=5).data
    shown = [(t.target, t.sessions) for t in result.targets if not t.hidden]
    assert shown == [("row", 20)]
    assert {t.target for t in result.targets if t.hidden} == {"export", "sort"}
