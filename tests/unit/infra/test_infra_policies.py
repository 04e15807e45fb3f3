"""The policy pack against the mocked stacks: both pass, and each rule catches a bad variant.

Variants are made either through the program itself (a stack configuration) or by editing
the recorded resources the way a careless change to the program would.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from infra.offline import MockedStack, Recorded, Violation, check_policies, run_program
from infra.policies.rules import POLICIES

RUN = "gcp:cloudrunv2/service:Service"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"


def violations(mocked: MockedStack, resources: list[Recorded] | None = None) -> list[Violation]:
    return check_policies(
        mocked.stack, mocked.resources if resources is None else resources, POLICIES
    )


def edited(
    mocked: MockedStack, token: str, name: str, change: Callable[[dict[str, Any]], None]
) -> list[Recorded]:
    """The stack's resources with ``change`` applied to one resource's inputs and outputs."""
    result = []
    for resource in mocked.resources:
        if resource.type == token and resource.name == name:
            inputs, outputs = (
                copy.deepcopy(dict(resource.inputs)),
                copy.deepcopy(dict(resource.outputs)),
            )
            change(inputs)
            change(outputs)
            resource = dataclasses.replace(resource, inputs=inputs, outputs=outputs)
        result.append(resource)
    return result


def added(mocked: MockedStack, token: str, name: str, props: dict[str, Any]) -> list[Recorded]:
    urn = f"urn:pulumi:{mocked.stack}::caplab::{token}::{name}"
    return [*mocked.resources, Recorded(token, name, urn, props, props)]


def failing_policies(found: list[Violation]) -> set[str]:
    return {violation.policy for violation in found}


def test_both_stacks_pass_every_policy(mocked: MockedStack) -> None:
    """The program as configured for dev and prod violates nothing."""
    assert len(POLICIES) == 6
    assert violations(mocked) == []


def test_public_invoker_on_another_service_is_refused(mocked: MockedStack) -> None:
    """allUsers may invoke only the service labelled public, never e.g. the notifier."""
    bad = added(
        mocked,
        RUN_INVOKER,
        "notifier-invoker-public",
        {"name": "caplab-notifier", "role": "roles/run.invoker", "member": "allUsers"},
    )
    assert failing_policies(violations(mocked, bad)) == {"no-public-invoker"}


def test_public_ledger_without_the_flag_is_refused(mocked_stacks: dict[str, MockedStack]) -> None:
    """In dev the ledger is public by configuration; drop the label and the same allUsers
    grant becomes a violation."""
    dev = mocked_stacks["dev"]
    bad = edited(dev, RUN, "ledger", lambda props: props["labels"].pop("caplab-public-api"))
    found = violations(dev, bad)
    assert failing_policies(found) == {"no-public-invoker"}
    assert any("allUsers" in v.message for v in found)


def test_bypassing_invoker_iam_is_refused(mocked: MockedStack) -> None:
    """A service with invoker IAM disabled is public in all but name."""
    bad = edited(mocked, RUN, "activity", lambda props: props.update(invokerIamDisabled=True))
    assert failing_policies(violations(mocked, bad)) == {"no-public-invoker"}


@pytest.mark.parametrize(
    "account",
    [
        "",
        "123456789012-compute@developer.gserviceaccount.com",
        "caplab-ledger@x.iam.gserviceaccount.com",
    ],
    ids=["none", "default-compute", "shared-with-ledger"],
)
def test_service_accounts_must_be_dedicated(mocked: MockedStack, account: str) -> None:
    """No account (the default compute one), the default compute account, or another
    service's account: each is refused."""
    project = mocked.exports["lab_environment"]["GOOGLE_CLOUD_PROJECT"]
    account = account.replace("@x.", f"@{project}.")
    bad = edited(
        mocked, RUN, "activity", lambda props: props["template"].update(serviceAccount=account)
    )
    assert failing_policies(violations(mocked, bad)) == {"dedicated-service-accounts"}


def test_project_wide_grants_are_refused(mocked: MockedStack) -> None:
    """Any project-level IAM member, whatever the role, is refused."""
    bad = added(
        mocked,
        "gcp:projects/iAMMember:IAMMember",
        "relay-spanner-everything",
        {"project": "p", "role": "roles/spanner.databaseUser", "member": "serviceAccount:x@p.iam"},
    )
    assert failing_policies(violations(mocked, bad)) == {"resource-scoped-roles"}


def test_basic_roles_on_a_resource_are_refused(mocked: MockedStack) -> None:
    """roles/editor, even on a single topic, is refused."""
    bad = edited(
        mocked,
        "gcp:pubsub/topicIAMMember:TopicIAMMember",
        "transfer-events-publisher-0",
        lambda props: props.update(role="roles/editor"),
    )
    assert failing_policies(violations(mocked, bad)) == {"resource-scoped-roles"}


def test_push_subscription_without_oidc_is_refused(mocked: MockedStack) -> None:
    """A push subscription must attach an OIDC token."""
    bad = edited(
        mocked,
        "gcp:pubsub/subscription:Subscription",
        "notifier",
        lambda props: props["pushConfig"].pop("oidcToken"),
    )
    assert failing_policies(violations(mocked, bad)) == {"oidc-everywhere"}


@pytest.mark.parametrize("name", ["notifier", "notifier-dead-letter"])
def test_an_expiring_subscription_is_refused(mocked: MockedStack, name: str) -> None:
    """A push subscription or a dead-letter hold without the empty TTL is refused."""
    bad = edited(
        mocked,
        "gcp:pubsub/subscription:Subscription",
        name,
        lambda props: props.pop("expirationPolicy"),
    )
    assert failing_policies(violations(mocked, bad)) == {"subscriptions-never-expire"}


def test_queue_without_oidc_is_refused(mocked: MockedStack) -> None:
    """A queue must set the OIDC token of its HTTP tasks."""
    bad = edited(
        mocked, "gcp:cloudtasks/queue:Queue", "webhooks", lambda props: props.pop("httpTarget")
    )
    assert failing_policies(violations(mocked, bad)) == {"oidc-everywhere"}


def test_prod_without_deletion_protection_is_refused() -> None:
    """Prod configured without deletion protection fails on Spanner, Bigtable and every
    Cloud Run service; the same configuration passes in dev."""
    prod = run_program("prod", {"caplab:deletionProtection": "false"})
    found = violations(prod)
    assert failing_policies(found) == {"prod-deletion-protection"}
    flagged = {v.resource.rsplit("::", 2)[-2].rsplit("$", 1)[-1] for v in found}
    assert flagged == {
        "gcp:spanner/database:Database",
        "gcp:bigtable/instance:Instance",
        "gcp:cloudrunv2/service:Service",
    }
    assert len(found) == 2 + 4
    dev = run_program("dev", {"caplab:deletionProtection": "false"})
    assert violations(dev) == []
