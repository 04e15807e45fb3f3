"""Each generator's clock, and how histories from several clocks become one history that
asserts real-time order only where it is certain.

A worker's :class:`Clock` says how far its wall clock is from the *reference* (``offset``,
seconds, positive when the worker is ahead) and how wrong that estimate may be
(``uncertainty``). The assumption, stated once: **the worker's true offset lies within
``offset ± uncertainty`` for the whole run** (drift during a run is within the uncertainty).
Under it, an operation the worker saw between local instants ``c`` and ``r`` really ran
inside ``[c − offset − uncertainty, r − offset + uncertainty]`` on the reference clock, so
:func:`on_reference` widens every interval to that. Two operations of different workers are
then ordered only when one's widened interval ends before the other's begins: what the
checkers assume is always true, never a guess. The price: order shorter than twice the
uncertainty is not asserted, and a violation that needs it goes unseen.

Sources (:func:`measure`):

- ``host``: every worker on this machine reads the same clock: offset 0, uncertainty 0.
- ``kernel``: the kernel's own error bound, which an NTP daemon (chrony, ntpd) keeps up to
  date: offset 0, uncertainty ``maxerror`` from ``adjtimex(2)``. Refused when the kernel
  says the clock is not synchronised.
- ``ledger``: a measured round trip to the ledger (Cristian's algorithm): a strong read's
  ``read_timestamp`` is taken by the database between the request's send and its answer, so
  with the shortest of several round trips, offset = midpoint − timestamp and uncertainty =
  half the round trip plus ``LEDGER_MARGIN``. The reference is then the database's clock, the
  one commit timestamps come from (TrueTime on Spanner, this machine's clock on the emulator).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from caplab.core.errors import CaplabError
from loadtest.linearizability import Operation
from loadtest.records import OK, Record

if TYPE_CHECKING:
    from loadtest.client import LabClient

SOURCES = ("host", "kernel", "ledger")
LEDGER_SAMPLES = 8
LEDGER_MARGIN = 0.001
"""Seconds added to the round-trip bound for the error of the read timestamp itself (Spanner
documents TrueTime's uncertainty as a few milliseconds at most; the emulator has none)."""


@dataclass(frozen=True)
class Clock:
    offset: float = 0.0
    uncertainty: float = 0.0
    source: str = "host"

    def __post_init__(self) -> None:
        if self.uncertainty < 0:
            raise ValueError("a clock's uncertainty is not negative")

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "offset_ms": round(self.offset * 1000, 3),
            "uncertainty_ms": round(self.uncertainty * 1000, 3),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Clock:
        return cls(
            document["offset_ms"] / 1000, document["uncertainty_ms"] / 1000, document["source"]
        )


HOST = Clock()


def on_reference(operations: Iterable[Operation], clock: Clock, worker: int) -> list[Operation]:
    """One worker's operations (times on its wall clock) on the reference clock, each interval
    widened by the clock's uncertainty; clients are prefixed with the worker (``"w1:7"``), as
    two workers may number their clients alike."""
    shift, widen = clock.offset, clock.uncertainty
    return [
        Operation(
            f"w{worker}:{op.client}",
            op.input,
            op.output,
            op.call - shift - widen,
            None if op.return_time is None else op.return_time - shift + widen,
        )
        for op in operations
    ]


def merge_histories(parts: Sequence[tuple[Sequence[Operation], Clock]]) -> list[Operation]:
    """The one history of several workers' histories: each on the reference clock, widened
    (:func:`on_reference`), in order of call."""
    merged = [
        op for worker, (ops, clock) in enumerate(parts) for op in on_reference(ops, clock, worker)
    ]
    return sorted(merged, key=lambda op: op.call)


# ---- sources -----------------------------------------------------------------------------


class _Timex(ctypes.Structure):
    """The leading fields of ``struct timex`` (linux/timex.h); ``_rest`` covers the others."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


TIME_ERROR, STA_UNSYNC = 5, 0x0040


def kernel_clock() -> Clock:
    """The kernel's bound on its clock's error (``adjtimex(2)``, read only)."""
    name = ctypes.util.find_library("c")
    if name is None:
        raise CaplabError("--clock kernel: no C library to ask adjtimex(2)")
    timex = _Timex()  # modes = 0: read, never adjust
    state = ctypes.CDLL(name, use_errno=True).adjtimex(ctypes.byref(timex))
    if state < 0:
        raise CaplabError(f"--clock kernel: adjtimex(2) failed (errno {ctypes.get_errno()})")
    if state == TIME_ERROR or timex.status & STA_UNSYNC:
        raise CaplabError(
            "--clock kernel: the kernel says this clock is not synchronised (no NTP daemon "
            "such as chrony keeps it): use --clock ledger"
        )
    return Clock(0.0, timex.maxerror / 1e6, "kernel")


async def ledger_clock(client: LabClient, account: str, samples: int = LEDGER_SAMPLES) -> Clock:
    """Cristian's algorithm against the ledger's strong-read timestamps: the sample with the
    shortest round trip wins."""
    best: tuple[float, float] | None = None  # (round trip, offset)
    for i in range(samples):
        record = Record(seq=-1_000_000 - i, kind="strong", account=account, intended=0.0)
        sent = time.time()
        await client.read(record)
        answered = time.time()
        if record.outcome != OK or record.read_timestamp is None:
            raise CaplabError(f"--clock ledger: a strong read failed ({record.error})")
        round_trip = answered - sent
        if best is None or round_trip < best[0]:
            best = (round_trip, (sent + answered) / 2 - record.read_timestamp)
    assert best is not None, "at least one sample"
    return Clock(best[1], best[0] / 2 + LEDGER_MARGIN, "ledger")


async def measure(source: str, client: LabClient, account: str) -> Clock:
    """The clock of this generator according to ``source`` (one of :data:`SOURCES`)."""
    if source == "host":
        return HOST
    if source == "kernel":
        return kernel_clock()
    if source == "ledger":
        return await ledger_clock(client, account)
    raise CaplabError(f"--clock: one of {', '.join(SOURCES)}, not {source!r}")
