"""The stack's configuration, read once into a typed object.

Every key is documented in ``Pulumi.yaml`` and set per stack in ``Pulumi.<stack>.yaml``; the
program reads nothing else. A missing required key fails with its name (Pulumi's
``ConfigMissingError``), before any resource is declared.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

PLACEHOLDER_IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
"""Google's public sample container (serves on ``$PORT``): runs until the stack's image tag
exists (``infra.components.registry``), so the first ``pulumi up`` can create every service
before Cloud Build has pushed caplab's own image."""


@dataclass(frozen=True)
class StackSettings:
    """What differs between stacks (dev, prod). Names of resources never do: they come from
    the topology."""

    project: str
    region: str
    spanner_config: str
    """``regional-<region>`` for dev, a multi-region configuration (e.g. ``nam3``) for prod."""
    spanner_processing_units: int
    spanner_edition: str
    """STANDARD covers regional configurations; multi-region ones need ENTERPRISE_PLUS."""
    bigtable_zones: tuple[str, ...]
    """One zone: one cluster. Two zones: two clusters with replication between them."""
    bigtable_nodes: int
    min_instances: int
    max_instances: int
    deletion_protection: bool
    public_api: bool
    """Whether the ledger API accepts unauthenticated callers (``allUsers`` invoker)."""
    invokers: tuple[str, ...]
    """Extra IAM members (e.g. ``user:you@example.com``) allowed to call the ledger and
    activity APIs, e.g. to run the load lab against the cloud."""

    @classmethod
    def from_config(cls, config: pulumi.Config, gcp: pulumi.Config) -> StackSettings:
        """Read the ``caplab:*`` keys from ``config`` and project/region from ``gcp:*``."""
        zones = config.require_object("bigtableZones")
        if not isinstance(zones, list) or not 1 <= len(zones) <= 2:
            raise ValueError("caplab:bigtableZones must list one or two zones")
        invokers = config.get_object("invokers")
        if not isinstance(invokers, list):
            raise ValueError("caplab:invokers must be a list of IAM members")
        settings = cls(
            project=gcp.require("project"),
            region=gcp.require("region"),
            spanner_config=config.require("spannerConfig"),
            spanner_processing_units=config.require_int("spannerProcessingUnits"),
            spanner_edition=config.get("spannerEdition") or "STANDARD",
            bigtable_zones=tuple(str(zone) for zone in zones),
            bigtable_nodes=config.get_int("bigtableNodes") or 1,
            min_instances=config.require_int("minInstances"),
            max_instances=config.require_int("maxInstances"),
            deletion_protection=config.require_bool("deletionProtection"),
            public_api=config.get_bool("publicApi") or False,
            invokers=tuple(str(member) for member in invokers),
        )
        regional = settings.spanner_config.startswith("regional-")
        if not regional and settings.spanner_edition != "ENTERPRISE_PLUS":
            raise ValueError(
                f"caplab:spannerConfig {settings.spanner_config} is not regional: it needs "
                "caplab:spannerEdition ENTERPRISE_PLUS"
            )
        if settings.min_instances > settings.max_instances:
            raise ValueError("caplab:minInstances exceeds caplab:maxInstances")
        return settings
