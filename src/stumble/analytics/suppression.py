"""Small-cell suppression: no aggregate an analyst sees describes fewer than k sessions.

Primary suppression hides every group with fewer than ``k`` distinct sessions. That alone is
not enough when a total is shown next to its groups: ``total - sum(shown groups)`` would give
the hidden group back. Complementary suppression therefore keeps hiding the smallest shown
group of the same family until the hidden groups together hold at least ``k`` sessions and
are at least two, so the difference describes a crowd rather than a person. When that cannot
be reached (the whole family is small), the total goes too.

A *family* is a set of cells that add up to one total: the groups of a breakdown for one
metric (one funnel step, one field error, one screen) plus the total cell (group ``None``).
Counts used here are observed sessions, never sampling-weighted estimates: k protects people,
and a sampled session is one person whatever it stands for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import NamedTuple


class CellCount(NamedTuple):
    """One aggregate: the family it adds up in, its group (None = the total), its sessions."""

    family: Hashable
    group: str | None
    sessions: int


def hidden_cells(cells: Sequence[CellCount], k: int) -> set[int]:
    """Indices of the cells to hide with threshold ``k`` (``k <= 1`` hides nothing)."""
    if k <= 1:
        return set()
    families: defaultdict[Hashable, list[int]] = defaultdict(list)
    for index, cell in enumerate(cells):
        families[cell.family].append(index)
    hidden: set[int] = set()
    for members in families.values():
        hidden |= _hide_in_family(cells, members, k)
    return hidden


def _hide_in_family(cells: Sequence[CellCount], members: list[int], k: int) -> set[int]:
    totals = [i for i in members if cells[i].group is None]
    # Smallest groups are hidden first (they cost the reader least); names break ties.
    groups = sorted(
        (i for i in members if cells[i].group is not None),
        key=lambda i: (cells[i].sessions, cells[i].group or ""),
    )
    hidden = {i for i in members if cells[i].sessions < k}
    if not totals or not (hidden & set(groups)):
        return hidden
    visible = [i for i in groups if i not in hidden]
    while visible and _revealing(cells, hidden & set(groups), k):
        hidden.add(visible.pop(0))
    if _revealing(cells, hidden & set(groups), k) and not visible:
        hidden.update(totals)  # every group is hidden and still small: the total is that group
    return hidden


def _revealing(cells: Sequence[CellCount], hidden_groups: set[int], k: int) -> bool:
    """Whether total minus the shown groups would describe fewer than k or a single group."""
    if not hidden_groups:
        return False
    return len(hidden_groups) < 2 or sum(cells[i].sessions for i in hidden_groups) < k
