"""Duration strings and RFC 3339 timestamps round-trip, for any value (Hypothesis)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from hypothesis import given
from hypothesis import strategies as st

from caplab.core.durations import DurationError, format_duration, parse_duration
from caplab.core.timestamps import parse_rfc3339, rfc3339

NANOS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
         "h": 3600 * 10**9}  # fmt: skip
LARGER = {"us": 1_000, "ms": 1_000, "s": 60, "m": 60, "h": None}
"""How many of each formatted unit make the next larger one (h is the largest)."""
durations = st.integers(0, timedelta.max // timedelta(microseconds=1)).map(
    lambda micros: timedelta(microseconds=micros)
)
"""Up to the longest timedelta: beyond 2**53 µs (285 years) a float loses microseconds."""


@given(durations)
def test_formatting_then_parsing_gives_the_value_back(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@given(durations)
def test_formatting_picks_the_largest_exact_unit(value: timedelta) -> None:
    """``<integer><unit>`` where the integer is not a whole number of the next larger unit:
    60s is written 1m, 1000ms 1s; zero is 0s."""
    text = format_duration(value)
    match = re.fullmatch(r"(\d+)(us|ms|s|m|h)", text)
    assert match, text
    number, unit = int(match[1]), match[2]
    if value == timedelta(0):
        assert text == "0s"
        return
    assert number > 0
    larger = LARGER[unit]
    assert larger is None or number % larger != 0


@given(st.integers(0, 10**9), st.sampled_from(sorted(NANOS)), st.sampled_from(["", " ", "  "]))
def test_an_integer_and_a_unit_scale_exactly(number: int, unit: str, space: str) -> None:
    """``<n><unit>`` is n of that unit (to the microsecond, half to even); spaces around the
    number and the unit are allowed."""
    expected = timedelta(microseconds=number * NANOS[unit] / 1_000)
    assert parse_duration(f"{space}{number}{space}{unit}{space}") == expected


@given(st.integers(0, 10**6), st.integers(0, 999_999), st.sampled_from(["ms", "s", "m", "h"]))
def test_a_decimal_number_scales_exactly(whole: int, fraction: int, unit: str) -> None:
    number = Decimal(f"{whole}.{fraction:06d}")
    micros = number * NANOS[unit] / 1_000
    assert parse_duration(f"{number}{unit}") == timedelta(microseconds=float(micros))


@given(
    st.sampled_from(["-1s", "1e3ms", "10s5ms", "10", "s", "", "1.s", ".5s", "1 0s", "10 parsecs",
                     "5S", "1sec", "1d", "+1s", "0x10s", "1,5s", "∞s", "1.5.5s"])
    | st.text(alphabet="abcdefgxyz-+_ ", max_size=8)
)  # fmt: skip
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    """One non-negative number and one known unit, nothing else; the error names the units."""
    with pytest.raises(DurationError, match=r"e\.g\. 10s.*units: ns, us, ms, s, m, h"):
        parse_duration(text)


def test_the_longest_timedelta_round_trips_and_one_microsecond_more_is_refused() -> None:
    longest = format_duration(timedelta.max)
    assert parse_duration(longest) == timedelta.max
    too_long = f"{timedelta.max // timedelta(microseconds=1) + 1}us"
    with pytest.raises(DurationError) as refused:
        parse_duration(too_long)
    assert str(refused.value) == f"{too_long!r} is longer than any duration this service accepts"


@given(st.integers(0, 499))
def test_sub_microsecond_durations_format_as_zero(nanos: int) -> None:
    assert format_duration(parse_duration(f"{nanos}ns")) == "0s"


aware = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5)), timezone(-timedelta(hours=8))]),
)


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is not UTC (India, +05:30) for the test."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_timestamps_are_utc_whatever_the_local_time_zone(far_from_utc: None) -> None:
    moment = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert rfc3339(moment) == "2026-01-01T12:00:00.000000Z"


@given(aware)
def test_plain_datetimes_round_trip_in_utc(moment: datetime) -> None:
    """Any aware datetime is written in UTC with microseconds and ``Z``, and parses back to the
    same instant."""
    text = rfc3339(moment)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text), text
    assert parse_rfc3339(text) == moment
    assert text.startswith(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))


@given(aware, aware)
def test_written_timestamps_sort_like_the_instants(a: datetime, b: datetime) -> None:
    assert (rfc3339(a) < rfc3339(b)) == (a < b)


@given(aware, st.integers(1, 999_999_999))
def test_spanner_nanoseconds_survive_a_round_trip(moment: datetime, nanos: int) -> None:
    """A commit timestamp with nanoseconds (Spanner's DatetimeWithNanoseconds) is written with
    them and reads back with the same nanoseconds."""
    utc = moment.astimezone(UTC).replace(microsecond=0)
    precise = DatetimeWithNanoseconds(*utc.timetuple()[:6], nanosecond=nanos, tzinfo=UTC)
    text = rfc3339(precise)
    digits = re.fullmatch(r".*\.(\d+)Z", text)
    assert digits
    assert int(digits[1].ljust(9, "0")) == nanos
    parsed = parse_rfc3339(text)
    assert parsed.nanosecond == nanos
    assert parsed == precise
