"""The ledger's Spanner instance and database, with the topology's DDL, and least-privilege
access for the services: fine-grained access control.

No service gets ``roles/spanner.databaseUser`` (read-write on every table, and DDL). Each gets
``roles/spanner.fineGrainedAccessUser`` on the database (it may connect, with no privilege of
its own) and ``roles/spanner.databaseRoleUser`` limited by an IAM condition to its one
database role, whose privileges the DDL grants (``CREATE ROLE``/``GRANT`` in the topology).
See https://cloud.google.com/spanner/docs/fgac-about and
https://cloud.google.com/spanner/docs/configure-fgac.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from caplab.core.topology import SpannerDatabase

FINE_GRAINED_ACCESS_USER = "roles/spanner.fineGrainedAccessUser"
DATABASE_ROLE_USER = "roles/spanner.databaseRoleUser"


def role_condition(role: str) -> str:
    """The IAM condition that limits ``databaseRoleUser`` to the database role ``role``."""
    return (
        'resource.type == "spanner.googleapis.com/DatabaseRole" && '
        f'resource.name.endsWith("/databaseRoles/{role}")'
    )


@dataclass
class LedgerDatabaseArgs:
    project: pulumi.Input[str]
    declared: SpannerDatabase
    instance_config: pulumi.Input[str]
    """``regional-<region>`` (one region, zone-redundant) or a multi-region config."""
    processing_units: pulumi.Input[int]
    edition: pulumi.Input[str]
    deletion_protection: bool
    role_users: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Database role -> the IAM member that uses it (each service's account)."""


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
        self.grants: list[gcp.spanner.DatabaseIAMMember] = []
        for role, member in args.role_users.items():
            for suffix, iam_role, condition in (
                ("fgac", FINE_GRAINED_ACCESS_USER, None),
                (
                    "role",
                    DATABASE_ROLE_USER,
                    gcp.spanner.DatabaseIAMMemberConditionArgs(
                        title=f"database role {role} only", expression=role_condition(role)
                    ),
                ),
            ):
                self.grants.append(
                    gcp.spanner.DatabaseIAMMember(
                        f"{name}-{role}-{suffix}",
                        gcp.spanner.DatabaseIAMMemberArgs(
                            project=args.project,
                            instance=self.instance.name,
                            database=self.database.name,
                            role=iam_role,
                            member=member,
                            condition=condition,
                        ),
                        child,
                    )
                )
        self.register_outputs({"instance": self.instance.name, "database": self.database.name})
