"""The row-key lab's arithmetic on small inputs worked out by hand: the tablet model (splits,
window shares, fixed real boundaries), the heatmap, node sizing, and the partitioning
schemes (range, hash mod N, consistent hashing)."""

from __future__ import annotations

import pytest

from loadtest.rowkeys import partitioning, tablets
from loadtest.rowkeys.tablets import ModelConfig, Write


def _writes(*rows: tuple[float, str, int]) -> list[Write]:
    return [Write(at, key.encode(), size) for at, key, size in rows]


def test_separator_is_the_shortest_prefix_of_the_right_key_above_the_left() -> None:
    """A split between two accounts' rows cuts at the second account's prefix."""
    assert tablets.separator(b"acct-0001#922", b"acct-0002#100") == b"acct-0002"
    assert tablets.separator(b"00", b"01") == b"01"
    assert tablets.separator(b"a", b"ab") == b"ab"
    with pytest.raises(ValueError, match="left < right"):
        tablets.separator(b"b", b"a")


def test_appending_keys_keep_one_tablet_hot_however_it_splits() -> None:
    """Increasing keys (a timestamp first): each window's writes all land past the last
    split point, so every window's share is 100% while the tablets multiply.

    W0 writes 00,01 into the one tablet, which splits (load) at 01; W1's 02,03 land in
    [01, ∞), which splits at 03; and so on."""
    writes = _writes(*((i / 2, f"{i:02d}", 1) for i in range(8)))
    replay = tablets.replay(writes, 4.0, ModelConfig(window=1.0, warmup=0.0, tablets=2))
    assert replay.shares == (1.0, 1.0, 1.0, 1.0)
    assert replay.tablet_counts == (1, 2, 3, 4)
    assert replay.boundaries == (b"01", b"03", b"05", b"07")
    assert replay.max_tablet_write_share == 1.0


def test_prefix_keys_split_between_prefixes_and_spread_after_the_warmup() -> None:
    """Two accounts writing newest-first rows: W0's load split cuts at the separator "b",
    so from W1 on each account's new rows land on its own tablet: 50% each. W0 (one
    tablet, 100%) is the warm-up and is not averaged."""
    writes = _writes(
        (0.1, "a#3", 1), (0.2, "b#3", 1),
        (1.1, "a#2", 1), (1.2, "b#2", 1),
        (2.1, "a#1", 1), (2.2, "b#1", 1),
    )  # fmt: skip
    replay = tablets.replay(writes, 3.0, ModelConfig(window=1.0, warmup=1.0, tablets=2))
    assert replay.shares == (1.0, 0.5, 0.5)
    assert replay.measured == (False, True, True)
    assert replay.boundaries == (b"b",)
    assert replay.max_tablet_write_share == 0.5


def test_a_tablet_over_its_size_splits_at_its_byte_median() -> None:
    """8 bytes, 2 tablets' worth: at most 4 bytes a tablet. One key a window, so no load
    split. After W2 the one tablet holds s1 (1), s2 (1), s3 (6) = 8 bytes and splits where
    half the bytes are reached, before s3 (a median by key count would cut before s2); s3
    alone stays over the size but a single row cannot split."""
    writes = _writes((0.1, "s1", 1), (1.1, "s2", 1), (2.1, "s3", 6))
    replay = tablets.replay(writes, 3.0, ModelConfig(window=1.0, warmup=0.0, tablets=2))
    assert replay.boundaries == (b"s3",)
    assert replay.tablet_counts == (1, 1, 1)


def test_a_load_split_then_a_size_split_in_one_window() -> None:
    """All four writes land on the one tablet (more than half): it splits at the middle
    key, "s3". Then [-∞, s3) holds s1 (5 bytes) + s2 (1) = 6 > 4 and splits before s2."""
    writes = _writes((0.1, "s1", 5), (0.5, "s2", 1), (0.6, "s3", 1), (0.7, "s4", 1))
    replay = tablets.replay(writes, 1.0, ModelConfig(window=1.0, warmup=0.0, tablets=2))
    assert replay.boundaries == (b"s2", b"s3")
    assert replay.shares == (1.0,)


def test_real_boundaries_are_replayed_fixed() -> None:
    """SampleRowKeys mode: tablets (-∞,b) [b,d) [d,∞) never split, and a key equal to a
    boundary starts the next tablet. W0: b c on one tablet → 1; W1: a | d d → 2/3."""
    writes = _writes((0.1, "b", 1), (0.2, "c", 1), (1.1, "d", 1), (1.2, "d", 1), (1.3, "a", 1))
    replay = tablets.replay(
        writes, 2.0, ModelConfig(window=1.0, warmup=0.0, tablets=2), boundaries=[b"d", b"b"]
    )
    assert replay.shares == (1.0, 2 / 3)
    assert replay.tablet_counts == (3, 3)
    assert replay.boundaries == (b"b", b"d")


def test_empty_windows_are_not_averaged() -> None:
    writes = _writes((0.1, "a", 1), (2.5, "b", 1))
    replay = tablets.replay(writes, 3.0, ModelConfig(window=1.0, warmup=0.0, tablets=4))
    assert replay.shares == (1.0, 0.0, 1.0)
    assert replay.measured == (True, False, True)
    assert replay.max_tablet_write_share == 1.0


