"""Row keys of ``account_activity``: ``<account>#<reverse commit micros, 19 digits>#<transfer>``.

- **Field promotion**: the account leads, so one account's activity is one contiguous prefix
  (a single prefix scan serves the feed) and writes spread over every account's range instead
  of piling onto the newest tablet, as a timestamp-leading key would.
- **Reverse timestamp**: ``2**63 - 1 - micros since the epoch``, zero-padded to 19 digits, so
  byte order is newest first and a scan returns the most recent activity without reading the
  rest.
- **Transfer id last**: two transfers committed in the same microsecond keep distinct rows,
  and a redelivered event maps to exactly the same row (idempotent projection).

Account ids must not contain ``#``: the delimiter is what makes ``<account>#`` a prefix of
that account's rows only (``acct-1#`` is not a prefix of ``acct-10#...``).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

DELIMITER = "#"
_MAX_MICROS = 2**63 - 1
_DIGITS = 19
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN = re.compile(r"[A-Za-z0-9_-]*")
_NOT_ISSUED = "page_token is not a token this service issued"


class InvalidKeyPart(ValueError):
    pass


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def reverse_timestamp(moment: datetime) -> str:
    """The zero-padded reverse of ``moment`` in microseconds: later sorts first."""
    return str(_MAX_MICROS - _micros(moment)).zfill(_DIGITS)


def _check(part: str, what: str) -> str:
    if not part or DELIMITER in part:
        raise InvalidKeyPart(f"{what} must be non-empty and must not contain {DELIMITER!r}")
    return part


def account_prefix(account: str) -> bytes:
    """The prefix every row of ``account`` starts with."""
    return f"{_check(account, 'account id')}{DELIMITER}".encode()


def row_key(account: str, committed_at: datetime, transfer_id: str) -> bytes:
    suffix = f"{reverse_timestamp(committed_at)}{DELIMITER}{_check(transfer_id, 'transfer id')}"
    return account_prefix(account) + suffix.encode()


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (exclusive end)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def encode_page_token(last_key: bytes) -> str:
    """An opaque page token: the last row key a page returned, URL-safe base64."""
    return base64.urlsafe_b64encode(last_key).decode().rstrip("=")


def decode_page_token(token: str, prefix: bytes) -> bytes:
    """The row key inside ``token``; it must belong to ``prefix`` (a token from another
    account's feed is rejected, not silently applied)."""
    if not _TOKEN.fullmatch(token):  # the decoder would skip such characters silently
        raise InvalidKeyPart(_NOT_ISSUED)
    try:
        key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as error:
        raise InvalidKeyPart(_NOT_ISSUED) from error
    if not key.startswith(prefix):
        raise InvalidKeyPart("page_token belongs to another account's feed")
    return key
