"""The ledger's Spanner instance and database, with the topology's DDL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from caplab.core.topology import SpannerDatabase

DATABASE_USER_ROLE = "roles/spanner.databaseUser"


@dataclass
class LedgerDatabaseArgs:
    project: pulumi.Input[str]
    declared: SpannerDatabase
    instance_config: pulumi.Input[str]
    """``regional-<region>`` (one region, zone-redundant) or a multi-region config."""
    processing_units: pulumi.Input[int]
    edition: pulumi.Input[str]
    deletion_protection: bool
    users: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """IAM members granted ``spanner.databaseUser`` on this database only."""


class LedgerDatabase(pulumi.ComponentResource):
    """Instance + database. Deletion protection switches both Pulumi's guard and Spanner's own
    drop protection, so one config flip (then ``pulumi up``) is all a teardown needs."""

    def __init__(
        self, name: str, args: LedgerDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:LedgerDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.instance = gcp.spanner.Instance(
            name,
            gcp.spanner.InstanceArgs(
                project=args.project,
                name=args.declared.instance,
                display_name=args.declared.instance,
                config=args.instance_config,
                processing_units=args.processing_units,
                edition=args.edition,
            ),
            child,
        )
        self.database = gcp.spanner.Database(
            name,
            gcp.spanner.DatabaseArgs(
                project=args.project,
                instance=self.instance.name,
                name=args.declared.database,
                ddls=list(args.declared.ddl),
                version_retention_period=args.declared.version_retention,
                deletion_protection=args.deletion_protection,
                enable_drop_protection=args.deletion_protection,
            ),
            child,
        )
        self.grants = [
            gcp.spanner.DatabaseIAMMember(
                f"{name}-user-{index}",
                gcp.spanner.DatabaseIAMMemberArgs(
                    project=args.project,
                    instance=self.instance.name,
                    database=self.database.name,
                    role=DATABASE_USER_ROLE,
                    member=member,
                ),
                child,
            )
            for index, member in enumerate(args.users)
        ]
        self.register_outputs({"instance": self.instance.name, "database": self.database.name})
