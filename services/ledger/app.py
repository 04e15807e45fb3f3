"""The ledger HTTP service: accounts, transfers, and balance reads whose consistency the
caller chooses — and sees the price of — in every answer.

Run it as the container does: ``PORT=8081 caplab service ledger``.

In the cloud every request but the probes carries a Google ID token the ledger verifies
(``CAPLAB_CALLER_AUDIENCE``; :mod:`services.shared.identity`); the caller's identity is
logged with each account created and each transfer committed (fields ``caller``,
``transfer_id``...). Locally the caller is ``anonymous``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, Response

from caplab.core.clients import ClientFactory
from caplab.core.durations import DurationError, format_duration, parse_duration
from caplab.core.timestamps import rfc3339
from caplab.core.topology import TOPOLOGY
from services.ledger.cache import BalanceCache, CacheStats
from services.ledger.models import (
    AccountCreated,
    AccountIn,
    AccountOut,
    Consistency,
    SnapshotAccount,
    SnapshotOut,
    TransferIn,
    TransferOut,
)
from services.ledger.payouts.api import add_payout_routes
from services.ledger.settings import LedgerSettings
from services.ledger.store import AccountRow, LedgerStore, account_not_found
from services.ledger.transfers import Transfers
from services.shared import idempotency
from services.shared.app import create_app as create_service_app
from services.shared.deadline import run_with_deadline
from services.shared.events import TransferCommitted
from services.shared.fields import ACCOUNT_ID_PATTERN, HEX_ID_PATTERN
from services.shared.identity import CallerDep
from services.shared.problems import Problem, invalid_field, problem_responses
from services.shared.pubsub_push import DeadLetters, PushMessage, consume
from services.shared.transactions import TransactionRunner

log = logging.getLogger(__name__)

MAX_SNAPSHOT_ACCOUNTS = 100
ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)
MAX_DURATION_TEXT = 32
INVALIDATION = TOPOLOGY.subscription("ledger-cache-invalidation")
SERVED_BY = {
    Consistency.STRONG: "leader",
    Consistency.EXACT: "replica",
    Consistency.BOUNDED: "replica",
    Consistency.CACHED: "leader",
}


def _staleness(text: str | None, default: timedelta, limit: timedelta) -> timedelta:
    if text is None:
        return default
    try:
        value = parse_duration(text)
    except DurationError as error:
        raise invalid_field("query.staleness", str(error)) from error
    if value > limit:
        raise invalid_field(
            "query.staleness",
            f"staleness {text} exceeds the maximum {format_duration(limit)} (older versions may "
            f"have been garbage-collected)",
            maximum=format_duration(limit),
        )
    return value


def create_app(
    settings: LedgerSettings | None = None, clients: ClientFactory | None = None
) -> FastAPI:
    settings = settings or LedgerSettings.from_environ()
    clients = clients or ClientFactory(settings.gcp)
    deadline = settings.deadline.total_seconds()
    runner = TransactionRunner(clients.spanner_database, settings.deadline, settings.transactions)
    store = LedgerStore(runner, replica=clients.spanner_replica_database)
    transfers = Transfers(store)
    cache = BalanceCache(settings.cache_ttl, settings.cache_max_entries)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with payouts.running():
            yield

    app = create_service_app(
        "caplab ledger",
        project=settings.gcp.project,
        readiness=store.ping,
        callers=settings.callers,
        lifespan=lifespan,
        version="1.0.0",
        description=(
            "Accounts and transfers on Cloud Spanner. Balance reads choose their consistency: "
            "strong (leader), exact or bounded staleness (any replica), or cached (this "
            "instance, TTL + event invalidation); every answer says which it got."
        ),
    )

    @app.post(
        "/v1/accounts",
        status_code=201,
        response_model=AccountCreated,
        responses={200: {"description": "the account already existed (idempotent create)",
                         "model": AccountCreated}, **problem_responses(409, 422, 503)},
        tags=["accounts"],
    )  # fmt: skip
    async def create_account(
        account: AccountIn, response: Response, caller: CallerDep
    ) -> AccountCreated:
        row, created = await run_with_deadline(
            deadline, store.create_account, account.id, account.owner, account.balance_cents
        )
        log.info(
            "account created" if created else "account create replayed",
            extra={"fields": {"caller": caller.identity, "account": row.account}},
        )
        if not created:
            response.status_code = 200
        return AccountCreated(
            account=row.account,
            owner=row.owner,
            balance_cents=row.balance_cents,
            version=row.version,
            commit_timestamp=rfc3339(row.updated_at),
            created=created,
        )

    @app.get(
        "/v1/accounts/{account_id}",
        response_model=AccountOut,
        responses=problem_responses(404, 422, 503),
        tags=["accounts"],
    )
    async def read_account(
        account_id: Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)],
        consistency: Consistency = Consistency.STRONG,
        staleness: Annotated[
            str | None,
            Query(max_length=MAX_DURATION_TEXT,
                  description="duration such as 10s, 1500ms or 2m; default 10s (exact/bounded) "
                  "or the cache TTL (cached)"),
        ] = None,
    ) -> Response:  # fmt: skip
        if consistency is Consistency.CACHED:
            max_age = _staleness(staleness, settings.cache_ttl, settings.cache_ttl)
            hit = cache.get(account_id, max_age)
            if hit is not None:
                return _account_out(
                    hit.entry.row, hit.entry.read_timestamp_text, consistency, max_age, "cache",
                    cache_age=format_duration(_to_milliseconds(hit.age)),
                )  # fmt: skip
            bound, mode = max_age, Consistency.STRONG
        elif consistency is Consistency.STRONG:
            bound, mode = None, Consistency.STRONG
        else:
            bound = _staleness(staleness, settings.default_staleness, settings.max_staleness)
            mode = consistency
        read = await run_with_deadline(
            deadline, store.read_accounts, [account_id], mode, bound or timedelta(0)
        )
        row = read.rows.get(account_id)
        if row is None and mode is not Consistency.STRONG:
            raise Problem(
                404,
                "account-not-found",
                f"account {account_id!r} did not exist at the read timestamp "
                f"{rfc3339(read.read_timestamp)} (a stale read sees the past)",
                field="path.account_id",
            )
        if row is None:
            raise account_not_found(account_id, "path.account_id")
        read_timestamp = rfc3339(read.read_timestamp)
        if consistency is Consistency.CACHED:
            cache.put(row, read.read_timestamp, read_timestamp)
        return _account_out(row, read_timestamp, consistency, bound, SERVED_BY[consistency])

    @app.get(
        "/v1/snapshot",
        response_model=SnapshotOut,
        responses=problem_responses(404, 422, 503),
        tags=["accounts"],
        summary="Several balances read at one timestamp (for invariants such as total money)",
    )
    async def snapshot(
        accounts: Annotated[
            str,
            Query(max_length=MAX_SNAPSHOT_ACCOUNTS * 65, description="comma-separated account ids"),
        ],
        consistency: Consistency = Consistency.STRONG,
        staleness: Annotated[str | None, Query(max_length=MAX_DURATION_TEXT)] = None,
    ) -> SnapshotOut:
        ids = list(dict.fromkeys(a.strip() for a in accounts.split(",") if a.strip()))
        if not ids or len(ids) > MAX_SNAPSHOT_ACCOUNTS:
            raise invalid_field(
                "query.accounts", f"name between 1 and {MAX_SNAPSHOT_ACCOUNTS} account ids"
            )
        malformed = [a for a in ids if not ACCOUNT_ID.fullmatch(a)]
        if malformed:
            raise invalid_field(
                "query.accounts",
                f"{len(malformed)} account ids do not match {ACCOUNT_ID_PATTERN}",
            )
        if consistency is Consistency.CACHED:
            raise invalid_field(
                "query.consistency",
                "a snapshot is read from Spanner at one timestamp: use strong, exact or bounded",
                valid=["strong", "exact", "bounded"],
            )
        bound = (
            None
            if consistency is Consistency.STRONG
            else _staleness(staleness, settings.default_staleness, settings.max_staleness)
        )
        read = await run_with_deadline(
            deadline, store.read_accounts, ids, consistency, bound or timedelta(0)
        )
        missing = [a for a in ids if a not in read.rows]
        if missing:
            raise Problem(
                404, "account-not-found", f"unknown accounts: {', '.join(missing)}",
                field="query.accounts", missing=missing,
            )  # fmt: skip
        rows = [read.rows[a] for a in ids]
        return SnapshotOut(
            read_timestamp=rfc3339(read.read_timestamp),
            accounts=[
                SnapshotAccount(
                    account=r.account,
                    balance_cents=r.balance_cents,
                    version=r.version,
                    last_writer=r.last_writer,
                )
                for r in rows
            ],
            total_cents=sum(r.balance_cents for r in rows),
            consistency=consistency,
            staleness=format_duration(bound) if bound is not None else None,
            served_by="leader" if bound is None else "replica",
        )

    @app.post(
        "/v1/transfers",
        status_code=201,
        response_model=TransferOut,
        responses={
            201: {"headers": {"Idempotent-Replayed": {"description": "true on a replay",
                                                      "schema": {"type": "string"}}}},
            **problem_responses(400, 404, 409, 422, 503),
        },
        tags=["transfers"],
    )  # fmt: skip
    async def create_transfer(
        transfer: TransferIn,
        response: Response,
        caller: CallerDep,
        idempotency_key: idempotency.KeyHeader = None,
    ) -> Any:
        key = idempotency.required(idempotency_key, "POST /v1/transfers")
        result = await run_with_deadline(deadline, transfers.execute, key, transfer)
        log.info(
            "transfer replayed" if result.replayed else "transfer committed",
            extra={
                "fields": {
                    "caller": caller.identity,
                    "transfer_id": result.body.get("transfer_id"),
                    "from": transfer.from_,
                    "to": transfer.to,
                    "amount_cents": transfer.amount_cents,
                }
            },
        )
        response.status_code = result.status
        if result.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return result.body

    @app.get(
        "/v1/transfers/{transfer_id}",
        response_model=TransferOut,
        responses=problem_responses(404, 422, 503),
        tags=["transfers"],
    )
    async def read_transfer(
        transfer_id: Annotated[str, Path(pattern=HEX_ID_PATTERN)],
    ) -> TransferOut:
        row = await run_with_deadline(deadline, store.read_transfer, transfer_id)
        if row is None:
            raise Problem(404, "transfer-not-found", f"no transfer {transfer_id!r}")
        transfer_id, source, target, amount, from_version, to_version, committed = row
        return TransferOut.model_validate(
            {
                "transfer_id": transfer_id,
                "from": source,
                "to": target,
                "amount_cents": amount,
                "from_version": from_version,
                "to_version": to_version,
                "commit_timestamp": rfc3339(committed),
            }
        )

    dead_letters = DeadLetters(clients.publisher, settings.gcp, deadline)

    async def invalidate_cache(event: TransferCommitted, message: PushMessage) -> None:
        dropped = [
            account
            for account, version in (
                (event.from_account, event.from_version),
                (event.to_account, event.to_version),
            )
            if cache.invalidate(account, version)
        ]
        log.info(
            "cache invalidation", extra={"fields": {"event_id": event.event_id, "dropped": dropped}}
        )

    @app.post(
        INVALIDATION.path,
        status_code=204,
        responses=problem_responses(400),
        tags=["internal"],
        summary="Pub/Sub push endpoint: drop cache entries a transfer event supersedes",
    )
    async def invalidate(request: Request) -> Response:
        return await consume(
            request, INVALIDATION, settings.push_auth, dead_letters, invalidate_cache
        )

    @app.get("/internal/cache", response_model=CacheStats, tags=["internal"])
    async def cache_stats() -> CacheStats:
        return cache.stats()

    payouts = add_payout_routes(app, clients, runner, settings.payouts)
    return app


def _to_milliseconds(value: timedelta) -> timedelta:
    return timedelta(milliseconds=round(value / timedelta(milliseconds=1)))


def _account_out(
    row: AccountRow,
    read_timestamp: str,
    consistency: Consistency,
    bound: timedelta | None,
    served_by: str,
    cache_age: str | None = None,
) -> Response:
    """The read as JSON, serialized once by pydantic-core: the hot path of the load lab skips
    FastAPI's re-validation of the returned model (the route still documents ``AccountOut``)."""
    out = AccountOut.model_validate(
        {
            "account": row.account,
            "owner": row.owner,
            "balance_cents": row.balance_cents,
            "version": row.version,
            "updated_at": rfc3339(row.updated_at),
            "read_timestamp": read_timestamp,
            "consistency": consistency,
            "staleness": format_duration(bound) if bound is not None else None,
            "served_by": served_by,
            "cache_age": cache_age,
            "last_writer": row.last_writer,
        }
    )
    return Response(out.model_dump_json(), media_type="application/json")
