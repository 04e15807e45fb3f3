"""What a project and its deployer need before ``pulumi up`` and ``gcloud builds submit``:
the APIs, and the IAM permissions each kind of resource the program declares costs.

Plain data, importable without Pulumi: ``caplab deploy check`` (``infra.deploy_check``) asks
Google Cloud which of these are missing, and a test keeps the table complete: every resource
type and data source the program uses (both stacks, under mocks) has its row, and no row is
left that the program no longer uses. A new kind of resource therefore fails that test until
its permissions are written here.

Permissions are what the check tests; the role next to each group is one predefined role
that grants them (broader than needed), to say what to grant. ``iam.serviceAccounts.actAs``
is needed on accounts the program creates itself (Cloud Run runs as them, push
subscriptions and queues mint tokens as them), so it can only be granted on the project.
"""

from __future__ import annotations

from dataclasses import dataclass

BOOTSTRAP_APIS = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com")
"""On before the first ``pulumi up``: enabling every other API goes through Service Usage,
and the program (and this check) read the project through Resource Manager."""

REQUIRED_APIS = (
    "artifactregistry.googleapis.com",
    "bigtable.googleapis.com",
    "bigtableadmin.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudtasks.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "spanner.googleapis.com",
    "storage.googleapis.com",
)
"""Enabled by the program itself (``gcp.projects.Service``), before anything else it
creates. Cloud Build, Secret Manager (the Pulumi passphrase) and Artifact Registry are among
them: the first ``pulumi up`` readies the project for ``gcloud builds submit``."""

BUILD_APIS = (
    "cloudbuild.googleapis.com",
    "secretmanager.googleapis.com",
    "artifactregistry.googleapis.com",
)
"""On before ``gcloud builds submit`` (the first ``pulumi up`` enables them)."""


@dataclass(frozen=True)
class Needs:
    """Permissions on the project that one kind of resource (or data source) costs."""

    permissions: tuple[str, ...]
    role: str
    what: str


