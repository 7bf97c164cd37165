"""Small-cell suppression: primary, complementary, and a property over random families."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stumble.analytics.suppression import CellCount, hidden_cells


def family(total: int, **groups: int) -> list[CellCount]:
    return [CellCount("f", None, total), *(CellCount("f", g, n) for g, n in groups.items())]


def test_nothing_is_hidden_when_every_group_is_large() -> None:
    assert hidden_cells(family(30, a=10, b=20), 5) == set()


def test_a_small_group_and_the_next_smallest_are_hidden_so_the_total_cannot_reveal_it() -> None:
    cells = family(33, a=3, b=10, c=20)
    assert hidden_cells(cells, 5) == {1, 2}  # a (primary) and b (complementary)


def test_complementary_suppression_continues_until_the_hidden_groups_hold_k_sessions() -> None:
    cells = family(29, a=1, b=2, c=6, d=20)
    # a + b = 3 < 5 would still describe fewer than k sessions: c goes too.
    assert hidden_cells(cells, 5) == {1, 2, 3}


def test_a_family_too_small_to_protect_loses_its_total_too() -> None:
    cells = family(4, a=1, b=3)
    assert hidden_cells(cells, 5) == {0, 1, 2}


def test_without_a_total_only_primary_suppression_applies() -> None:
    cells = [CellCount("f", "a", 3), CellCount("f", "b", 10)]
    assert hidden_cells(cells, 5) == {0}


def test_families_are_independent_and_k_of_one_hides_nothing() -> None:
    cells = [*family(33, a=3, b=10, c=20), CellCount("g", None, 50), CellCount("g", "x", 50)]
    assert hidden_cells(cells, 5) == {1, 2}
    assert hidden_cells(cells, 1) == set()


@settings(max_examples=300, deadline=None)
@given(
    groups=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8),
    k=st.integers(min_value=2, max_value=10),
)
def test_no_shown_cell_is_small_and_no_small_group_can_be_derived(
    groups: list[int], k: int
) -> None:
    cells = family(sum(groups), **{f"g{i}": n for i, n in enumerate(groups)})
    hidden = hidden_cells(cells, k)
    for index, cell in enumerate(cells):
        if index not in hidden:
            assert cell.sessions >= k
    if 0 not in hidden:
        hidden_groups = [cells[i].sessions for i in hidden if i != 0]
        # total - shown groups = the hidden groups together: a crowd of >= k, never one group.
        assert not hidden_groups or (len(hidden_groups) >= 2 and sum(hidden_groups) >= k)
