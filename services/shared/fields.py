"""Field types every service shares, declared once: what an account id, an amount of money
and a generated id look like on the wire. Body fields use the ``Annotated`` types; path
parameters use the ``*_PATH`` patterns, so a bad id is a 422 naming ``path.<name>``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
"""Short printable tokens, never ``#`` (the activity row key's delimiter)."""
HEX_ID_PATTERN = r"^[0-9a-f]{32}$"
"""Ids the services generate (transfers, payouts): a UUID4's 32 hex digits."""

MAX_CENTS = 10**15
"""Largest amount or balance accepted (ten trillion units): far from INT64 overflow, so no
sum of two accepted values can overflow Spanner's INT64."""

AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]
Cents = Annotated[StrictInt, Field(ge=0, le=MAX_CENTS)]
"""A balance: integer cents (``StrictInt``: ``5.0`` and ``"5"`` are refused, never rounded)."""
PositiveCents = Annotated[StrictInt, Field(gt=0, le=MAX_CENTS)]
"""An amount that moves money."""
HexId = Annotated[str, Field(pattern=HEX_ID_PATTERN)]
