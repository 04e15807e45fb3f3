"""The lab's run checkers on crafted runs (staleness and bounds, bank invariant,
t-visibility, strict serializability of the recorded history), the seeded schedule, latency
statistics, and ID-token caching."""

from __future__ import annotations

import dataclasses
import time

import jwt
import pytest

from loadtest.auth import IdTokenAuth, audience_of
from loadtest.checks.bank import check_bank
from loadtest.checks.serializable import check_serializable, ledger_history
from loadtest.checks.staleness import check_staleness
from loadtest.checks.visibility import check_visibility
from loadtest.config import LoadConfig, LoadConfigError, parse_mix
from loadtest.linearizability import LedgerVerdict
from loadtest.plan import account_ids, arrival_times, schedule
from loadtest.records import OK, Record
from loadtest.runner import Endpoints, RunResult
from loadtest.stats import kind_stats, percentiles_ms

T0 = 1_800_000_000.0  # wall clock (epoch seconds) of the crafted runs


def run(records: list[Record], accounts: tuple[str, ...] = ("a", "b"), balance: int = 100):
    config = LoadConfig(accounts=len(accounts), initial_balance=balance, duration=10, warmup=1)
    setup = [
        Record(seq=-1 - i, kind="create", account=a, intended=0, invoked=0, returned=0.1,
               outcome=OK, balance=balance, version=1, commit_timestamp=T0)
        for i, a in enumerate(accounts)
    ]  # fmt: skip
    return RunResult(config, "run", list(accounts), Endpoints("http://x"), records, setup)


def transfer(seq: int, at: float, from_version: int, to_version: int, amount: int = 10) -> Record:
    """A committed transfer a → b, invoked and returned around wall time T0 + at."""
    return Record(seq=seq, kind="transfer", account="a", other="b", amount=amount,
                  intended=at, invoked=at, returned=at + 0.01, wall_invoked=T0 + at,
                  outcome=OK, transfer_id=f"t{seq}", from_version=from_version,
                  to_version=to_version, commit_timestamp=T0 + at + 0.005)  # fmt: skip


def read(seq: int, kind: str, at: float, version: int, balance: int, read_ts: float,
         bound: float | None = None, account: str = "a") -> Record:  # fmt: skip
    return Record(seq=seq, kind=kind, account=account, intended=at, invoked=at,
                  returned=at + 0.01, wall_invoked=T0 + at, outcome=OK, balance=balance,
                  version=version, read_timestamp=T0 + read_ts, staleness_bound=bound)  # fmt: skip


def test_staleness_in_versions_and_time_and_bound_violations() -> None:
    """A read 0.5 s after a commit that returns the older version is 1 version and ~0.5 s
    behind: fine under a 2 s bound, a violation under a 0.2 s bound; a read whose version is
    not the one committed at its own read timestamp is flagged too."""
    records = [
        transfer(1, 1.0, 2, 2),
        read(2, "exact", 1.5, 1, 100, read_ts=0.5, bound=2.0),
        read(3, "bounded", 1.5, 1, 100, read_ts=1.0, bound=0.2),
        read(4, "bounded", 1.6, 1, 100, read_ts=1.2, bound=2.0),
        read(5, "strong", 1.7, 2, 90, read_ts=1.7),
    ]
    result = check_staleness(run(records))
    exact, bounded, strong = result["exact"], result["bounded"], result["strong"]
    assert exact.versions_behind == [1]
    assert exact.seconds_behind[0] == pytest.approx(0.495, abs=1e-3)
    assert not exact.bound_violations
    assert not exact.snapshot_violations
    assert [v["seq"] for v in bounded.bound_violations] == [3]
    assert [v["seq"] for v in bounded.snapshot_violations] == [4]
    assert strong.fresh_fraction == 1.0
    assert exact.k_staleness(2) == [0.0, 1.0, 1.0]


def test_reads_after_a_transfer_of_unknown_outcome_are_not_assessed() -> None:
    """A version whose commit time nobody knows leaves a gap: such reads are skipped."""
    lost = Record(seq=1, kind="transfer", account="a", other="b", amount=5, intended=1,
                  invoked=1, returned=2, outcome="unknown")  # fmt: skip
    records = [lost, transfer(2, 2.0, 3, 3), read(3, "exact", 3.0, 3, 85, read_ts=2.5)]
    assert check_staleness(run(records))["exact"].skipped == 1