def _crud(prefix: str, *extra: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{verb}" for verb in ("create", "get", "update", "delete")) + extra


_IAM_POLICY = ("getIamPolicy", "setIamPolicy")
ACT_AS = "iam.serviceAccounts.actAs"
ROLE_OF = {ACT_AS: "roles/iam.serviceAccountUser"}
"""Permissions granted by another role than the rest of their group."""


def role_for(permission: str, needs: Needs) -> str:
    """A predefined role that grants ``permission``."""
    return ROLE_OF.get(permission, needs.role)


RESOURCES: dict[str, Needs] = {
    "gcp:projects/service:Service": Needs(
        ("serviceusage.services.enable", "serviceusage.services.get", "serviceusage.services.list"),
        "roles/serviceusage.serviceUsageAdmin",
        "enable the APIs",
    ),
    "gcp:projects/serviceIdentity:ServiceIdentity": Needs(
        ("serviceusage.services.generateServiceIdentity",),
        "roles/serviceusage.serviceUsageAdmin",
        "create the Pub/Sub service agent on a new project",
    ),
    "gcp:serviceaccount/account:Account": Needs(
        _crud("iam.serviceAccounts"), "roles/iam.serviceAccountAdmin", "service accounts"
    ),
    "gcp:serviceaccount/iAMMember:IAMMember": Needs(
        tuple(f"iam.serviceAccounts.{verb}" for verb in _IAM_POLICY),
        "roles/iam.serviceAccountAdmin",
        "who may act as or mint tokens for the accounts",
    ),
    "gcp:artifactregistry/repository:Repository": Needs(
        _crud("artifactregistry.repositories"),
        "roles/artifactregistry.admin",
        "the image repository",
    ),
    "gcp:cloudrunv2/service:Service": Needs(
        (*_crud("run.services"), "run.operations.get", ACT_AS),
        "roles/run.admin",
        "Cloud Run services, each running as its own account",
    ),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": Needs(
        tuple(f"run.services.{verb}" for verb in _IAM_POLICY), "roles/run.admin", "invokers"
    ),
    "gcp:cloudrunv2/job:Job": Needs(
        (*_crud("run.jobs"), "run.operations.get", ACT_AS),
        "roles/run.admin",
        "the load lab's Cloud Run Job, running as its own account",
    ),
    "gcp:storage/bucket:Bucket": Needs(
        tuple(f"storage.buckets.{verb}" for verb in ("create", "get", "update", "delete")),
        "roles/storage.admin",
        "the load job's shard bucket",
    ),
    "gcp:storage/bucketIAMMember:BucketIAMMember": Needs(
        tuple(f"storage.buckets.{verb}" for verb in _IAM_POLICY),
        "roles/storage.admin",
        "who may write and read shards",
    ),
    "gcp:pubsub/topic:Topic": Needs(_crud("pubsub.topics"), "roles/pubsub.admin", "topics"),
    "gcp:pubsub/topicIAMMember:TopicIAMMember": Needs(
        tuple(f"pubsub.topics.{verb}" for verb in _IAM_POLICY),
        "roles/pubsub.admin",
        "publishers",
    ),
    "gcp:pubsub/subscription:Subscription": Needs(
        (*_crud("pubsub.subscriptions"), "pubsub.topics.attachSubscription", ACT_AS),
        "roles/pubsub.admin",
        "push subscriptions whose OIDC tokens name the push identities",
    ),
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": Needs(
        tuple(f"pubsub.subscriptions.{verb}" for verb in _IAM_POLICY),
        "roles/pubsub.admin",
        "the service agent's acknowledgements when dead-lettering",
    ),
    "gcp:spanner/instance:Instance": Needs(
        (*_crud("spanner.instances"), "spanner.instanceOperations.get"),
        "roles/spanner.admin",
        "the Spanner instance",
    ),
    "gcp:spanner/database:Database": Needs(
        (
            "spanner.databases.create",
            "spanner.databases.get",
            "spanner.databases.getDdl",
            "spanner.databases.updateDdl",
            "spanner.databases.update",
            "spanner.databases.drop",
            "spanner.databaseOperations.get",
        ),
        "roles/spanner.admin",
        "the database and its migrations",
    ),
    "gcp:spanner/databaseIAMMember:DatabaseIAMMember": Needs(
        tuple(f"spanner.databases.{verb}" for verb in _IAM_POLICY),
        "roles/spanner.admin",
        "database users",
    ),
    "gcp:bigtable/instance:Instance": Needs(
        (*_crud("bigtable.instances"), *_crud("bigtable.clusters"), "bigtable.clusters.list"),
        "roles/bigtable.admin",
        "the Bigtable instance and its clusters",
    ),
    "gcp:bigtable/appProfile:AppProfile": Needs(
        _crud("bigtable.appProfiles"), "roles/bigtable.admin", "app profiles"
    ),
    "gcp:bigtable/table:Table": Needs(_crud("bigtable.tables"), "roles/bigtable.admin", "tables"),
    "gcp:bigtable/gCPolicy:GCPolicy": Needs(
        ("bigtable.tables.get", "bigtable.tables.update"),
        "roles/bigtable.admin",
        "column-family GC rules",
    ),
    "gcp:bigtable/instanceIamMember:InstanceIamMember": Needs(
        tuple(f"bigtable.instances.{verb}" for verb in _IAM_POLICY),
        "roles/bigtable.admin",
        "instance users",
    ),
    "gcp:cloudtasks/queue:Queue": Needs(
        (*_crud("cloudtasks.queues"), ACT_AS),
        "roles/cloudtasks.admin",
        "queues whose OIDC tokens name the tasks identities",
    ),
    "gcp:cloudtasks/queueIamMember:QueueIamMember": Needs(
        tuple(f"cloudtasks.queues.{verb}" for verb in _IAM_POLICY),
        "roles/cloudtasks.admin",
        "enqueuers",
    ),
}
"""Resource type -> what creating, reading, updating and deleting it costs."""

DATA_SOURCES: dict[str, Needs] = {
    "gcp:organizations/getProject:getProject": Needs(
        ("resourcemanager.projects.get",), "roles/browser", "the project number"
    ),
    "gcp:artifactregistry/getDockerImages:getDockerImages": Needs(
        ("artifactregistry.dockerimages.list",),
        "roles/artifactregistry.reader",
        "the digest the stack's tag points to",
    ),
}
"""Data source (invoke) -> what reading it costs."""

BUILD: dict[str, Needs] = {
    "push": Needs(
        (
            "artifactregistry.repositories.uploadArtifacts",
            "artifactregistry.repositories.downloadArtifacts",
        ),
        "roles/artifactregistry.writer",
        "push the image and move the stack's tag",
    ),
    "passphrase": Needs(
        ("secretmanager.versions.access",),
        "roles/secretmanager.secretAccessor",
        "read the Pulumi passphrase secret",
    ),
    "logs": Needs(("logging.logEntries.create",), "roles/logging.logWriter", "write build logs"),
}
"""What ``cloudbuild.yaml`` needs beyond ``pulumi up``'s permissions."""

STATE_BUCKET = Needs(
    tuple(f"storage.objects.{verb}" for verb in ("create", "get", "list", "delete")),
    "roles/storage.objectAdmin",
    "read and write the Pulumi state",
)
"""On the ``gs://`` state bucket (granted on the bucket, checked there)."""


def project_needs(build: bool = False) -> dict[str, Needs]:
    """Every group of project permissions ``pulumi up`` needs (and the build's, with
    ``build``), keyed by resource type, data source or build step."""
    return RESOURCES | DATA_SOURCES | (BUILD if build else {})


def permissions(needs: dict[str, Needs]) -> tuple[str, ...]:
    """The distinct permissions of ``needs``, sorted."""
    return tuple(sorted({p for group in needs.values() for p in group.permissions}))
