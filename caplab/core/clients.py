"""The one factory that builds every Google Cloud client caplab uses.

Spanner, Pub/Sub and Bigtable clients switch to their emulators through the standard
``*_EMULATOR_HOST`` variables, which the official libraries read themselves. Cloud Tasks has
no official emulator and its Python client reads no such variable, so this is the one place
that builds a ``CloudTasksClient`` over an insecure channel when ``CLOUD_TASKS_EMULATOR_HOST``
is set (the library otherwise always builds a TLS channel).

Clients are created lazily and cached per factory: one factory per process, passed to the
handlers, so tests can hand in a factory of their own.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import TYPE_CHECKING

from caplab.core.environment import GcpSettings

if TYPE_CHECKING:
    from google.cloud import bigtable, pubsub_v1, spanner, storage, tasks_v2
    from google.cloud.bigtable.table import Table
    from google.cloud.spanner_v1.database import Database


class ClientFactory:
    def __init__(self, settings: GcpSettings) -> None:
        self.settings = settings

    @functools.cached_property
    def spanner(self) -> spanner.Client:
        from google.cloud import spanner

        return spanner.Client(project=self.settings.project)

    @functools.cached_property
    def spanner_database(self) -> Database:
        instance = self.spanner.instance(self.settings.spanner_instance)
        return instance.database(self.settings.spanner_database)

    @functools.cached_property
    def spanner_replica_database(self) -> Database:
        """The database as stale reads reach it: the same client unless a replica emulator
        address is configured, which gets a client of its own (built with the standard
        ``SPANNER_EMULATOR_HOST`` pointing there; the library reads it once, at construction)."""
        replica_host = self.settings.spanner_replica_emulator_host
        if not replica_host:
            return self.spanner_database
        from google.cloud import spanner

        saved = os.environ.get("SPANNER_EMULATOR_HOST")
        os.environ["SPANNER_EMULATOR_HOST"] = replica_host
        try:
            client = spanner.Client(project=self.settings.project)
        finally:
            if saved is None:
                del os.environ["SPANNER_EMULATOR_HOST"]
            else:
                os.environ["SPANNER_EMULATOR_HOST"] = saved
        instance = client.instance(self.settings.spanner_instance)
        return instance.database(self.settings.spanner_database)

    @functools.cached_property
    def publisher(self) -> pubsub_v1.PublisherClient:
        from google.cloud import pubsub_v1

        return pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
        )

    @functools.cached_property
    def bigtable(self) -> bigtable.Client:
        from google.cloud import bigtable

        return bigtable.Client(project=self.settings.project)

    @functools.cached_property
    def bigtable_admin(self) -> bigtable.Client:
        """A Bigtable client that may also create and delete tables (the row-key lab's own)."""
        from google.cloud import bigtable

        return bigtable.Client(project=self.settings.project, admin=True)

    def bigtable_table(self, table: str, app_profile_id: str | None = None) -> Table:
        instance = self.bigtable.instance(self.settings.bigtable_instance)
        return instance.table(table, app_profile_id=app_profile_id)

    @functools.cached_property
    def tasks(self) -> tasks_v2.CloudTasksClient:
        return build_tasks_client(self.settings.cloud_tasks_emulator_host)


def build_tasks_client(emulator_host: str | None) -> tasks_v2.CloudTasksClient:
    """A ``CloudTasksClient``: over an insecure channel to ``emulator_host`` when given,
    otherwise the normal authenticated client."""
    from google.cloud import tasks_v2

    if not emulator_host:
        return tasks_v2.CloudTasksClient()
    import grpc
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    channel = grpc.insecure_channel(emulator_host)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def build_storage_client() -> storage.Client:
    """A Cloud Storage client with the ambient credentials (the lab's shards; no emulator)."""
    from google.cloud import storage

    return storage.Client()


def quiet_emulator_notices() -> None:
    """The Bigtable client warns on every connection to its emulator: expected locally."""
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