def test_heatmap_counts_writes_per_equal_count_key_bucket_and_window() -> None:
    """Keys k0..k3 in 2 buckets ({k0,k1}, {k2,k3}); windows of 1 s."""
    writes = _writes((0.1, "k0", 1), (0.2, "k3", 1), (1.5, "k1", 1), (1.6, "k1", 1))
    assert tablets.heatmap(writes, 2.0, 1.0, buckets=2) == [[1, 2], [1, 0]]


def test_nodes_needed_and_the_write_ceiling() -> None:
    """50,000 writes/s at 14,000 per node: 4 nodes when the busiest tablet takes a quarter
    (12,500/s fits one node), none when it takes 30% (15,000/s does not)."""
    assert tablets.nodes_needed(0.25, 50_000, 14_000) == 4
    assert tablets.nodes_needed(0.30, 50_000, 14_000) is None
    assert tablets.nodes_needed(1.0, 1_000, 14_000) == 1
    assert tablets.write_ceiling(0.25, 14_000) == 56_000
    assert tablets.write_ceiling(1.0, 14_000) == 14_000


# --- partitioning ------------------------------------------------------------------------------

KEYS = [f"{i:02d}".encode() for i in range(100)]


def _as_int(key: bytes) -> int:
    return int(key)


def test_range_recut_moves_half_the_keys_from_4_to_5_nodes() -> None:
    """Before: 00-24, 25-49, 50-74, 75-99; after: 00-19, 20-39, …: 20-24, 40-49, 60-74 and
    80-99 change owner (5+10+15+20 = 50 keys), and every node holds 20."""
    before = partitioning.range_owners(KEYS, 4)
    after = partitioning.range_owners(KEYS, 5)
    assert partitioning.moved_fraction(before, after) == 0.5
    assert partitioning.max_over_mean(after, 5) == 1.0


def test_range_split_one_moves_half_a_range_and_unbalances() -> None:
    """Node 0's range 00-24 splits: 12-24 (13 keys) go to node 4; the untouched ranges keep
    25 keys against a mean of 20."""
    before = partitioning.range_owners(KEYS, 4)
    after = partitioning.range_split_one(KEYS, 4)
    assert [k for k, b, a in zip(KEYS, before, after, strict=True) if b != a] == KEYS[12:25]
    assert partitioning.moved_fraction(before, after) == 0.13
    assert partitioning.max_over_mean(after, 5) == 1.25


def test_mod_n_moves_n_over_n_plus_one() -> None:
    """h mod 4 == h mod 5 only when h mod 20 < 4: 20 of 100 keys stay."""
    before = partitioning.mod_owners(KEYS, 4, _as_int)
    after = partitioning.mod_owners(KEYS, 5, _as_int)
    assert partitioning.moved_fraction(before, after) == 0.8
    assert partitioning.max_over_mean(after, 5) == 1.0


RING_POINTS = {"node-0#0": 24, "node-1#0": 49, "node-2#0": 74, "node-3#0": 99, "node-4#0": 11}


def _ring_hash(data: bytes) -> int:
    text = data.decode()
    return RING_POINTS[text] if text in RING_POINTS else int(text)


def test_consistent_hashing_moves_only_the_new_nodes_arc() -> None:
    """Points at 24, 49, 74, 99; node 4 joins at 11 and takes keys 0-11 from node 0 (12
    keys); node 0 keeps 12-24 (13), the others 25 each; a hash past the last point wraps to
    the first."""
    growth = partitioning.consistent_growth(KEYS, 4, 1, _ring_hash)
    assert growth.moved_fraction == 0.12
    assert growth.max_over_mean == 1.25
    before = partitioning.Ring(4, 1, _ring_hash)
    assert [before.owner(k) for k in (b"0", b"24", b"25", b"99", b"100")] == [0, 0, 1, 3, 0]
    assert partitioning.Ring(5, 1, _ring_hash).owner(b"100") == 4


def test_compare_reports_every_scheme_on_distinct_keys() -> None:
    result = partitioning.compare(KEYS + KEYS[:10], 4, 1, sweep=(1,), hash_=_ring_hash)
    assert result.keys == 100
    assert result.range.moved_fraction == 0.5
    assert result.range_split_one.moved_fraction == 0.13
    assert result.mod_n.moved_fraction == 0.8
    assert result.consistent_hashing.moved_fraction == 0.12
    assert result.sweep == ((1, result.consistent_hashing),)
    shape = result.to_json()
    assert shape["nodes_before"] == 4
    assert shape["nodes_after"] == 5
    assert shape["consistent_hashing"] == {
        "virtual_nodes": 1,
        "moved_fraction": 0.12,
        "max_over_mean": 1.25,
    }


def test_consistent_hashing_moves_far_fewer_keys_than_mod_n_on_real_hashes() -> None:
    """With the lab's hash on 4,000 keys: mod N moves about 4/5, consistent hashing about
    1/5, and more virtual nodes even out the load."""
    keys = [f"acct-{i:04d}#row".encode() for i in range(4_000)]
    result = partitioning.compare(keys, 4, 64, sweep=(1, 256))
    assert 0.75 < result.mod_n.moved_fraction < 0.85
    assert 0.1 < result.consistent_hashing.moved_fraction < 0.3
    assert result.consistent_hashing.moved_fraction < result.mod_n.moved_fraction / 2
    (_, one), (_, many) = result.sweep
    assert many.max_over_mean < one.max_over_mean
