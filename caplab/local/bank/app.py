"""The stand-in bank (local only, never deployed): the payout contract the ledger's saga calls
(``services/ledger/payouts/bank.py``), with faults to drive the saga through every branch.

Contract:

- ``POST /payments`` ``{"payment_id", "account", "amount_cents"}`` with
  ``Idempotency-Key: <payment_id>``. A new payment is decided and recorded on receipt (paid, or
  refused with a reason) and answered 201 ``{"payment_id", "status": "paid"}`` or 422
  ``{"refused": "<reason>"}``. The same id again never executes twice: while the first request
  is still being answered it is a 409; afterwards the original answer is replayed. A different
  body under a known id is a 409.
- ``GET /payments/{payment_id}``: 200 ``{"payment_id", "status": "paid" | "refused",
  "refused"?}``, or 404 when the bank never received the id.

Faults, per account (``PUT /control/accounts/{account}``; tests use fresh accounts so they
never share them):

- ``down``: every payment request answers 503 and is not recorded (the status query still
  works, and says 404);
- ``delay_seconds``: the answer to a new payment comes this much later (decided at once);
- ``refuse``: refuse new payments with this reason;
- ``conflict_on_retry``: a known id answers 409 instead of the replay (a bank that treats a
  retry as a duplicate);
- ``status_not_found_first``: the first N status queries of each payment answer 404 even
  though the bank has it (a status API lagging the payments);
- ``status_down``: status queries answer 503.

``GET /control/accounts/{account}`` returns the faults, every request received (payment and
status, with the status code answered) and the payments executed. State is in memory: one
process, one event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated

from fastapi import FastAPI, Header, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from caplab.core.topology import LOCAL_PROJECT
from services.shared.app import create_app as create_service_app
from services.shared.fields import ACCOUNT_ID_PATTERN, AccountId, PositiveCents
from services.shared.problems import Problem

PaymentIdPath = Annotated[str, Path(min_length=1, max_length=255)]
AccountPath = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)]


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_id: Annotated[str, Field(min_length=1, max_length=255)]
    account: AccountId
    amount_cents: PositiveCents


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    down: bool = False
    delay_seconds: float = Field(default=0.0, ge=0, le=60)
    refuse: str | None = Field(default=None, min_length=1, max_length=200)
    conflict_on_retry: bool = False
    status_not_found_first: int = Field(default=0, ge=0)
    status_down: bool = False


@dataclass
class Payment:
    payment_id: str
    account: str
    amount_cents: int
    status: str
    """``paid`` or ``refused``."""
    refused: str | None
    answered: bool = False
    """Whether the answer to the request that created it has been sent."""
    status_queries: int = 0

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"payment_id": self.payment_id, "status": self.status}
        if self.refused is not None:
            body["refused"] = self.refused
        return body


@dataclass
class Request:
    kind: str
    """``payment`` or ``status``."""
    payment_id: str
    status_code: int
    at: float


@dataclass
class Account:
    faults: Faults = field(default_factory=Faults)
    requests: list[Request] = field(default_factory=list)


def create_app() -> FastAPI:
    app = create_service_app("caplab stand-in bank", project=LOCAL_PROJECT)
    payments: dict[str, Payment] = {}
    accounts: dict[str, Account] = {}
    senders: dict[str, str] = {}
    """Payment id -> account, for every request received, executed or not (so a status
    query of a payment the bank was down for gets that account's faults)."""

    def account_named(name: str) -> Account:
        return accounts.setdefault(name, Account())

    def answer(
        account: Account, kind: str, payment_id: str, status: int, body: Mapping[str, object]
    ) -> JSONResponse:
        account.requests.append(Request(kind, payment_id, status, time.time()))
        return JSONResponse(body, status_code=status)

    @app.post("/payments", tags=["bank"])
    async def pay(
        payment: PaymentIn,
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key", max_length=255)],
    ) -> JSONResponse:
        if idempotency_key != payment.payment_id:
            raise Problem(
                422,
                "invalid-request",
                "Idempotency-Key must equal payment_id",
                field="header.Idempotency-Key",
            )
        account = account_named(payment.account)
        faults = account.faults
        known = payments.get(payment.payment_id)
        senders[payment.payment_id] = payment.account
        if faults.down:
            return answer(account, "payment", payment.payment_id, 503, {"detail": "bank down"})
        if known is not None:
            same = (known.account, known.amount_cents) == (payment.account, payment.amount_cents)
            if not same or not known.answered or faults.conflict_on_retry:
                body = {"detail": "a payment with this id exists", "payment_id": known.payment_id}
                return answer(account, "payment", payment.payment_id, 409, body)
            return answer(account, "payment", payment.payment_id, *_result(known))
        decided = Payment(
            payment.payment_id,
            payment.account,
            payment.amount_cents,
            status="refused" if faults.refuse else "paid",
            refused=faults.refuse,
        )
        payments[payment.payment_id] = decided
        if faults.delay_seconds:
            await asyncio.sleep(faults.delay_seconds)
        decided.answered = True
        return answer(account, "payment", payment.payment_id, *_result(decided))

    @app.get("/payments/{payment_id}", tags=["bank"])
    async def status(payment_id: PaymentIdPath) -> JSONResponse:
        sender = senders.get(payment_id)
        if sender is None:  # never sent here: no account whose faults apply
            return JSONResponse({"payment_id": payment_id}, status_code=404)
        account = account_named(sender)
        if account.faults.status_down:
            return answer(account, "status", payment_id, 503, {"detail": "status down"})
        payment = payments.get(payment_id)
        if payment is None:
            return answer(account, "status", payment_id, 404, {"payment_id": payment_id})
        payment.status_queries += 1
        if payment.status_queries <= account.faults.status_not_found_first:
            return answer(account, "status", payment_id, 404, {"payment_id": payment_id})
        return answer(account, "status", payment_id, 200, payment.body())

    @app.put("/control/accounts/{account}", tags=["control"])
    async def control(account: AccountPath, faults: Faults) -> dict[str, object]:
        account_named(account).faults = faults
        return faults.model_dump()

    @app.get("/control/accounts/{account}", tags=["control"])
    async def observed(account: AccountPath) -> dict[str, object]:
        state = account_named(account)
        return {
            "faults": state.faults.model_dump(),
            "requests": [asdict(r) for r in state.requests],
            "payments": [asdict(p) for p in payments.values() if p.account == account],
        }

    return app


def _result(payment: Payment) -> tuple[int, dict[str, object]]:
    if payment.status == "paid":
        return 201, payment.body()
    return 422, {"refused": payment.refused, "payment_id": payment.payment_id}