def test_bank_invariant_flags_a_snapshot_that_lost_money() -> None:
    """Every snapshot must add up to the initial total."""
    good = Record(seq=1, kind="snapshot", account="a", intended=1, outcome=OK,
                  snapshot={"a": [90, 2], "b": [110, 2]}, total=200)  # fmt: skip
    bad = Record(seq=2, kind="snapshot", account="a", intended=2, outcome=OK,
                 snapshot={"a": [90, 2], "b": [100, 1]}, total=190)  # fmt: skip
    result = check_bank(run([good, bad]))
    assert result.snapshots == 2
    assert [(v.seq, v.total) for v in result.violations] == [(2, 190)]
    assert not result.holds


def test_t_visibility_curve_from_activity_reads() -> None:
    """A transfer missing from the feed 2 ms after commit and present 300 ms after gives
    P(visible) 0 in the first bin and 1 in the 200–500 ms bin."""
    committed = transfer(1, 1.0, 2, 2)  # commits at T0 + 1.005
    early = Record(seq=2, kind="activity", account="b", intended=1.007, outcome=OK,
                   wall_invoked=T0 + 1.007, activity=[], complete_page=True)  # fmt: skip
    late = Record(seq=3, kind="activity", account="a", intended=1.305, outcome=OK,
                  wall_invoked=T0 + 1.305, activity=[("t1", T0 + 1.005)],
                  complete_page=True)  # fmt: skip
    visibility = check_visibility(run([committed, early, late]))
    assert visibility is not None
    by_bin = {(b.low_ms, b.high_ms): b for b in visibility.bins}
    assert by_bin[(0, 5)].samples == 1
    assert by_bin[(0, 5)].probability == 0
    assert by_bin[(200, 500)].probability == 1
    assert visibility.never_seen == 0
    assert check_visibility(run([committed])) is None


def test_a_stale_strong_read_in_the_run_is_not_strictly_serializable() -> None:
    """A strong read that misses a transfer which returned before it was issued is a
    real-time anomaly; stale modes are left out of the history, failed strong reads count as
    operations of unknown outcome."""
    failed = Record(seq=5, kind="strong", account="a", intended=2.0, invoked=2.0, returned=3.0,
                    outcome="error")  # fmt: skip
    records = [transfer(1, 1.0, 2, 2), read(2, "strong", 2.0, 1, 100, read_ts=2.0),
               read(3, "strong", 2.0, 2, 110, read_ts=2.0, account="b"),
               read(4, "exact", 2.0, 1, 100, read_ts=0.5), failed]  # fmt: skip
    history = ledger_history(run(records))
    assert len(history) == 6  # 2 creates, the transfer, 3 strong reads: not the exact one
    assert history[-1].pending
    result = check_serializable(run(records))
    assert result.verdict is LedgerVerdict.NOT_STRICTLY_SERIALIZABLE
    assert set(result.counts) == {"G-single-realtime"}
    assert (result.known, result.strong) == (3, 4)


def test_a_run_without_snapshots_is_inconclusive() -> None:
    """Nothing in a run without snapshots could see a transfer half applied: no pass."""
    records = [transfer(1, 1.0, 2, 2), read(2, "strong", 2.0, 2, 90, read_ts=2.0)]
    result = check_serializable(run(records))
    assert result.verdict is LedgerVerdict.INCONCLUSIVE
    snapshot = Record(seq=3, kind="snapshot", account="a", intended=3, invoked=3, returned=3.1,
                      outcome=OK, snapshot={"a": [90, 2], "b": [110, 2]}, total=200,
                      snapshot_writers={"a": "t1", "b": "t1"})  # fmt: skip
    assert check_serializable(run([*records, snapshot])).passed


def test_schedule_is_seeded_skewed_and_mixed() -> None:
    """Same seed, same schedule; Zipf skew makes the first account the hottest; the mix is
    respected; constant arrivals are evenly spaced."""
    accounts = account_ids("r", 10)
    config = LoadConfig(rate=500, duration=4, warmup=1, zipf=1.2, mix={"strong": 3, "transfer": 1})
    plan = schedule(config, accounts)
    assert plan == schedule(config, accounts)
    assert len(plan) == 2000
    assert plan[1].at - plan[0].at == pytest.approx(1 / 500)
    hits = {a: sum(p.account == a for p in plan) for a in accounts}
    assert max(hits, key=hits.__getitem__) == accounts[0]
    assert hits[accounts[0]] > 3 * hits[accounts[-1]]
    transfers = [p for p in plan if p.kind == "transfer"]
    assert {p.kind for p in plan} == {"strong", "transfer"}
    assert all(p.other != p.account and 1 <= p.amount <= config.max_amount for p in transfers)


