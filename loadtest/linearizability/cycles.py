"""Dependency graphs and their cycles, classified as Elle does.

Hand-written because it is the lesson (Kingsbury & Alvaro, "Elle: Inferring Isolation
Anomalies from Experimental Observations", VLDB 2020): operations are nodes; an edge ``a → b``
says a must come before b in any serial order that explains the history, for one of four
reasons:

- ``ww``: b wrote the version of an object that follows the one a wrote;
- ``wr``: b read the version a wrote;
- ``rw`` (anti-dependency): a read a version that b's write replaced;
- ``rt`` (real time): a returned before b was invoked (what makes serializability *strict*).

A cycle is an order no serial execution can have. Its class says how bad it is: ``G0``
(write cycle: ww only), ``G1c`` (cyclic information flow: ww and wr), ``G-single`` (exactly
one anti-dependency, e.g. read skew), ``G2`` (two or more anti-dependencies), each with the
suffix ``-realtime`` when the cycle needs a real-time edge.

Real-time edges are kept linear in number with the interval-order reduction: the completions
between two consecutive invocations share one *barrier* node, barriers form a chain, every
operation points to the barrier of its completion and every barrier to the operations invoked
right after it. ``a`` then reaches ``b`` through barriers exactly when a returned strictly
before b was invoked, with at most two edges per operation instead of one per ordered pair.

The search is cheap when the history is fine: Kahn's algorithm peels the acyclic part
(a correct history is all of it); Tarjan's algorithm runs only on what is left, and the
shortest cycle of each class is searched inside each strongly connected component, with a
0-1 breadth-first search in which barrier hops cost nothing, so the length counts operations.
Edges are stored as ``target << 2 | kind`` integers in one list per node: a 100,000-operation
history builds and searches in about a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WW, WR, RW, RT = 0, 1, 2, 3
KIND_NAMES = ("ww", "wr", "rw", "rt")
_MAX_STARTS = 64
"""Start nodes tried per component and class: exact for small components (every real
anomaly seen so far), bounded for a huge one."""


class Graph:
    """Nodes 0..n-1 are operations; :meth:`add_node` and :meth:`add_realtime` append more."""

    def __init__(self, operations: int) -> None:
        self.out: list[list[int]] = [[] for _ in range(operations)]
        self.barriers: frozenset[int] = frozenset()

    def __len__(self) -> int:
        return len(self.out)

    def add_node(self) -> int:
        self.out.append([])
        return len(self.out) - 1

    def edge(self, source: int, target: int, kind: int) -> None:
        if source != target:
            self.out[source].append(target << 2 | kind)

    def is_barrier(self, node: int) -> bool:
        return node in self.barriers

    def add_realtime(self, intervals: Iterable[tuple[int, float, float | None]]) -> None:
        """Real-time edges for ``(node, call, return)`` intervals (``return`` None: it never
        completed, so nothing follows it in real time)."""
        events: list[tuple[float, int, int]] = []
        for node, call, returned in intervals:
            events.append((call, 0, node))
            if returned is not None:
                events.append((returned, 1, node))
        # At equal times invocations sort first: touching intervals are concurrent.
        events.sort()
        barriers: list[int] = []
        current = -1  # the latest barrier closed by an invocation
        open_barrier = -1  # collecting completions since the latest invocation
        for _, kind, node in events:
            if kind == 1:
                if open_barrier < 0:
                    open_barrier = self.add_node()
                    barriers.append(open_barrier)
                    if current >= 0:
                        self.out[current].append(open_barrier << 2 | RT)
                self.out[node].append(open_barrier << 2 | RT)
            else:
                if open_barrier >= 0:
                    current, open_barrier = open_barrier, -1
                if current >= 0:
                    self.out[current].append(node << 2 | RT)
        self.barriers = frozenset(barriers)


def cyclic_components(graph: Graph) -> list[list[int]]:
    """The strongly connected components that contain a cycle (more than one node)."""
    out = graph.out
    n = len(out)
    indegree = [0] * n
    for edges in out:
        for encoded in edges:
            indegree[encoded >> 2] += 1
    queue = [node for node in range(n) if indegree[node] == 0]
    removed = bytearray(n)
    while queue:
        node = queue.pop()
        removed[node] = 1
        for encoded in out[node]:
            target = encoded >> 2
            indegree[target] -= 1
            if indegree[target] == 0:
                queue.append(target)
    left = [node for node in range(n) if not removed[node]]
    if not left:
        return []
    return [c for c in _tarjan(out, left, removed) if len(c) > 1]


def _tarjan(out: list[list[int]], nodes: list[int], excluded: bytearray) -> list[list[int]]:
    """Tarjan's strongly connected components, iterative, over ``nodes`` only."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = out[node]
            while position < len(edges):
                target = edges[position] >> 2
                position += 1
                if excluded[target]:
                    continue
                if target not in index:
                    work.append((node, position))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components


@dataclass(frozen=True)
class Cycle:
    """Operations ``nodes[i] → nodes[i+1]`` (and last → first) by edge ``kinds[i]``; real-time
    hops through barriers are folded into one ``rt`` edge between operations."""

    nodes: tuple[int, ...]
    kinds: tuple[int, ...]

    @property
    def anomaly(self) -> str:
        kinds = set(self.kinds)
        antidependencies = self.kinds.count(RW)
        if antidependencies >= 2:
            name = "G2"
        elif antidependencies == 1:
            name = "G-single"
        elif WR in kinds:
            name = "G1c"
        else:
            name = "G0"
        return name + ("-realtime" if RT in kinds else "")

    def edges(self) -> list[tuple[int, int, int]]:
        n = len(self.nodes)
        return [(self.nodes[i], self.nodes[(i + 1) % n], self.kinds[i]) for i in range(n)]


