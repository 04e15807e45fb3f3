"""A guided tour of the asynchronous half, against running services (``caplab serve``).

``run(console, urls)`` with ``urls`` = service name -> base URL (``ledger``, ``activity``,
``notifier``, ``sink``, ``bank``; e.g. :func:`caplab.core.topology.local_service_urls`):

1. creates two accounts on the ledger and registers the payee's webhook on the sink, with the
   sink failing its next two requests;
2. makes three transfers and watches the activity feed until all are projected, printing
   the commit-to-visible delay and ``projected_through``;
3. waits for the webhook deliveries: two failed, retried by the queue, three effects, no
   duplicate;
4. shows the notifier's breaker and bulkhead counters;
5. runs two payouts through the stand-in bank (``urls["bank"]``): one it refuses
   (compensated, the balance comes back), one it pays but answers late and then with 409
   (settled, never compensated), printing each payout's steps.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from caplab.core.topology import TOPOLOGY


def _wait(probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.05)
    raise TimeoutError(f"nothing after {timeout:.0f}s")


def run(console: Console, urls: Mapping[str, str]) -> None:
    ledger, activity, notifier, sink = (
        urls["ledger"], urls["activity"], urls["notifier"], urls["sink"],
    )  # fmt: skip
    run_id = uuid.uuid4().hex[:6]
    payer, payee, hook = f"tour-{run_id}-payer", f"tour-{run_id}-payee", f"tour-{run_id}"
    with httpx.Client(timeout=10) as http:
        console.rule("Fan-out: one commit, several idempotent consumers")
        for account in (payer, payee):
            http.post(
                f"{ledger}/v1/accounts",
                json={"id": account, "owner": "tour", "balance_cents": 10_000},
            ).raise_for_status()
        http.put(
            f"{notifier}/v1/accounts/{payee}/webhook", json={"url": f"{sink}/hooks/{hook}"}
        ).raise_for_status()
        http.put(f"{sink}/control/{hook}", json={"fail_next": 2}).raise_for_status()
        console.print(f"accounts {payer} → {payee}; the payee's webhook fails its next 2 calls")

        table = Table(title="transfers: commit → visible in the activity read model")
        for column in ("transfer", "committed", "visible after", "projected_through"):
            table.add_column(column)
        for amount in (100, 250, 400):
            response = http.post(
                f"{ledger}/v1/transfers",
                json={"from": payer, "to": payee, "amount_cents": amount},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            transfer = response.json()
            started = time.monotonic()

            def projected(transfer_id: str = transfer["transfer_id"]) -> dict[str, Any] | None:
                page = http.get(f"{activity}/v1/accounts/{payee}/activity").json()
                ids = [item["transfer_id"] for item in page["items"]]
                return page if transfer_id in ids else None

            page = _wait(projected, 30)
            table.add_row(
                transfer["transfer_id"][:8],
                transfer["commit_timestamp"],
                f"{(time.monotonic() - started) * 1000:.0f} ms",
                page["projected_through"],
            )
        console.print(table)

        def delivered() -> dict[str, Any] | None:
            summary = http.get(f"{sink}/hooks/{hook}").json()
            return summary if summary["effects"] >= 3 else None

        summary = _wait(delivered, 60)
        console.print(
            f"webhook: {summary['received']} requests received, {summary['effects']} effects, "
            f"{summary['duplicates']} duplicates (failed calls were retried by the "
            f"'{TOPOLOGY.queue('webhooks').name}' queue; Webhook-Id deduplicates)"
        )
        console.print("notifier downstreams:", http.get(f"{notifier}/v1/downstreams").json())

        console.rule("Payout saga: hold → the bank (Cloud Tasks) → settle or compensate")
        bank = urls["bank"]

        def payout_to(account: str, amount: int) -> dict[str, Any]:
            response = http.post(
                f"{ledger}/v1/payouts",
                json={"account": account, "amount_cents": amount},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            return response.json()

        def ended(payout_id: str) -> Callable[[], dict[str, Any] | None]:
            def probe() -> dict[str, Any] | None:
                body = http.get(f"{ledger}/v1/payouts/{payout_id}").json()
                return body if body["state"] in ("settled", "compensated") else None

            return probe

        def show(title: str, payout: dict[str, Any]) -> None:
            console.print(f"{title}: payout {payout['payout_id'][:8]} is {payout['state']}")
            for step in payout["history"]:
                console.print(
                    f"  {step['step']}. {step['event']:<17} → {step['state']:<12} {step['detail']}"
                )

        http.put(
            f"{bank}/control/accounts/{payer}", json={"refuse": "account closed"}
        ).raise_for_status()
        show("the bank refuses", _wait(ended(payout_to(payer, 1_000)["payout_id"]), 60))
        # The bank pays, but answers after the ledger's bank timeout (5 s); its status API
        # lags once, so the saga sends the payment again and gets 409. Neither compensates.
        http.put(
            f"{bank}/control/accounts/{payee}",
            json={"delay_seconds": 6, "conflict_on_retry": True, "status_not_found_first": 1},
        ).raise_for_status()
        late = payout_to(payee, 500)
        with console.status("the bank answers late, then 409 to the retry..."):
            final = _wait(ended(late["payout_id"]), 90)
        show("late success, then 409", final)
        for account in (payer, payee):
            balance = http.get(f"{ledger}/v1/accounts/{account}").json()["balance_cents"]
            console.print(f"{account}: {balance} cents")
