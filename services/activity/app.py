"""The activity service: projects ``transfer-events`` into Bigtable and serves the feed.

- ``POST /pubsub/transfer-events``: push endpoint of subscription ``activity-projector``
  (answers per :mod:`services.shared.pubsub_push`).
- ``GET /v1/accounts/{account}/activity?limit=&page_token=&consistency=``: the account's
  activity newest first; ``consistency`` picks the Bigtable app profile of the read:
  ``eventual`` (multi-cluster routing: any cluster answers, possibly behind) or
  ``read-your-writes`` (single-cluster routing). The emulator accepts and ignores app
  profiles: locally both read the one copy there is.

Writes go through the same app profile as read-your-writes reads (``CAPLAB_ACTIVITY_APP_PROFILE``,
the topology's single-cluster profile unless set): with two replicated clusters, a write
routed to the other cluster would not be visible to a read on the home cluster until
replication caught up. Eventual reads may be served by either cluster, so they can miss
writes not yet replicated there; Bigtable replication is eventually consistent and gives no
bound on that delay (https://cloud.google.com/bigtable/docs/replication-overview).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from caplab.core import rowkey
from caplab.core.clients import ClientFactory
from caplab.core.durations import parse_duration
from caplab.core.environment import GcpSettings, config_from
from caplab.core.topology import TOPOLOGY
from services.activity import projection
from services.shared.app import create_app as create_service_app
from services.shared.deadline import run_with_deadline
from services.shared.events import TransferCommitted
from services.shared.fields import ACCOUNT_ID_PATTERN
from services.shared.oidc import OidcVerifier
from services.shared.problems import invalid_field
from services.shared.pubsub_push import DeadLetters, PushMessage, consume

if TYPE_CHECKING:
    from google.cloud.bigtable.table import Table

SUBSCRIPTION = TOPOLOGY.subscription("activity-projector")
Consistency = Literal["eventual", "read-your-writes"]


@dataclass(frozen=True)
class ActivitySettings:
    gcp: GcpSettings
    push_auth: OidcVerifier
    deadline: timedelta
    """Bound on each Bigtable call a request makes (past it: 503 + Retry-After, and Pub/Sub
    redelivers a push)."""
    app_profile: str
    """The app profile of writes and of read-your-writes reads."""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> ActivitySettings:
        config = config_from(environ)
        return cls(
            gcp=GcpSettings.from_config(config),
            push_auth=OidcVerifier.from_config(config, "CAPLAB_PUSH"),
            deadline=config("CAPLAB_ACTIVITY_DEADLINE", cast=parse_duration, default="5s"),
            app_profile=config(
                "CAPLAB_ACTIVITY_APP_PROFILE",
                default=TOPOLOGY.bigtable.app_profiles["read-your-writes"],
            ),
        )


def tables(clients: ClientFactory, settings: ActivitySettings) -> tuple[Table, dict[str, Table]]:
    """The table the projection writes through, and the table each consistency reads
    through: read-your-writes reads use the writer's own app profile."""
    writer = clients.bigtable_table(projection.TABLE, app_profile_id=settings.app_profile)
    eventual = TOPOLOGY.bigtable.app_profiles["eventual"]
    readers = {
        "eventual": clients.bigtable_table(projection.TABLE, app_profile_id=eventual),
        "read-your-writes": writer,
    }
    return writer, readers


def create_app(settings: ActivitySettings | None = None) -> FastAPI:
    settings = settings or ActivitySettings.from_environ()
    clients = ClientFactory(settings.gcp)
    deadline = settings.deadline.total_seconds()
    dead_letters = DeadLetters(clients.publisher, settings.gcp, deadline)
    writer, readers = tables(clients, settings)
    app = create_service_app(
        "caplab activity",
        project=settings.gcp.project,
        readiness=lambda: list(writer.read_rows(limit=1)),
    )

    async def project(event: TransferCommitted, message: PushMessage) -> None:
        await run_with_deadline(deadline, projection.project, writer, event)

    @app.post(SUBSCRIPTION.path, status_code=204)
    async def on_transfer_event(request: Request) -> Response:
        return await consume(request, SUBSCRIPTION, settings.push_auth, dead_letters, project)

    @app.get("/v1/accounts/{account}/activity")
    async def activity(
        account: Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)],
        limit: Annotated[int, Query(ge=1, le=projection.MAX_PAGE_SIZE)] = 20,
        page_token: Annotated[str | None, Query(max_length=512)] = None,
        consistency: Consistency = "eventual",
    ) -> Response:
        try:
            page = await run_with_deadline(
                deadline, projection.read_feed, readers[consistency], account, limit, page_token
            )
        except rowkey.InvalidKeyPart as error:
            field = "query.page_token" if "page_token" in str(error) else "path.account"
            raise invalid_field(field, str(error)) from error
        return JSONResponse(page.as_json())

    return app
