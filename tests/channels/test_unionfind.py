"""UnionFind: the batched union gives the same sets and roots as one union at a time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from prunekit.channels.unionfind import UnionFind

pairs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))
)


@settings(max_examples=150, deadline=None)
@given(pairs)
def test_union_pairs_matches_one_union_at_a_time(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, edges = case
    one, batched = UnionFind(n), UnionFind(n)
    for a, b in edges:
        one.union(a, b)
    batched.union_pairs([a for a, _ in edges], [b for _, b in edges])
    assert one.roots().tolist() == batched.roots().tolist()
    for a, b in edges:  # the smallest member of each set is its root
        assert batched.find(a) == batched.find(b) <= min(a, b)


def test_grow_and_union_keep_the_smaller_root() -> None:
    uf = UnionFind(2)
    assert uf.grow(3) == 2 and len(uf) == 5
    assert uf.union(4, 1) and not uf.union(1, 4)
    uf.union_pairs([3], [4])
    assert uf.roots().tolist() == [0, 1, 2, 1, 1]
