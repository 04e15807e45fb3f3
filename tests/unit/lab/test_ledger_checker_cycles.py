"""The dependency-graph search of :mod:`loadtest.linearizability.cycles` against brute force.

On small random graphs (ww, wr and rw edges between a few operations, plus real-time edges
from random intervals) every simple cycle is enumerated directly, real-time edges taken as
direct edges between operations: the cyclic components must be exactly the strongly
connected groups of operations, and the cycle found in each must exist, be of the first class
in Elle's order that has a cycle there, and be the shortest of that class.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.linearizability.cycles import (
    KIND_NAMES,
    RT,
    RW,
    WR,
    WW,
    Cycle,
    Graph,
    cyclic_components,
    find_cycle,
)

ORDER = (
    ("G0", {WW}, False),
    ("G1c", {WW, WR}, False),
    ("G-single", {WW, WR}, True),
    ("G2", {WW, WR, RW}, False),
    ("G0-realtime", {WW, RT}, False),
    ("G1c-realtime", {WW, WR, RT}, False),
    ("G-single-realtime", {WW, WR, RT}, True),
    ("G2-realtime", {WW, WR, RW, RT}, False),
)
"""Elle's classes in the order they are searched: (name, allowed kinds, exactly one rw)."""

Interval = tuple[float, float | None]


class Case:
    """A graph drawn as operations, dependency edges and intervals, with its brute force."""

    def __init__(self, size: int, edges: list[tuple[int, int, int]], intervals: list[Interval]):
        self.size = size
        self.edges = {(s, t, k) for s, t, k in edges if s != t}
        for a, (_, returned) in enumerate(intervals):
            for b, (call, _) in enumerate(intervals):
                if returned is not None and returned < call:
                    self.edges.add((a, b, RT))
        self.graph = Graph(size)
        for source, target, kind in sorted(edges):
            self.graph.edge(source, target, kind)
        if intervals:
            self.graph.add_realtime(
                (node, call, returned) for node, (call, returned) in enumerate(intervals)
            )

    def reaches(self, source: int) -> set[int]:
        seen, frontier = set(), [source]
        while frontier:
            node = frontier.pop()
            for s, t, _ in self.edges:
                if s == node and t not in seen:
                    seen.add(t)
                    frontier.append(t)
        return seen

    def components(self) -> set[frozenset[int]]:
        """Groups of two or more operations that reach each other."""
        reach = {node: self.reaches(node) for node in range(self.size)}
        return {
            frozenset(b for b in range(self.size) if b == a or (b in reach[a] and a in reach[b]))
            for a in range(self.size)
            if any(a in reach[b] for b in reach[a])
        } - {frozenset({a}) for a in range(self.size)}

    def cycles(self, members: frozenset[int]) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
        """Every simple cycle inside ``members``, from its lowest operation."""
        for start in sorted(members):
            stack: list[tuple[tuple[int, ...], tuple[int, ...]]] = [((start,), ())]
            while stack:
                nodes, kinds = stack.pop()
                for s, t, kind in self.edges:
                    if s != nodes[-1] or t not in members:
                        continue
                    if t == start:
                        yield nodes, (*kinds, kind)
                    elif t > start and t not in nodes:
                        stack.append(((*nodes, t), (*kinds, kind)))


def fits(kinds: tuple[int, ...], allowed: set[int], one_rw: bool) -> bool:
    if one_rw:
        return kinds.count(RW) == 1 and all(k in allowed for k in kinds if k != RW)
    return all(k in allowed for k in kinds)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    size = draw(st.integers(2, 6))
    node = st.integers(0, size - 1)
    edges = draw(st.lists(st.tuples(node, node, st.sampled_from([WW, WR, RW])), max_size=10))
    intervals: list[Interval] = []
    if draw(st.booleans()):
        for _ in range(size):
            call = draw(st.integers(0, 8))
            length = draw(st.one_of(st.none(), st.integers(0, 4)))
            intervals.append((float(call), None if length is None else float(call + length)))
    return Case(size, edges, intervals)


@settings(max_examples=200)
@given(cases())
def test_each_cyclic_component_gets_its_simplest_and_shortest_cycle(case: Case) -> None:
    """Components are the strongly connected groups of operations (barriers aside); the
    cycle reported for each exists edge by edge, is of the first class (in Elle's order) that
    has a cycle there, and no cycle of that class is shorter."""
    found = cyclic_components(case.graph)
    operations = [frozenset(n for n in c if n < case.size) for c in found]
    assert set(operations) == case.components()
    assert len(operations) == len(case.components())
    for component, members in zip(found, operations, strict=True):
        cycle = find_cycle(case.graph, component)
        assert len(set(cycle.nodes)) == len(cycle.nodes)
        assert set(cycle.nodes) <= members
        for source, target, kind in cycle.edges():
            assert (source, target, kind) in case.edges, KIND_NAMES[kind]
        every = list(case.cycles(members))
        name, lengths = next(
            (name, [len(n) for n, k in every if fits(k, allowed, one)])
            for name, allowed, one in ORDER
            if any(fits(k, allowed, one) for _, k in every)
        )
        assert cycle.anomaly == name
        assert len(cycle.nodes) == min(lengths)


