"""Row keys of ``account_activity``: their parts round-trip and their byte order is the feed's
order, for any account, time and transfer (Hypothesis)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from caplab.core.rowkey import (
    InvalidKeyPart,
    account_prefix,
    decode_page_token,
    encode_page_token,
    prefix_end,
    reverse_timestamp,
    row_key,
)

MAX_MICROS = 2**63 - 1
ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="#", exclude_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(9999, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=3))]),
)


def micros_since_epoch(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@given(ids, moments, ids)
def test_a_key_splits_back_into_its_parts(account: str, moment: datetime, transfer: str) -> None:
    """``<account>#<19 digits: 2**63-1 - micros>#<transfer>``, the account's prefix first."""
    key = row_key(account, moment, transfer)
    assert key.startswith(account_prefix(account))
    parts = key.decode().split("#")
    assert parts == [account, parts[1], transfer]
    assert re.fullmatch(r"\d{19}", parts[1])
    assert MAX_MICROS - int(parts[1]) == micros_since_epoch(moment)


@given(ids, moments, moments, ids, ids)
def test_newer_activity_sorts_first(
    account: str, a: datetime, b: datetime, first: str, second: str
) -> None:
    """Within one account, a later commit has a smaller key (a scan reads newest first); in
    the same microsecond, the transfer ids decide and the keys stay distinct."""
    key_a, key_b = row_key(account, a, first), row_key(account, b, second)
    if micros_since_epoch(a) != micros_since_epoch(b):
        assert (key_a < key_b) == (a > b)
    else:
        assert (key_a < key_b) == (first.encode() < second.encode())
        assert (key_a == key_b) == (first == second)


@given(st.integers(0, MAX_MICROS // 10**6 // 86_400 // 366))
def test_reverse_timestamps_are_always_19_digits(days: int) -> None:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=days)
    assert len(reverse_timestamp(moment)) == 19


def test_the_epoch_and_one_microsecond_after() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert reverse_timestamp(epoch) == str(MAX_MICROS)
    assert reverse_timestamp(epoch + timedelta(microseconds=1)) == str(MAX_MICROS - 1)
    assert reverse_timestamp(epoch + timedelta(days=1, seconds=1)) == str(
        MAX_MICROS - 86_401_000_000
    )


@given(ids, ids, moments, ids)
def test_one_accounts_prefix_never_matches_another_accounts_keys(
    account: str, other: str, moment: datetime, transfer: str
) -> None:
    """``acct-1#`` is not a prefix of ``acct-10#...``: the delimiter isolates accounts."""
    assume(account != other)
    assert not row_key(other, moment, transfer).startswith(account_prefix(account))


@given(st.binary(min_size=1, max_size=12).filter(lambda p: p[-1] < 255), st.binary(max_size=16))
def test_prefix_end_bounds_exactly_the_keys_with_the_prefix(prefix: bytes, key: bytes) -> None:
    """``prefix <= key < prefix_end(prefix)`` holds exactly for the keys starting with the
    prefix: the scan range of one account is that account's rows and nothing else."""
    end = prefix_end(prefix)
    assert (prefix <= key < end) == key.startswith(prefix)
    assert (prefix <= prefix + key < end) is True


def test_the_end_of_an_accounts_range_is_the_next_prefix() -> None:
    """``acct-1#`` ends where ``acct-1$`` begins: the first key past the range."""
    assert prefix_end(account_prefix("acct-1")) == b"acct-1$"
    assert prefix_end(b"a\x00") == b"a\x01"


@given(st.binary(min_size=1, max_size=40), st.binary(max_size=8))
def test_page_tokens_round_trip_and_are_url_safe(key: bytes, prefix_cut: bytes) -> None:
    """A token is unpadded URL-safe base64 of the last key; it decodes to that key for the
    feed it came from."""
    token = encode_page_token(key)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", token)
    prefix = key[: len(prefix_cut)]
    assert decode_page_token(token, prefix) == key


@given(ids, ids, moments, ids)
def test_a_token_from_another_accounts_feed_is_refused(
    account: str, other: str, moment: datetime, transfer: str
) -> None:
    assume(account != other)
    token = encode_page_token(row_key(other, moment, transfer))
    with pytest.raises(InvalidKeyPart, match=r"^page_token belongs to another account's feed$"):
        decode_page_token(token, account_prefix(account))


@pytest.mark.parametrize("token", ["a", "abcde", "!!!!", "ab=c", "YWNjdA!!", "YW+j", "YW/j"])
def test_a_token_that_is_not_base64_is_refused(token: str) -> None:
    """Not silently cleaned up: a character outside the URL-safe alphabet (or a bad length)
    makes the whole token invalid."""
    with pytest.raises(InvalidKeyPart, match=r"^page_token is not a token this service issued$"):
        decode_page_token(token, b"")


def test_padding_is_restored_before_decoding() -> None:
    """Tokens are sent without ``=``; 1 and 2 missing padding characters are both restored."""
    for key in (b"a", b"ab", b"abc", b"ab\x17"):  # the last encodes to YWIX: no "=" to strip
        token = encode_page_token(key)
        assert "=" not in token
        assert base64.urlsafe_b64encode(key).decode().rstrip("=") == token
        assert decode_page_token(token, b"a") == key


@pytest.mark.parametrize("bad", ["", "a#b", "#", "acct#"])
def test_empty_parts_and_delimiters_are_refused(bad: str) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidKeyPart, match="account id must be non-empty"):
        account_prefix(bad)
    with pytest.raises(InvalidKeyPart, match="transfer id must be non-empty"):
        row_key("acct", moment, bad)
