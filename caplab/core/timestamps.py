"""Timestamps on the wire: RFC 3339 in UTC, keeping Spanner's nanoseconds when present."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime) -> str:
    """``2026-11-26T05:26:49.484483123Z``: nanoseconds for Spanner's
    ``DatetimeWithNanoseconds``, microseconds for a plain ``datetime``."""
    nanosecond_form = getattr(value, "rfc3339", None)
    if callable(nanosecond_form):
        return str(nanosecond_form())
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp (nanoseconds are truncated to microseconds)."""
    from google.api_core.datetime_helpers import DatetimeWithNanoseconds

    return DatetimeWithNanoseconds.from_rfc3339(text)