_CLASSES: tuple[tuple[frozenset[int], bool], ...] = (
    (frozenset({WW}), False),  # G0
    (frozenset({WW, WR}), False),  # G1c
    (frozenset({WW, WR}), True),  # G-single: these plus exactly one rw
    (frozenset({WW, WR, RW}), False),  # G2
    (frozenset({WW, RT}), False),
    (frozenset({WW, WR, RT}), False),
    (frozenset({WW, WR, RT}), True),
    (frozenset({WW, WR, RW, RT}), False),
)
"""Searched in this order (Elle's): the first class with a cycle in a component names it."""


def find_cycle(graph: Graph, component: Sequence[int]) -> Cycle:
    """The shortest cycle of the simplest class inside a cyclic strongly connected component."""
    members = set(component)
    for allowed, one_antidependency in _CLASSES:
        found = (
            _shortest_with_one_rw(graph, members, allowed)
            if one_antidependency
            else _shortest_cycle(graph, members, allowed)
        )
        if found is not None:
            return found
    raise ValueError("not a cyclic component")  # the last class allows every edge


def _bfs(
    graph: Graph, members: set[int], allowed: frozenset[int], source: int, target: int
) -> list[tuple[int, int]] | None:
    """The cheapest path source → target (at least one edge) as (node, kind of the edge into
    it) hops; entering a barrier costs nothing, entering an operation costs one."""
    out, barriers = graph.out, graph.barriers
    cost_of: dict[int, int] = {source: 0}
    parent: dict[int, tuple[int, int]] = {}
    closing: tuple[int, int, int] | None = None  # (cost, last node before target, kind)
    queue: deque[tuple[int, int]] = deque([(source, 0)])
    while queue:
        node, cost = queue.popleft()
        if closing is not None and cost + 1 >= closing[0]:
            break
        for encoded in out[node]:
            kind = encoded & 3
            nxt = encoded >> 2
            if kind not in allowed or nxt not in members:
                continue
            if nxt == target:
                if closing is None or cost + 1 < closing[0]:
                    closing = (cost + 1, node, kind)
                continue
            step = 0 if nxt in barriers else 1
            if cost + step < cost_of.get(nxt, 1 << 62):
                cost_of[nxt] = cost + step
                parent[nxt] = (node, kind)
                if step:
                    queue.append((nxt, cost + 1))
                else:
                    queue.appendleft((nxt, cost))
    if closing is None:
        return None
    _, node, kind = closing
    hops = [(target, kind)]
    while node != source:
        previous, into = parent[node]
        hops.append((node, into))
        node = previous
    hops.reverse()
    return hops


def _fold(graph: Graph, start: int, hops: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Operations and edge kinds of a path, real-time barrier hops folded into one rt edge
    (every edge into or out of a barrier is rt, so the edge that leaves the last barrier
    already says so)."""
    nodes, kinds = [start], []
    for node, kind in hops:
        if not graph.is_barrier(node):
            kinds.append(kind)
            nodes.append(node)
    return nodes, kinds


def _cycle_from(graph: Graph, start: int, hops: list[tuple[int, int]]) -> Cycle:
    nodes, kinds = _fold(graph, start, hops)
    return Cycle(tuple(nodes[:-1]), tuple(kinds))  # the last node is the start again


def _starts(graph: Graph, members: set[int]) -> list[int]:
    return sorted(node for node in members if not graph.is_barrier(node))[:_MAX_STARTS]


def _shortest_cycle(graph: Graph, members: set[int], allowed: frozenset[int]) -> Cycle | None:
    cyclic = _restricted_components(graph, members, allowed)
    best: Cycle | None = None
    for component in cyclic:
        for start in _starts(graph, component):
            hops = _bfs(graph, component, allowed, start, start)
            if hops is not None:
                cycle = _cycle_from(graph, start, hops)
                if best is None or len(cycle.nodes) < len(best.nodes):
                    best = cycle
    return best


def _shortest_with_one_rw(graph: Graph, members: set[int], allowed: frozenset[int]) -> Cycle | None:
    """Shortest cycle made of one rw edge u → v and a path v → u over ``allowed`` edges."""
    best: Cycle | None = None
    tried = 0
    for u in sorted(members):
        for encoded in graph.out[u]:
            v = encoded >> 2
            if encoded & 3 != RW or v not in members:
                continue
            tried += 1
            if tried > _MAX_STARTS * 4:
                return best
            hops = _bfs(graph, members, allowed, v, u)
            if hops is None:
                continue
            nodes, kinds = _fold(graph, v, hops)
            cycle = Cycle((u, *nodes[:-1]), (RW, *kinds))
            if best is None or len(cycle.nodes) < len(best.nodes):
                best = cycle
    return best


def _restricted_components(
    graph: Graph, members: set[int], allowed: frozenset[int]
) -> list[set[int]]:
    """Cyclic components of the subgraph of ``members`` with ``allowed`` edges only."""
    restricted = {
        node: [e for e in graph.out[node] if e & 3 in allowed and (e >> 2) in members]
        for node in members
    }
    ordered = sorted(members)
    position = {node: i for i, node in enumerate(ordered)}
    out = [[(position[e >> 2] << 2) | (e & 3) for e in restricted[node]] for node in ordered]
    components = _tarjan(out, list(range(len(ordered))), bytearray(len(ordered)))
    return [{ordered[i] for i in c} for c in components if len(c) > 1]
