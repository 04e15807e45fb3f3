"""The bank contract, as the payout saga calls it: one configured bank (``CAPLAB_BANK_URL``),
never a URL a caller chose, behind its own circuit breaker, bulkhead and timeout
(``CAPLAB_BANK_TIMEOUT``).

``POST {bank}/payments`` with ``{"payment_id", "account", "amount_cents"}`` and
``Idempotency-Key: <payment_id>`` (the payout id: the bank executes one payment per id,
however often it is sent):

- 2xx: **paid**;
- 422 with ``{"refused": "<reason>"}``: **refused**, for good (the bank's decision per id is
  final);
- anything else — a timeout, a connection error, 5xx, 409, 3xx (redirects are never
  followed), another 4xx, a 422 without ``refused`` — is **unknown**: the bank may have paid.
  Unknown never compensates.

``GET {bank}/payments/{payment_id}``:

- 200 ``{"status": "paid"}`` or ``{"status": "refused", "refused": "<reason>"}``: the outcome;
- 404: the bank never received this payment id;
- anything else (``{"status": "pending"}`` while the bank is still executing it, 5xx, a
  timeout...) is **unknown**: ask again later.

A call our own breaker or bulkhead refused never left this process: **not sent**.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from services.shared.resilience import Downstream, ResilienceError


class Outcome(enum.StrEnum):
    PAID = "paid"
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    """Status query only: the bank never received the payment."""
    UNKNOWN = "unknown"
    NOT_SENT = "not_sent"
    """Refused locally (breaker open, bulkhead full): the bank cannot have received it."""


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    detail: str
    """What the bank said, for the payout's history (status code, reason, error)."""


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def payment_answer(response: httpx.Response) -> Answer:
    """Classify the bank's answer to ``POST /payments``."""
    status = response.status_code
    if 200 <= status < 300:
        return Answer(Outcome.PAID, f"bank answered {status}")
    body = _json(response)
    if status == 422 and isinstance(body, dict) and isinstance(body.get("refused"), str):
        return Answer(Outcome.REFUSED, f"bank refused: {body['refused']}")
    return Answer(Outcome.UNKNOWN, f"bank answered {status}: outcome unknown")


def status_answer(response: httpx.Response) -> Answer:
    """Classify the bank's answer to ``GET /payments/{id}``."""
    status = response.status_code
    if status == 404:
        return Answer(Outcome.NOT_FOUND, "status query: the bank never received it")
    body = _json(response)
    reported = body.get("status") if status == 200 and isinstance(body, dict) else None
    if reported == "paid":
        return Answer(Outcome.PAID, "status query: paid")
    if reported == "refused" and isinstance(body, dict):
        return Answer(Outcome.REFUSED, f"status query: refused: {body.get('refused', '')}")
    said = f"status {reported!r}" if reported is not None else f"{status}"
    return Answer(Outcome.UNKNOWN, f"status query answered {said}: still unknown")


class Bank:
    """The configured bank, called through ``downstream`` (breaker, bulkhead, timeout)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient, downstream: Downstream) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._downstream = downstream

    async def pay(self, payment_id: str, account: str, amount_cents: int) -> Answer:
        body = {"payment_id": payment_id, "account": account, "amount_cents": amount_cents}

        async def post() -> httpx.Response:
            return await self._http.post(
                f"{self.base_url}/payments", json=body, headers={"Idempotency-Key": payment_id}
            )

        return await self._call(post, payment_answer)

    async def status(self, payment_id: str) -> Answer:
        async def get() -> httpx.Response:
            return await self._http.get(f"{self.base_url}/payments/{payment_id}")

        return await self._call(get, status_answer)

    async def _call(
        self,
        request: Callable[[], Awaitable[httpx.Response]],
        classify: Callable[[httpx.Response], Answer],
    ) -> Answer:
        async def answered() -> httpx.Response:
            response = await request()
            if response.status_code >= 500:
                raise _ServerError(response)  # a failure for the breaker
            return response

        try:
            return classify(await self._downstream.call(answered))
        except _ServerError as failed:
            return classify(failed.response)
        except ResilienceError as refused:
            return Answer(Outcome.NOT_SENT, f"not sent: {refused}")
        except TimeoutError:
            timeout = self._downstream.timeout
            return Answer(Outcome.UNKNOWN, f"no answer within {timeout:g}s: outcome unknown")
        except httpx.HTTPError as error:
            return Answer(Outcome.UNKNOWN, f"{type(error).__name__}: {error}: outcome unknown")

    def snapshot(self) -> dict[str, object]:
        """The breaker's and bulkhead's state and counters (not the bank's address)."""
        return self._downstream.snapshot()


class _ServerError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"bank answered {response.status_code}")
        self.response = response
