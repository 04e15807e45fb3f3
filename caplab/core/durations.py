"""Durations written the way people and Go/Cloud configs write them: ``10s``, ``1500ms``, ``2m``.

Accepted units: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h``; one number per string,
integer or decimal, never negative. :func:`format_duration` writes the shortest exact form back,
so a parsed value round-trips (``1500ms`` stays ``1500ms``, ``60s`` becomes ``1m``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

_PATTERN = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ns|us|µs|ms|s|m|h)\s*$")
_NANOS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_FORMAT_UNITS = (
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
)


MAX_DURATION = timedelta.max
"""The longest duration a ``timedelta`` holds (about 2.7 million years): beyond it, a string
is refused before any arithmetic is done with it."""
_MAX_NANOS = (MAX_DURATION // timedelta(microseconds=1)) * 1_000


class DurationError(ValueError):
    """Raised for a string that is not a duration; the message says what is accepted."""


def parse_duration(text: str) -> timedelta:
    """``"10s"`` -> ``timedelta(seconds=10)``. Raises :class:`DurationError` otherwise."""
    match = _PATTERN.match(text)
    if match is None:
        raise DurationError(
            f"{text!r} is not a duration; write a number and a unit, e.g. 10s, 1500ms or 2m "
            f"(units: ns, us, ms, s, m, h)"
        )
    try:
        nanos = Decimal(match["number"]) * _NANOS_PER_UNIT[match["unit"]]
    except InvalidOperation as error:  # pragma: no cover - the regex admits only decimals
        raise DurationError(f"{text!r} is not a duration") from error
    if nanos > _MAX_NANOS:
        raise DurationError(f"{text!r} is longer than any duration this service accepts")
    return timedelta(microseconds=int((nanos / 1_000).to_integral_value()))


def format_duration(value: timedelta) -> str:
    """The shortest exact ``<integer><unit>`` for ``value`` (microsecond resolution)."""
    micros = value // timedelta(microseconds=1)  # exact: total_seconds() is a float
    if micros == 0:
        return "0s"
    nanos = micros * 1_000
    for unit, size in _FORMAT_UNITS:
        if nanos % size == 0:
            return f"{nanos // size}{unit}"
    return f"{micros}us"  # pragma: no cover - every microsecond count divides by "us"
