"""caplab's policy rules: what the program must never declare.

Resource rules read a resource's inputs; stack rules read every resource's outputs (so they
can join an IAM grant to the service it names). Property names are the engine's camelCase.

- ``no-public-invoker``: no ``allUsers``/``allAuthenticatedUsers`` on anything, except the
  Cloud Run invoker of the one service labelled public (the ledger API, when
  ``caplab:publicApi`` says so); no service bypasses invoker IAM.
- ``dedicated-service-accounts``: every Cloud Run service and job runs as its own service
  account, never the default compute (or App Engine) one.
- ``resource-scoped-roles``: no project-, folder- or organization-level IAM at all, and no
  basic role (owner, editor, viewer) on any resource.
- ``oidc-everywhere``: every push subscription and every task queue attaches an OIDC token.
- ``prod-deletion-protection``: in prod, Spanner databases, Bigtable instances and Cloud Run
  services are protected against deletion.
- ``subscriptions-never-expire``: every Pub/Sub subscription has an expiration policy with an
  empty TTL (Pub/Sub otherwise deletes a subscription idle for 31 days).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
PUBLIC_LABEL = "caplab-public-api"
RUN_SERVICE = "gcp:cloudrunv2/service:Service"
RUN_JOB = "gcp:cloudrunv2/job:Job"
RUN_INVOKER_GRANTS = frozenset(
    {
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
    }
)
HIERARCHY_IAM_PREFIXES = ("gcp:projects/", "gcp:folder/", "gcp:organizations/")
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
DEFAULT_ACCOUNT_SUFFIXES = (
    "-compute@developer.gserviceaccount.com",
    "@appspot.gserviceaccount.com",
)
PROTECTED_STACKS = frozenset({"prod"})
PROTECTED_TYPES = frozenset(
    {"gcp:spanner/database:Database", "gcp:bigtable/instance:Instance", RUN_SERVICE}
)


def is_iam_grant(resource_type: str) -> bool:
    """IAM members, bindings and policies of any resource (``...IamMember``, ``iAMBinding``...)."""
    kind = resource_type.rsplit(":", 1)[-1].lower()
    return kind.endswith(("iammember", "iambinding", "iampolicy"))


def grants(props: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(role, member) pairs an IAM member, binding or policy resource grants."""
    if "member" in props:
        yield str(props.get("role", "")), str(props["member"])
    for member in props.get("members") or []:
        yield str(props.get("role", "")), str(member)
    if props.get("policyData"):
        for binding in json.loads(props["policyData"]).get("bindings", []):
            for member in binding.get("members", []):
                yield str(binding.get("role", "")), str(member)


def _validate_public_invokers(args: StackValidationArgs, report: ReportViolation) -> None:
    services = {
        str(r.props.get("name")): r for r in args.resources if r.resource_type == RUN_SERVICE
    }
    public = [
        r for r in services.values() if (r.props.get("labels") or {}).get(PUBLIC_LABEL) == "true"
    ]
    if len(public) > 1:
        report(f"{len(public)} services are labelled {PUBLIC_LABEL}; at most one may be", None)
    for service in services.values():
        if service.props.get("invokerIamDisabled") and service not in public:
            report("invoker IAM check disabled on a service not declared public", service.urn)
    for resource in args.resources:
        if not is_iam_grant(resource.resource_type):
            continue
        for role, member in grants(resource.props):
            if member not in PUBLIC_MEMBERS:
                continue
            target = services.get(str(resource.props.get("name")))
            allowed = (
                resource.resource_type in RUN_INVOKER_GRANTS
                and role == "roles/run.invoker"
                and target is not None
                and target in public
            )
            if not allowed:
                report(f"{member} granted {role} outside the declared public API", resource.urn)


def _run_account(resource: Any) -> str:
    """The service account a Cloud Run service, or each task of a Cloud Run job, runs as."""
    template = resource.props.get("template") or {}
    if resource.resource_type == RUN_JOB:
        template = template.get("template") or {}
    return str(template.get("serviceAccount") or "")


def _validate_service_accounts(args: StackValidationArgs, report: ReportViolation) -> None:
    accounts: Counter[str] = Counter()
    services = [r for r in args.resources if r.resource_type in (RUN_SERVICE, RUN_JOB)]
    for service in services:
        account = _run_account(service)
        if not account:
            report("no service account: Cloud Run would use the default compute one", service.urn)
        elif account.endswith(DEFAULT_ACCOUNT_SUFFIXES):
            report(f"runs as the default service account {account}", service.urn)
        accounts[account] += 1
    for service in services:
        account = _run_account(service)
        if account and accounts[account] > 1:
            report(
                f"service account {account} is shared by {accounts[account]} services", service.urn
            )


def _validate_scoped_roles(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_iam_grant(args.resource_type):
        return
    if args.resource_type.startswith(HIERARCHY_IAM_PREFIXES):
        report(
            "IAM granted on the whole project, folder or organization; grant on the resource", None
        )
        return
    for role, member in grants(args.props):
        if role in BASIC_ROLES:
            report(f"basic role {role} granted to {member}; grant a predefined role", None)


def _validate_oidc(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == "gcp:pubsub/subscription:Subscription":
        push = args.props.get("pushConfig")
        if push and not (push.get("oidcToken") or {}).get("serviceAccountEmail"):
            report("push subscription without an OIDC token", None)
    elif args.resource_type == "gcp:cloudtasks/queue:Queue":
        target = args.props.get("httpTarget") or {}
        if not (target.get("oidcToken") or {}).get("serviceAccountEmail"):
            report("queue without a queue-level OIDC token for its HTTP tasks", None)


def _validate_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if pulumi.get_stack() not in PROTECTED_STACKS or args.resource_type not in PROTECTED_TYPES:
        return
    if args.props.get("deletionProtection") is not True:
        report(f"deletionProtection must be true in {pulumi.get_stack()}", None)


def _validate_expiration(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "gcp:pubsub/subscription:Subscription":
        return
    if (args.props.get("expirationPolicy") or {}).get("ttl") != "":
        report('subscription expires when idle: set expiration_policy ttl to ""', None)


POLICIES: list[Policy] = [
    StackValidationPolicy(
        name="no-public-invoker",
        description="Only the declared public API may grant allUsers/allAuthenticatedUsers.",
        validate=_validate_public_invokers,
    ),
    StackValidationPolicy(
        name="dedicated-service-accounts",
        description="Each Cloud Run service and job runs as its own, non-default service account.",
        validate=_validate_service_accounts,
    ),
    ResourceValidationPolicy(
        name="resource-scoped-roles",
        description="IAM only on specific resources, never project-wide, never basic roles.",
        validate=_validate_scoped_roles,
    ),
    ResourceValidationPolicy(
        name="oidc-everywhere",
        description="Every push subscription and every task queue authenticates with OIDC.",
        validate=_validate_oidc,
    ),
    ResourceValidationPolicy(
        name="subscriptions-never-expire",
        description="Pub/Sub subscriptions never expire for inactivity.",
        validate=_validate_expiration,
    ),
    ResourceValidationPolicy(
        name="prod-deletion-protection",
        description="Spanner, Bigtable and Cloud Run are protected against deletion in prod.",
        validate=_validate_deletion_protection,
    ),
]
"""The pack's rules, all mandatory (see ``__main__.py``)."""
