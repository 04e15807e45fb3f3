"""The environment contract: where Google Cloud resources are and where local state lives,
read once from an environment mapping.

Built on ``starlette.config.Config`` (a missing key raises "Config 'X' is missing, and has no
default."). Each service composes :class:`GcpSettings` into its own frozen settings object and
reads it once at start-up; tests pass an explicit mapping instead of patching ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from starlette.config import Config

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY

T = TypeVar("T")
DEFAULT_TASKS_LOCATION = "us-central1"


def resource_environment(project: T, tasks_location: T | str) -> dict[str, T | str]:
    """The variables that tell every service where its resources are: what
    :meth:`GcpSettings.from_config` reads. The emulator manager sets them for the local stack
    and the Pulumi program for each Cloud Run service (``project`` may be a Pulumi output)."""
    return {
        "GOOGLE_CLOUD_PROJECT": project,
        "CAPLAB_SPANNER_INSTANCE": TOPOLOGY.spanner.instance,
        "CAPLAB_SPANNER_DATABASE": TOPOLOGY.spanner.database,
        "CAPLAB_BIGTABLE_INSTANCE": TOPOLOGY.bigtable.instance,
        "CAPLAB_TASKS_LOCATION": tasks_location,
    }


def default_home(environ: Mapping[str, str]) -> Path:
    """Where caplab keeps local state (emulator logs, lab runs): ``$CAPLAB_HOME``, else
    ``.caplab/`` in the working directory."""
    override = environ.get("CAPLAB_HOME")
    if override:
        return Path(override)
    return Path.cwd() / ".caplab"


def config_from(environ: Mapping[str, str] | None = None) -> Config:
    """A starlette ``Config`` over ``environ`` (the process environment by default)."""
    return Config(environ=dict(os.environ if environ is None else environ))


@dataclass(frozen=True)
class GcpSettings:
    """Where the Google Cloud resources are. Emulators are chosen only by the standard
    ``*_EMULATOR_HOST`` variables (and ``CLOUD_TASKS_EMULATOR_HOST`` for ours), which the
    client factory honours; nothing else in the services branches on being local."""

    project: str
    spanner_instance: str
    spanner_database: str
    bigtable_instance: str
    tasks_location: str
    cloud_tasks_emulator_host: str | None
    spanner_database_role: str | None = None
    """The Spanner database role the service's sessions use (fine-grained access control,
    ``CAPLAB_SPANNER_DATABASE_ROLE``): set per service by the Pulumi program; unset locally,
    where the emulator has no roles."""
    spanner_replica_emulator_host: str | None = None
    """Emulator address for stale reads only (the load lab's "replica link", a proxy it can
    partition separately from the leader link). Unset — always, in the cloud — stale reads use
    the one Spanner client, and Spanner itself routes them to the nearest replica."""

    @classmethod
    def from_config(cls, config: Config) -> GcpSettings:
        return cls(
            project=config("GOOGLE_CLOUD_PROJECT", default=LOCAL_PROJECT),
            spanner_instance=config("CAPLAB_SPANNER_INSTANCE", default=TOPOLOGY.spanner.instance),
            spanner_database=config("CAPLAB_SPANNER_DATABASE", default=TOPOLOGY.spanner.database),
            bigtable_instance=config(
                "CAPLAB_BIGTABLE_INSTANCE", default=TOPOLOGY.bigtable.instance
            ),
            tasks_location=config("CAPLAB_TASKS_LOCATION", default=DEFAULT_TASKS_LOCATION),
            cloud_tasks_emulator_host=config("CLOUD_TASKS_EMULATOR_HOST", default=None),
            spanner_database_role=config("CAPLAB_SPANNER_DATABASE_ROLE", default=None) or None,
            spanner_replica_emulator_host=config("SPANNER_REPLICA_EMULATOR_HOST", default=None),
        )

    def queue_path(self, queue: str) -> str:
        return f"projects/{self.project}/locations/{self.tasks_location}/queues/{queue}"

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"
