"""The shared field types at their edges: account ids, amounts and balances, generated ids."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from services.shared.fields import (
    ACCOUNT_ID_PATTERN,
    MAX_CENTS,
    AccountId,
    Cents,
    HexId,
    PositiveCents,
)

ACCOUNT = TypeAdapter(AccountId)
BALANCE = TypeAdapter(Cents)
AMOUNT = TypeAdapter(PositiveCents)
HEX = TypeAdapter(HexId)
INT64_MAX = 2**63 - 1


def accepts(adapter: TypeAdapter[Any], value: object) -> bool:
    try:
        return adapter.validate_python(value) == value
    except ValidationError:
        return False


@pytest.mark.parametrize("text", ["a", "Z", "0", "_", ".", ":", "-", "acct-1.eu:main_2", "x" * 64])
def test_account_ids_are_one_to_64_letters_digits_or_marks(text: str) -> None:
    assert accepts(ACCOUNT, text)


@pytest.mark.parametrize(
    "text", ["", "x" * 65, "a#b", "a b", "a/b", "é", "a\n", "\na", "a\x00", "a,b"]
)
def test_other_account_ids_are_refused(text: str) -> None:
    """``#`` above all (the activity row key's delimiter), and no trailing newline sneaking
    past ``$``."""
    assert not accepts(ACCOUNT, text)


@given(st.text(max_size=70))
def test_the_account_id_type_and_its_pattern_agree(text: str) -> None:
    """Body fields use the type, path parameters and the snapshot's id list the pattern
    (``re.fullmatch``): the same ids pass both, and none longer than Spanner's STRING(64)."""
    matched = re.fullmatch(ACCOUNT_ID_PATTERN, text) is not None
    assert accepts(ACCOUNT, text) == matched
    if matched:
        assert 1 <= len(text.encode()) <= 64


@pytest.mark.parametrize(
    ("value", "balance", "amount"),
    [
        (0, True, False),
        (1, True, True),
        (10**15, True, True),
        (10**15 + 1, False, False),
        (-1, False, False),
        (5.0, False, False),
        ("5", False, False),
        (True, False, False),
        (None, False, False),
    ],
)
def test_balances_and_amounts_are_strict_integer_cents_up_to_the_cap(
    value: object, balance: bool, amount: bool
) -> None:
    """A balance may be zero, an amount may not; both stop at ten trillion units (10**15
    cents); neither is ever rounded or parsed."""
    assert (accepts(BALANCE, value), accepts(AMOUNT, value)) == (balance, amount)


def test_no_sum_of_two_accepted_values_overflows_int64() -> None:
    assert 2 * MAX_CENTS <= INT64_MAX


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        (uuid.UUID(int=0).hex, True),
        ("0123456789abcdef" * 2, True),
        ("0123456789ABCDEF" * 2, False),
        ("a" * 31, False),
        ("a" * 33, False),
        ("g" * 32, False),
        (str(uuid.UUID(int=1)), False),
    ],
)
def test_generated_ids_are_32_lowercase_hex_digits(text: str, accepted: bool) -> None:
    assert accepts(HEX, text) == accepted
