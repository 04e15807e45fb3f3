"""Duration strings as services accept them in query parameters and settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from caplab.core.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", timedelta(seconds=10)),
        ("1500ms", timedelta(milliseconds=1500)),
        ("2m", timedelta(minutes=2)),
        ("1h", timedelta(hours=1)),
        ("0.5s", timedelta(milliseconds=500)),
        ("250us", timedelta(microseconds=250)),
        ("0s", timedelta(0)),
    ],
)
def test_parses_number_and_unit(text: str, expected: timedelta) -> None:
    """Each unit scales the number to the same timedelta a person means."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "s", "-1s", "10 parsecs", "1e3ms", "10s5ms"])
def test_rejects_what_is_not_a_duration(text: str) -> None:
    """Anything but one non-negative number and a known unit is refused, with an example."""
    with pytest.raises(DurationError, match=r"e\.g\. 10s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=10), "10s"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(seconds=120), "2m"),
        (timedelta(0), "0s"),
        (timedelta(microseconds=7), "7us"),
    ],
)
def test_formats_shortest_exact_form(value: timedelta, text: str) -> None:
    """Formatting picks the largest unit that is exact, and parsing it gives the value back."""
    assert format_duration(value) == text
    assert parse_duration(text) == value