def test_the_mix_weighs_kinds_by_their_ratios_only() -> None:
    """Each kind is drawn with probability weight / total: weights scaled by 2 (exact in
    floating point) give the very same plan, a kind of weight 0 is never drawn, a lone kind
    is always drawn, and other ratios give another plan."""
    accounts = account_ids("r", 10)

    def plan(mix: dict[str, float]) -> list:
        return schedule(LoadConfig(rate=500, duration=4, warmup=1, mix=mix), accounts)

    three_to_one = plan({"strong": 3, "transfer": 1})
    assert plan({"strong": 6, "transfer": 2}) == three_to_one
    assert plan({"strong": 1, "transfer": 1}) != three_to_one
    assert {p.kind for p in plan({"strong": 1, "exact": 0, "transfer": 0})} == {"strong"}
    assert {p.kind for p in plan({"transfer": 1})} == {"transfer"}


class ScriptedGaps:
    """Stands in for the seeded generator in :func:`arrival_times`: scripted exponential
    gaps, and the rate each was drawn at."""

    def __init__(self, gaps: list[float]) -> None:
        self.gaps, self.rates = iter(gaps), []

    def expovariate(self, rate: float) -> float:
        self.rates.append(rate)
        return next(self.gaps)


def test_poisson_arrivals_are_the_running_sums_of_exponential_gaps_within_the_duration() -> None:
    """Arrivals at the running sums of gaps drawn at the configured rate, up to (not at)
    the end of the run; constant arrivals every 1/rate s."""
    config = LoadConfig(rate=4, duration=2, warmup=1, arrivals="poisson")
    gaps = ScriptedGaps([0.25, 0.5, 0.75, 0.5, 9.0])
    assert arrival_times(config, gaps) == [0.25, 0.75, 1.5]  # the next one, 2.0, is the end
    assert gaps.rates == [4, 4, 4, 4]
    seeded = schedule(dataclasses.replace(config, rate=500, duration=4), account_ids("r", 3))
    assert [p.at for p in seeded] == sorted(p.at for p in seeded)
    assert seeded[0].at > 0
    assert seeded[-1].at < 4
    constant = dataclasses.replace(config, arrivals="constant")
    assert arrival_times(constant, ScriptedGaps([])) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_mix_and_config_errors_name_the_problem() -> None:
    """Bad options are refused with a message saying what to fix."""
    assert parse_mix("strong=3, transfer=1") == {"strong": 3.0, "transfer": 1.0}
    with pytest.raises(LoadConfigError, match="unknown operation 'weak'"):
        parse_mix("weak=1")
    with pytest.raises(LoadConfigError, match="warm-up"):
        LoadConfig(duration=2, warmup=3)
    with pytest.raises(LoadConfigError, match="at most 100 accounts"):
        LoadConfig(accounts=101)
    with pytest.raises(LoadConfigError, match="--staleness: 'soon' is not a duration"):
        LoadConfig(staleness="soon")


def test_latency_statistics_exclude_warmup_and_count_late_starts() -> None:
    """Latency runs from the intended start; warm-up operations are not counted."""
    records = [
        Record(seq=0, kind="strong", account="a", intended=0.0, invoked=0.0, returned=5.0,
               outcome=OK, warmup=True),
        Record(seq=1, kind="strong", account="a", intended=2.0, invoked=2.5, returned=2.6,
               outcome=OK),
        Record(seq=2, kind="strong", account="a", intended=3.0, invoked=3.0, returned=3.01,
               outcome=OK),
    ]  # fmt: skip
    stats = kind_stats(run(records))["strong"]
    assert stats.latency.get_total_count() == 2
    assert percentiles_ms(stats.latency)["max"] == pytest.approx(600, rel=0.01)
    assert percentiles_ms(stats.service)["max"] == pytest.approx(100, rel=0.01)
    assert stats.late == 1


def test_id_tokens_are_cached_per_audience_and_refreshed_before_expiry() -> None:
    """One fetch per audience while the token is fresh; a token about to expire is replaced."""
    fetched: list[str] = []

    def source(audience: str) -> str:
        fetched.append(audience)
        expiry = time.time() + (60 if len(fetched) == 1 else 3600)
        return jwt.encode({"aud": audience, "exp": expiry}, "k" * 32, algorithm="HS256")

    auth = IdTokenAuth(source)
    url = "https://ledger-abc-uc.a.run.app/v1/accounts/x?q=1"
    first = auth.headers(url)["Authorization"]
    assert first.startswith("Bearer ")
    assert fetched == ["https://ledger-abc-uc.a.run.app"]  # expires within the margin
    second = auth.headers(url)["Authorization"]
    assert auth.headers(url)["Authorization"] == second != first
    assert len(fetched) == 2  # replaced once, then reused
    assert audience_of("http://127.0.0.1:8081/v1") == "http://127.0.0.1:8081"
