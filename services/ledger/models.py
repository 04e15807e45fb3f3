"""The ledger's wire shapes, built from the shared field types (``services.shared.fields``)."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core.core_schema import ValidationInfo

from services.shared.fields import AccountId, Cents, PositiveCents


class Consistency(enum.StrEnum):
    STRONG = "strong"
    """Spanner strong read: the latest committed value (served by the leader)."""
    EXACT = "exact"
    """Exact staleness: the value as of now − staleness (any replica can serve it)."""
    BOUNDED = "bounded"
    """Max staleness: any value no older than now − staleness (replica picks the newest it has)."""
    CACHED = "cached"
    """Cache-aside in this instance: TTL plus invalidation by transfer events."""


ServedBy = Literal["leader", "replica", "cache"]

LAST_WRITER = (
    "the operation that wrote this version: `create`, a transfer id, or a payout step "
    "(`payout:<id>:held`, `payout:<id>:compensated`); null for a version written before "
    "writers were recorded"
)


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: AccountId
    owner: Annotated[str, Field(min_length=1, max_length=256)]
    balance_cents: Cents


class AccountOut(BaseModel):
    account: str
    owner: str
    balance_cents: int
    version: int
    updated_at: str
    read_timestamp: str
    consistency: Consistency
    staleness: str | None = Field(
        description="the staleness bound used (exact/bounded), or the cache's maximum entry age"
    )
    served_by: ServedBy
    cache_age: str | None = Field(None, description="age of the cache entry served (cached hits)")
    last_writer: str | None = Field(None, description=LAST_WRITER)


class AccountCreated(BaseModel):
    account: str
    owner: str
    balance_cents: int
    version: int
    commit_timestamp: str
    created: bool = Field(description="false when the account already existed identically")


def _other_than_from(to: str, info: ValidationInfo) -> str:
    """``to`` unless it names the account in ``from`` (a transfer needs two accounts). A
    plain function, not a decorated validator, so that ``make mutation`` reaches it (mutmut
    skips decorated functions)."""
    if info.data.get("from_") == to:
        raise ValueError("must differ from `from`: a transfer needs two accounts")
    return to


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: AccountId = Field(alias="from")
    to: Annotated[AccountId, AfterValidator(_other_than_from)]
    amount_cents: PositiveCents


class TransferOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    transfer_id: str
    from_: str = Field(alias="from")
    to: str
    amount_cents: int
    from_version: int
    to_version: int
    from_balance_cents: int | None = None
    to_balance_cents: int | None = None
    from_previous_writer: str | None = Field(
        None, description="the writer of the version of `from` this transfer replaced"
    )
    to_previous_writer: str | None = Field(
        None, description="the writer of the version of `to` this transfer replaced"
    )
    commit_timestamp: str


class SnapshotAccount(BaseModel):
    account: str
    balance_cents: int
    version: int
    last_writer: str | None = Field(None, description=LAST_WRITER)


class SnapshotOut(BaseModel):
    read_timestamp: str
    accounts: list[SnapshotAccount]
    total_cents: int
    consistency: Consistency
    staleness: str | None
    served_by: ServedBy
