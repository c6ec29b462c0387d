"""``require_balanced``: kept positions of a grouped layer, split into per-group local positions."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prunekit.errors import SurgeryError
from prunekit.rules.base import require_balanced


def _by_loop(idx: list[int], total: int, groups: int) -> list[list[int]]:
    per = total // groups
    buckets: list[list[int]] = [[] for _ in range(groups)]
    for c in idx:
        buckets[c // per].append(c % per)
    return buckets


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 6), st.integers(1, 5), st.integers(0, 5))
def test_rows_are_each_groups_local_positions_in_order(data, groups: int, per: int, keep: int) -> None:  # noqa: ANN001
    keep = min(keep, per)
    chosen = [sorted(data.draw(st.permutations(range(per)))[:keep]) for _ in range(groups)]
    idx = [g * per + c for g in range(groups) for c in chosen[g]]
    idx = data.draw(st.permutations(idx))  # any order: each row keeps the order it came in
    out = require_balanced(torch.tensor(idx, dtype=torch.long), groups * per, groups, "outputs", "conv")
    assert out.tolist() == _by_loop(idx, groups * per, groups)
    assert out.shape == (groups, keep)


def test_unequal_groups_name_the_layer_and_the_counts() -> None:
    with pytest.raises(SurgeryError, match=r"conv: outputs of a grouped layer .* 2 groups, but got \[2, 1\]"):
        require_balanced(torch.tensor([0, 1, 4]), 8, 2, "outputs", "conv")
