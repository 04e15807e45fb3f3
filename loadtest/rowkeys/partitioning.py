"""Partitioning schemes on one key set: how evenly each spreads keys over nodes, and how many
keys move when a node is added.

- **range**: contiguous key ranges holding equal numbers of keys. Growing re-cuts every
  range (``range``), or splits only the fullest one in two and gives the new node its upper
  half (``range_split_one``, what Bigtable does with a tablet).
- **hash mod N**: node = hash(key) mod N; almost every key changes node when N changes
  (a key stays only if hash mod N = hash mod N+1: about 1/(N+1) of them).
- **consistent hashing**: each node owns ``virtual_nodes`` points on a hash ring and a key
  belongs to the first point at or after its hash; a new node takes over only the arcs before
  its own points, about 1/(N+1) of the keys. More virtual nodes even out the arcs.

Hand-written because the arithmetic is the lesson. Every function takes the hash, so the
tests use small inputs with exact answers.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtest.rowkeys.designs import stable_hash

Hash = Callable[[bytes], int]


@dataclass(frozen=True)
class Growth:
    """Going from ``nodes`` to ``nodes + 1``: the fraction of keys that changed node, and
    the most loaded node over the mean afterwards."""

    moved_fraction: float
    max_over_mean: float

    def to_json(self) -> dict[str, float]:
        return {
            "moved_fraction": round(self.moved_fraction, 4),
            "max_over_mean": round(self.max_over_mean, 4),
        }


def max_over_mean(owners: Sequence[int], nodes: int) -> float:
    counts = Counter(owners)
    return max(counts.values()) / (len(owners) / nodes)


def moved_fraction(before: Sequence[int], after: Sequence[int]) -> float:
    return sum(b != a for b, a in zip(before, after, strict=True)) / len(before)


def _growth(before: Sequence[int], after: Sequence[int], nodes_after: int) -> Growth:
    return Growth(moved_fraction(before, after), max_over_mean(after, nodes_after))


def range_owners(sorted_keys: Sequence[bytes], nodes: int) -> list[int]:
    """Equal-count contiguous ranges, in key order: the key of rank r goes to r*nodes//n."""
    return [rank * nodes // len(sorted_keys) for rank in range(len(sorted_keys))]


def range_split_one(sorted_keys: Sequence[bytes], nodes: int) -> list[int]:
    """From :func:`range_owners` with ``nodes``: the fullest range (the first of equals)
    splits at its middle key and the upper half goes to the new node ``nodes``."""
    owners = range_owners(sorted_keys, nodes)
    counts = Counter(owners)
    fullest = min(counts, key=lambda node: (-counts[node], node))
    ranks = [r for r, owner in enumerate(owners) if owner == fullest]
    for rank in ranks[len(ranks) // 2 :]:
        owners[rank] = nodes
    return owners


def mod_owners(keys: Sequence[bytes], nodes: int, hash_: Hash = stable_hash) -> list[int]:
    return [hash_(key) % nodes for key in keys]


class Ring:
    """A consistent-hashing ring: ``virtual_nodes`` points per node at
    ``hash("node-<n>#<v>")``; a key belongs to the first point at or after its hash,
    wrapping past the largest."""

    def __init__(self, nodes: int, virtual_nodes: int, hash_: Hash = stable_hash) -> None:
        points = sorted(
            (hash_(f"node-{node}#{v}".encode()), node)
            for node in range(nodes)
            for v in range(virtual_nodes)
        )
        self.positions = [position for position, _ in points]
        self.owners = [owner for _, owner in points]
        self.hash = hash_

    def owner(self, key: bytes) -> int:
        index = bisect.bisect_left(self.positions, self.hash(key))
        return self.owners[index % len(self.owners)]


def ring_owners(
    keys: Sequence[bytes], nodes: int, virtual_nodes: int, hash_: Hash = stable_hash
) -> list[int]:
    ring = Ring(nodes, virtual_nodes, hash_)
    return [ring.owner(key) for key in keys]


@dataclass(frozen=True)
class Partitioning:
    nodes_before: int
    keys: int
    range: Growth
    range_split_one: Growth
    mod_n: Growth
    virtual_nodes: int
    consistent_hashing: Growth
    sweep: tuple[tuple[int, Growth], ...]
    """Consistent hashing for each number of virtual nodes per node."""

    def to_json(self) -> dict[str, object]:
        return {
            "keys": self.keys,
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_before + 1,
            "range": self.range.to_json(),
            "range_split_one": self.range_split_one.to_json(),
            "mod_n": self.mod_n.to_json(),
            "consistent_hashing": {
                "virtual_nodes": self.virtual_nodes,
                **self.consistent_hashing.to_json(),
            },
            "consistent_hashing_by_virtual_nodes": [
                {"virtual_nodes": v, **g.to_json()} for v, g in self.sweep
            ],
        }


SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def consistent_growth(
    keys: Sequence[bytes], nodes: int, virtual_nodes: int, hash_: Hash = stable_hash
) -> Growth:
    before = ring_owners(keys, nodes, virtual_nodes, hash_)
    return _growth(before, ring_owners(keys, nodes + 1, virtual_nodes, hash_), nodes + 1)


def compare(
    keys: Sequence[bytes],
    nodes: int,
    virtual_nodes: int,
    sweep: Sequence[int] = SWEEP,
    hash_: Hash = stable_hash,
) -> Partitioning:
    """Every scheme on the distinct ``keys``, growing from ``nodes`` to ``nodes + 1``."""
    ordered = sorted(set(keys))
    ranges = range_owners(ordered, nodes)
    mod = mod_owners(ordered, nodes, hash_)
    return Partitioning(
        nodes_before=nodes,
        keys=len(ordered),
        range=_growth(ranges, range_owners(ordered, nodes + 1), nodes + 1),
        range_split_one=_growth(ranges, range_split_one(ordered, nodes), nodes + 1),
        mod_n=_growth(mod, mod_owners(ordered, nodes + 1, hash_), nodes + 1),
        virtual_nodes=virtual_nodes,
        consistent_hashing=consistent_growth(ordered, nodes, virtual_nodes, hash_),
        sweep=tuple((v, consistent_growth(ordered, nodes, v, hash_)) for v in sweep),
    )
