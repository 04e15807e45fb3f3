"""The activity read model's Bigtable instance: clusters, app profiles, tables, GC rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from caplab.core.topology import BigtableInstance, GcRule

USER_ROLE = "roles/bigtable.user"

ROUTING_MULTI = "multi-cluster"
ROUTING_SINGLE = "single-cluster"


@dataclass
class ActivityStoreArgs:
    project: pulumi.Input[str]
    declared: BigtableInstance
    zones: Sequence[str]
    """One zone: one cluster. Two zones: two clusters, replicated (eventually consistent)."""
    nodes_per_cluster: int
    deletion_protection: bool
    users: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """IAM members granted ``bigtable.user`` on this instance only."""


def gc_policy_args(
    rule: GcRule,
    project: pulumi.Input[str],
    instance_name: pulumi.Input[str],
    table: pulumi.Input[str],
    family: str,
) -> gcp.bigtable.GCPolicyArgs:
    """The GCPolicy expressing ``rule`` on one column family (union when both limits are
    set)."""
    if rule.max_versions is None and rule.max_age_seconds is None:
        raise ValueError(f"the GC rule of column family {family!r} sets no limit")
    both = rule.max_versions is not None and rule.max_age_seconds is not None
    return gcp.bigtable.GCPolicyArgs(
        project=project,
        instance_name=instance_name,
        table=table,
        column_family=family,
        max_versions=None
        if rule.max_versions is None
        else [gcp.bigtable.GCPolicyMaxVersionArgs(number=rule.max_versions)],
        max_age=None
        if rule.max_age_seconds is None
        else gcp.bigtable.GCPolicyMaxAgeArgs(duration=f"{rule.max_age_seconds}s"),
        mode="UNION" if both else None,
        # A replicated instance refuses to drop a GC policy; deleting the table removes it.
        deletion_policy="ABANDON",
    )


class ActivityStore(pulumi.ComponentResource):
    """The instance, its app profiles (one per read consistency the topology names), its
    tables and their column families with GC rules."""

    def __init__(
        self, name: str, args: ActivityStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:ActivityStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        declared = args.declared
        cluster_ids = [f"{declared.instance}-c{index + 1}" for index in range(len(args.zones))]
        self.instance = gcp.bigtable.Instance(
            name,
            gcp.bigtable.InstanceArgs(
                project=args.project,
                name=declared.instance,
                display_name=declared.instance,
                clusters=[
                    gcp.bigtable.InstanceClusterArgs(
                        cluster_id=cluster_id,
                        zone=zone,
                        num_nodes=args.nodes_per_cluster,
                        storage_type="SSD",
                    )
                    for cluster_id, zone in zip(cluster_ids, args.zones, strict=True)
                ],
                deletion_protection=args.deletion_protection,
            ),
            child,
        )
        self.app_profiles = [
            self._app_profile(name, consistency, profile_id, cluster_ids[0], args.project)
            for consistency, profile_id in declared.app_profiles.items()
        ]
        self.tables = {
            table.name: gcp.bigtable.Table(
                f"{name}-{table.name}",
                gcp.bigtable.TableArgs(
                    project=args.project,
                    instance_name=self.instance.name,
                    name=table.name,
                    column_families=[
                        gcp.bigtable.TableColumnFamilyArgs(family=family)
                        for family in table.column_families
                    ],
                    deletion_protection="PROTECTED" if args.deletion_protection else "UNPROTECTED",
                ),
                child,
            )
            for table in declared.tables
        }
        self.gc_policies = [
            gcp.bigtable.GCPolicy(
                f"{name}-{table.name}-{family}",
                gc_policy_args(
                    rule, args.project, self.instance.name, self.tables[table.name].name, family
                ),
                child,
            )
            for table in declared.tables
            for family, rule in table.column_families.items()
        ]
        self.grants = [
            gcp.bigtable.InstanceIamMember(
                f"{name}-user-{index}",
                gcp.bigtable.InstanceIamMemberArgs(
                    project=args.project, instance=self.instance.name, role=USER_ROLE, member=member
                ),
                child,
            )
            for index, member in enumerate(args.users)
        ]
        self.register_outputs(
            {"instance": self.instance.name, "tables": [t.name for t in self.tables.values()]}
        )

    def _app_profile(
        self,
        name: str,
        consistency: str,
        profile_id: str,
        home_cluster: str,
        project: pulumi.Input[str],
    ) -> gcp.bigtable.AppProfile:
        """The profile's id names its routing. Multi-cluster: any cluster answers (available,
        eventually consistent). Single-cluster: one home cluster (read-your-writes,
        transactional writes)."""
        if profile_id not in (ROUTING_MULTI, ROUTING_SINGLE):
            raise ValueError(f"app profile {profile_id!r} names no routing ({consistency} reads)")
        multi = profile_id == ROUTING_MULTI
        return gcp.bigtable.AppProfile(
            f"{name}-{profile_id}",
            gcp.bigtable.AppProfileArgs(
                project=project,
                instance=self.instance.name,
                app_profile_id=profile_id,
                description=f"{consistency} reads",
                multi_cluster_routing_use_any=True if multi else None,
                single_cluster_routing=None
                if multi
                else gcp.bigtable.AppProfileSingleClusterRoutingArgs(
                    cluster_id=home_cluster, allow_transactional_writes=True
                ),
                # Multi-cluster routing over a one-cluster (dev) instance is legal but warned.
                ignore_warnings=True,
            ),
            pulumi.ResourceOptions(parent=self),
        )
