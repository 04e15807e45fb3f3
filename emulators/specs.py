"""What each emulator is: its ports, how to launch it, the variable that points clients at it,
and the functional probe that says it is ready.

Adding an emulator (as the Cloud Tasks one was) means adding one :class:`EmulatorSpec` to
:data:`EMULATORS`; ``caplab emulators up|down|status|env|logs`` need no change.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from emulators import bootstrap, sdk


@dataclass(frozen=True)
class PortSpec:
    key: str
    purpose: str
    default: int

    @property
    def env(self) -> str:
        """Environment variable overriding this port, e.g. ``CAPLAB_SPANNER_REST_PORT``."""
        return f"CAPLAB_{self.key.upper().replace('-', '_')}_PORT"

    @property
    def flag(self) -> str:
        """Command-line flag overriding this port, e.g. ``--spanner-rest-port``."""
        return f"--{self.key}-port"


@dataclass(frozen=True)
class Launch:
    """What a command builder gets: the resolved host, ports and environment."""

    host: str
    ports: Mapping[str, int]
    environ: Mapping[str, str]


@dataclass(frozen=True)
class EmulatorSpec:
    name: str
    ports: tuple[PortSpec, ...]
    host_variable: str
    command: Callable[[Launch], list[str]]
    probe: Callable[[], None]
    """Raises while the emulator is not serving; called with ``host_variable`` exported."""
    bootstrap: Callable[[Mapping[str, str] | None], object]
    """Creates the topology's part held by this emulator (given the services' base URLs)."""
    environment: Callable[[str, Mapping[str, int]], dict[str, str]] | None = None
    """Variables beyond ``host_variable`` that clients need (given host and ports)."""

    @property
    def main_port(self) -> PortSpec:
        return self.ports[0]


def _spanner_command(launch: Launch) -> list[str]:
    root = sdk.sdk_root(launch.environ)
    return [
        str(sdk.binary(root, "spanner")),
        f"--grpc_binary={sdk.binary(root, 'spanner-grpc')}",
        f"--hostname={launch.host}",
        f"--grpc_port={launch.ports['spanner']}",
        f"--http_port={launch.ports['spanner-rest']}",
    ]


def _pubsub_command(launch: Launch) -> list[str]:
    root = sdk.sdk_root(launch.environ)
    executable = sdk.binary(root, "pubsub")
    sdk.require_java(launch.environ)
    return [str(executable), f"--host={launch.host}", f"--port={launch.ports['pubsub']}"]


def _bigtable_command(launch: Launch) -> list[str]:
    root = sdk.sdk_root(launch.environ)
    return [
        str(sdk.binary(root, "bigtable")),
        f"-host={launch.host}",
        f"-port={launch.ports['bigtable']}",
    ]


def _cloudtasks_command(launch: Launch) -> list[str]:
    """Our own emulator, run by this interpreter (the project is installed in it)."""
    return [
        sys.executable,
        "-m",
        "emulators.cloudtasks",
        f"--host={launch.host}",
        f"--port={launch.ports['tasks']}",
        f"--oidc-port={launch.ports['tasks-oidc']}",
        f"--project={LOCAL_PROJECT}",
    ]


def _probe_spanner() -> None:
    """Creates the instance if needed and runs ``SELECT 1`` on the topology's database
    (creating it with the topology's DDL if needed): the probe is the bootstrap's first step."""
    database = bootstrap.ensure_spanner()
    with database.snapshot() as snapshot:
        rows = list(snapshot.execute_sql("SELECT 1"))
    if rows != [[1]]:
        raise RuntimeError(f"SELECT 1 returned {rows!r}")


def _probe_pubsub() -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    list(publisher.list_topics(request={"project": f"projects/{LOCAL_PROJECT}"}, timeout=2))


def _probe_bigtable() -> None:
    from google.cloud import bigtable

    client = bigtable.Client(project=LOCAL_PROJECT, admin=True)
    client.instance(TOPOLOGY.bigtable.instance).list_tables()


def _tasks_environment(host: str, ports: Mapping[str, int]) -> dict[str, str]:
    """Where handlers find the OIDC discovery document and JWKS that verify task tokens."""
    return {"CLOUD_TASKS_OIDC_ISSUER": f"http://{host}:{ports['tasks-oidc']}"}


def _probe_tasks() -> None:
    from caplab.core.clients import build_tasks_client

    with build_tasks_client(os.environ["CLOUD_TASKS_EMULATOR_HOST"]) as client:
        list(client.list_queues(parent=bootstrap.tasks_location_path(LOCAL_PROJECT), timeout=2))


SPANNER = EmulatorSpec(
    name="spanner",
    ports=(
        PortSpec("spanner", "Spanner gRPC", 9010),
        PortSpec("spanner-rest", "Spanner REST", 9020),
    ),
    host_variable="SPANNER_EMULATOR_HOST",
    command=_spanner_command,
    probe=_probe_spanner,
    bootstrap=bootstrap.ensure_spanner,
)
PUBSUB = EmulatorSpec(
    name="pubsub",
    ports=(PortSpec("pubsub", "Pub/Sub", 8085),),
    host_variable="PUBSUB_EMULATOR_HOST",
    command=_pubsub_command,
    probe=_probe_pubsub,
    bootstrap=bootstrap.ensure_pubsub,
)
BIGTABLE = EmulatorSpec(
    name="bigtable",
    ports=(PortSpec("bigtable", "Bigtable", 8086),),
    host_variable="BIGTABLE_EMULATOR_HOST",
    command=_bigtable_command,
    probe=_probe_bigtable,
    bootstrap=bootstrap.ensure_bigtable,
)

CLOUD_TASKS = EmulatorSpec(
    name="tasks",
    ports=(
        PortSpec("tasks", "Cloud Tasks gRPC", 8123),
        PortSpec("tasks-oidc", "Cloud Tasks OIDC discovery and JWKS", 8124),
    ),
    host_variable="CLOUD_TASKS_EMULATOR_HOST",
    command=_cloudtasks_command,
    probe=_probe_tasks,
    bootstrap=bootstrap.ensure_tasks,
    environment=_tasks_environment,
)

EMULATORS: tuple[EmulatorSpec, ...] = (SPANNER, PUBSUB, BIGTABLE, CLOUD_TASKS)
"""Every emulator ``caplab emulators up`` starts, in start order."""


def by_name(name: str) -> EmulatorSpec:
    return next(spec for spec in EMULATORS if spec.name == name)
