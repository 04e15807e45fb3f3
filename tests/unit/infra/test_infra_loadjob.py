"""The load lab's Cloud Run Job under Pulumi's mocks, and the policy pack on it: 20 tasks of
``caplab load`` in the service image, its own identity that may invoke exactly the ledger and
the activity service and create (never read or delete) objects in its private bucket; the
invokers the stack names may read the shards; careless variants are refused."""

from __future__ import annotations

from typing import Any

import pytest

from infra.offline import MockedStack, registry_image, run_program
from tests.unit.infra.test_infra_policies import added, edited, failing_policies, violations

JOB = "gcp:cloudrunv2/job:Job"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
DIGEST = "sha256:" + "1" * 64
IMAGE = f"us-central1-docker.pkg.dev/caplab-dev-000000/caplab/services@{DIGEST}"
OPERATOR = "user:tester@example.com"


@pytest.fixture(scope="module")
def deployed() -> MockedStack:
    """The dev stack once ``services:dev`` is built, with one operator."""
    built = registry_image("caplab-dev-000000", "us-central1", ["dev"], DIGEST)
    return run_program("dev", {"caplab:invokers": f'["{OPERATOR}"]'}, images=[built])


def job_of(mocked: MockedStack) -> dict[str, Any]:
    return dict(mocked.named(JOB, "load").inputs)


def job_member(mocked: MockedStack) -> str:
    account = job_of(mocked)["template"]["template"]["serviceAccount"]
    return f"serviceAccount:{account}"


def test_the_job_runs_twenty_caplab_load_tasks_of_the_service_image(deployed: MockedStack) -> None:
    job = job_of(deployed)
    template = job["template"]
    assert (job["name"], template["taskCount"], template["parallelism"]) == ("caplab-load", 20, 20)
    assert template["template"]["maxRetries"] == 0
    container = template["template"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["args"] == ["load"]
    env = {item["name"]: item["value"] for item in container["envs"]}
    urls = deployed.exports["service_urls"]
    project = deployed.exports["lab_environment"]["GOOGLE_CLOUD_PROJECT"]
    assert env == {
        "CAPLAB_LOAD_TARGET": urls["ledger"],
        "CAPLAB_LOAD_ACTIVITY_URL": urls["activity"],
        "CAPLAB_LOAD_SHARD_OUT": f"gs://{project}-caplab-load",
        "CAPLAB_LOAD_CLOCK": "ledger",
    }
    assert deployed.exports["load_shards"] == env["CAPLAB_LOAD_SHARD_OUT"]


def test_before_the_first_build_the_job_keeps_the_placeholder_image_command(
    mocked: MockedStack,
) -> None:
    container = job_of(mocked)["template"]["template"]["containers"][0]
    assert container.get("args") is None


def test_the_job_identity_may_invoke_the_ledger_and_activity_and_only_write_shards(
    deployed: MockedStack,
) -> None:
    """Every grant naming the job's account anywhere in the stack: run.invoker on two
    services, objectCreator on its bucket; nothing else."""
    me = job_member(deployed)
    assert me.startswith("serviceAccount:caplab-load-job@")
    grants = {
        (r.type.rsplit(":", 1)[-1], str(r.inputs.get("name") or r.inputs.get("bucket")),
         r.inputs["role"])
        for r in deployed.resources
        if r.inputs.get("member") == me
    }  # fmt: skip
    project = deployed.exports["lab_environment"]["GOOGLE_CLOUD_PROJECT"]
    assert grants == {
        ("ServiceIamMember", "caplab-ledger", "roles/run.invoker"),
        ("ServiceIamMember", "caplab-activity", "roles/run.invoker"),
        ("BucketIAMMember", f"{project}-caplab-load", "roles/storage.objectCreator"),
    }


def test_the_shard_bucket_is_private_and_forgets(deployed: MockedStack) -> None:
    bucket = deployed.named(BUCKET, "load-shards").inputs
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    (rule,) = bucket["lifecycleRules"]
    assert rule["action"]["type"] == "Delete"
    assert rule["condition"]["age"] == 30


def test_operators_may_read_the_shards_there_only(deployed: MockedStack) -> None:
    """Besides invoking the external services, the stack's invokers get one grant: reading
    the shard bucket."""
    mine = {
        (r.type, r.inputs["role"], r.inputs.get("bucket"))
        for r in deployed.resources
        if r.inputs.get("member") == OPERATOR and r.type != RUN_INVOKER
    }
    assert mine == {(BUCKET_GRANT, "roles/storage.objectViewer", "caplab-dev-000000-caplab-load")}


def test_both_stacks_with_the_job_pass_the_policy_pack(
    mocked: MockedStack, deployed: MockedStack
) -> None:
    assert violations(mocked) == []
    assert violations(deployed) == []


@pytest.mark.parametrize(
    "account",
    [
        "",
        "123456789012-compute@developer.gserviceaccount.com",
        "caplab-ledger@x.iam.gserviceaccount.com",
    ],
    ids=["none", "default-compute", "shared-with-ledger"],
)
def test_the_job_must_run_as_its_own_account(deployed: MockedStack, account: str) -> None:
    project = deployed.exports["lab_environment"]["GOOGLE_CLOUD_PROJECT"]
    account = account.replace("@x.", f"@{project}.")
    bad = edited(
        deployed,
        JOB,
        "load",
        lambda props: props["template"]["template"].update(serviceAccount=account),
    )
    assert failing_policies(violations(deployed, bad)) == {"dedicated-service-accounts"}


def test_a_public_or_project_wide_shard_grant_is_refused(deployed: MockedStack) -> None:
    public = edited(deployed, BUCKET_GRANT, "load-writes-shards",
                    lambda props: props.update(member="allUsers"))  # fmt: skip
    assert failing_policies(violations(deployed, public)) == {"no-public-invoker"}
    project_wide = added(
        deployed,
        "gcp:projects/iAMMember:IAMMember",
        "load-storage-everywhere",
        {"project": "p", "role": "roles/storage.objectAdmin", "member": job_member(deployed)},
    )
    assert failing_policies(violations(deployed, project_wide)) == {"resource-scoped-roles"}