def test_a_longer_cycle_of_a_simpler_class_wins_over_a_shorter_one_with_real_time() -> None:
    """Three operations in a ww cycle (G0) and two in a cycle that needs real time: G0."""
    graph = Graph(5)
    for source, target in ((0, 1), (1, 2), (2, 0)):
        graph.edge(source, target, WW)
    graph.edge(3, 0, WW)
    graph.edge(0, 3, WW)
    graph.edge(3, 4, WR)
    graph.add_realtime([(4, 0.0, 1.0), (3, 2.0, 3.0)])
    components = cyclic_components(graph)
    assert [sorted(n for n in c if n < 5) for c in components] == [[0, 1, 2, 3, 4]]
    cycle = find_cycle(graph, components[0])
    assert (cycle.anomaly, sorted(cycle.nodes)) == ("G0", [0, 3])


def test_the_shortest_single_antidependency_cycle_is_reported() -> None:
    """Two G-single cycles: 0 →rw 1 →wr 2 →ww 3 →wr 0 (four operations) and 4 →rw 5 →wr 4
    (two), joined into one component by ww edges: the two-operation one is reported."""
    graph = Graph(6)
    graph.edge(0, 1, RW)
    graph.edge(1, 2, WR)
    graph.edge(2, 3, WW)
    graph.edge(3, 0, WR)
    graph.edge(4, 5, RW)
    graph.edge(5, 4, WR)
    graph.edge(3, 4, RW)
    graph.edge(5, 0, RW)
    (component,) = cyclic_components(graph)
    cycle = find_cycle(graph, component)
    assert cycle == Cycle((4, 5), (RW, WR))
    assert cycle.anomaly == "G-single"


def test_a_graph_without_cycles_has_no_cyclic_component() -> None:
    graph = Graph(4)
    graph.edge(0, 1, WW)
    graph.edge(1, 2, RW)
    graph.edge(0, 2, WR)
    graph.add_realtime([(0, 0.0, 1.0), (1, 1.0, 2.0), (2, 3.0, None), (3, 0.5, 0.7)])
    assert cyclic_components(graph) == []


def test_a_component_without_a_cycle_is_refused() -> None:
    graph = Graph(2)
    graph.edge(0, 1, WW)
    with pytest.raises(ValueError, match=r"^not a cyclic component$"):
        find_cycle(graph, [0, 1])


def test_every_cyclic_component_is_found_however_the_search_enters_them() -> None:
    """Two disjoint cycles (0 ⇄ 1, 2 ⇄ 3), neither reachable from the other, and 0 also
    pointing at an operation on no cycle: both components, and only them."""
    graph = Graph(5)
    graph.edge(0, 4, WW)
    graph.edge(0, 1, WW)
    graph.edge(1, 0, WR)
    graph.edge(2, 3, RW)
    graph.edge(3, 2, WW)
    assert sorted(sorted(c) for c in cyclic_components(graph)) == [[0, 1], [2, 3]]


def test_an_antidependency_listed_after_other_edges_is_still_tried() -> None:
    """0 →ww 2 comes before 0 →rw 1 in 0's edges; the shortest G-single is 0 →rw 1 →wr 0."""
    graph = Graph(3)
    graph.edge(0, 2, WW)
    graph.edge(0, 1, RW)
    graph.edge(1, 0, WR)
    graph.edge(2, 1, RW)
    (component,) = cyclic_components(graph)
    assert find_cycle(graph, component) == Cycle((0, 1), (RW, WR))


def test_the_single_antidependency_search_is_exact_up_to_256_antidependencies() -> None:
    """A ring of 255 rw edges (0 → 1 → … → 254 → 0, every cycle on it a G2) and the one
    G-single, 255 →rw 254 →wr 255, on the 256th antidependency tried: still found."""
    graph = Graph(256)
    for node in range(255):
        graph.edge(node, (node + 1) % 255, RW)
    graph.edge(254, 255, WR)
    graph.edge(255, 254, RW)
    (component,) = cyclic_components(graph)
    assert find_cycle(graph, component) == Cycle((255, 254), (RW, WR))
