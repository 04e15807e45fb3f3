"""Run the Pulumi program and its policy pack on this machine, with no CLI and no cloud.

The Pulumi CLI and the provider plugins are what ``pulumi preview`` needs; without them the
program can still run under Pulumi's own mocks (``pulumi.runtime.set_mocks``), which play the
engine: every resource the program declares is recorded with its inputs, exactly as the
engine would hand them to a policy pack (camelCase names, numbers as floats). The policy
pack's validation functions are then called on those records the way the analyzer calls them
(``ResourceValidationArgs`` per resource, ``StackValidationArgs`` for the whole stack).

The monitor also records what each registration waits for (its ``dependsOn`` and property
dependencies), so ordering can be asserted; data sources answer from a fake registry.

What this cannot show: provider-side validation (API rules, quotas, name availability),
defaults the provider fills in, and anything ``pulumi up`` would learn from Google Cloud.

``python -m infra.offline [dev|prod]`` prints the resources and any policy violation.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import yaml
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import reset_options
from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PROGRAM_DIR = Path(__file__).resolve().parent
PROJECT_NAME = "caplab"
MOCK_PROJECT_NUMBER = "123456789012"


@dataclass(frozen=True)
class Recorded:
    """One resource as the engine saw it."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    dependencies: frozenset[str] = frozenset()
    """URNs the registration named as dependencies (explicit and through its inputs)."""


@dataclass
class MockedStack:
    stack: str
    resources: list[Recorded]
    exports: dict[str, Any]
    invokes: list[str] = field(default_factory=list)
    """Data sources the program read (invoke tokens, in order)."""
    parents: dict[str, str] = field(default_factory=dict)
    """URN -> its parent's URN."""
    components: dict[str, frozenset[str]] = field(default_factory=dict)
    """Component URN -> the URNs its registration depended on."""

    def waits_for(self, resource: Recorded) -> set[str]:
        """Every URN the engine finishes before creating ``resource``: its dependencies,
        theirs, and those of its parents (a child registers only once its parent has, and a
        component registers once its own dependencies are done)."""
        by_urn = {r.urn: r.dependencies for r in self.resources} | self.components
        seen: set[str] = set()
        pending = [resource.urn]
        while pending:
            urn = pending.pop()
            following = set(by_urn.get(urn, frozenset()))
            if urn in self.parents:
                following.add(self.parents[urn])
            for dependency in following - seen:
                seen.add(dependency)
                pending.append(dependency)
        return seen

    def of_type(self, token: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == token]

    def named(self, token: str, name: str) -> Recorded:
        """The one resource of type ``token`` whose logical name is ``name``."""
        matches = [r for r in self.of_type(token) if r.name == name]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} resources {token} named {name!r}")
        return matches[0]

    def types(self) -> Counter[str]:
        return Counter(r.type for r in self.resources)


def registry_image(project: str, region: str, tags: Sequence[str], digest: str) -> dict[str, Any]:
    """A ``services`` image as Artifact Registry's ``getDockerImages`` lists it."""
    base = f"{region}-docker.pkg.dev/{project}/caplab/services"
    return {
        "imageName": "services",
        "name": f"projects/{project}/locations/{region}/repositories/caplab/dockerImages/"
        f"services@{digest}",
        "selfLink": f"{base}@{digest}",
        "tags": list(tags),
        "buildTime": "2026-01-01T00:00:00Z",
        "imageSizeBytes": "1000",
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "updateTime": "2026-01-01T00:00:00Z",
        "uploadTime": "2026-01-01T00:00:00Z",
    }


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Answers like the engine: outputs are the inputs plus the few values the provider
    computes that the program reads back (ids, emails, URLs, project number); the image
    repository lists ``images``."""

    project: str
    images: Sequence[Mapping[str, Any]] = ()
    records: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    invokes: list[str] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        name = inputs.get("name", args.name)
        resource_id = f"{args.name}-id"
        if args.typ == "gcp:serviceaccount/account:Account":
            outputs["email"] = f"{inputs['accountId']}@{self.project}.iam.gserviceaccount.com"
            outputs["name"] = f"projects/{self.project}/serviceAccounts/{outputs['email']}"
            resource_id = outputs["name"]
        elif args.typ == "gcp:cloudrunv2/service:Service":
            outputs["uri"] = f"https://{name}-{MOCK_PROJECT_NUMBER}.{inputs['location']}.run.app"
        elif args.typ == "gcp:pubsub/topic:Topic":
            resource_id = f"projects/{self.project}/topics/{name}"
        elif args.typ == "gcp:pubsub/subscription:Subscription":
            resource_id = f"projects/{self.project}/subscriptions/{name}"
        elif args.typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = f"service-{MOCK_PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
            outputs |= {"email": agent, "member": f"serviceAccount:{agent}"}
        outputs["id"] = resource_id
        self.records.append((args.typ, args.name, inputs, outputs))
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.invokes.append(args.token)
        if args.token == "gcp:organizations/getProject:getProject":
            project = args.args.get("projectId", self.project)
            return {"number": MOCK_PROJECT_NUMBER, "projectId": project, "name": project}
        if args.token == "gcp:artifactregistry/getDockerImages:getDockerImages":
            return {
                "dockerImages": [dict(image) for image in self.images],
                "id": f"projects/{self.project}/locations/{args.args['location']}/repositories/"
                f"{args.args['repositoryId']}",
                "location": args.args["location"],
                "project": args.args.get("project", self.project),
                "repositoryId": args.args["repositoryId"],
            }
        raise NotImplementedError(f"no mock for invoke {args.token}")


class RecordingMonitor(MockMonitor):
    """The mock monitor, remembering each registration's parent and dependencies."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[str, frozenset[str]] = {}
        self.parents: dict[str, str] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        through_inputs = {u for deps in request.propertyDependencies.values() for u in deps.urns}
        self.dependencies[response.urn] = frozenset(request.dependencies) | through_inputs
        if request.parent:
            self.parents[response.urn] = request.parent
        return response


def _engine_value(value: Any) -> str:
    """A configuration value as the engine passes it: strings, JSON for lists and objects,
    ``true``/``false`` for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str, program_dir: Path = PROGRAM_DIR) -> dict[str, str]:
    """The configuration the program receives for ``stack``: ``Pulumi.<stack>.yaml``'s
    values, plus the ``default`` (project keys) or ``value`` (other namespaces) that
    ``Pulumi.yaml`` declares for each key the stack leaves unset, as the CLI merges them."""
    document = yaml.safe_load((program_dir / f"Pulumi.{stack}.yaml").read_text())
    values = {key: _engine_value(v) for key, v in (document.get("config") or {}).items()}
    project = yaml.safe_load((program_dir / "Pulumi.yaml").read_text())
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{project['name']}:{key}"
        declared = spec if isinstance(spec, dict) else {"default": spec}
        for attribute in ("default", "value"):
            if full not in values and attribute in declared:
                values[full] = _engine_value(declared[attribute])
    return values


def run_program(
    stack: str,
    overrides: Mapping[str, str | None] | None = None,
    program: Callable[[], object] | None = None,
    images: Sequence[Mapping[str, Any]] = (),
) -> MockedStack:
    """Run the program (``__main__.py`` unless ``program`` is given) for ``stack`` under
    mocks and return every resource once all of them have been registered and every export
    resolved. ``overrides`` replace config values (None removes the key); the image
    repository lists ``images`` (see :func:`registry_image`). An exception anywhere in the
    program, including inside an ``apply``, propagates: nothing is left unawaited to pass
    silently."""
    config = stack_config(stack)
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    project = config["gcp:project"]
    # Pulumi's runtime works on the thread's current event loop; ``asyncio.run`` (used by
    # whatever ran before in this process) leaves the thread with none set.
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = RecordingMocks(project=project, images=images)
    monitor = RecordingMonitor(mocks)
    reset_options(project=PROJECT_NAME, stack=stack)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT_NAME, stack=stack, preview=False, monitor=monitor
    )
    pulumi.runtime.set_all_config(config)
    exports: dict[str, Any] = {}
    run = program or (lambda: runpy.run_path(str(PROGRAM_DIR / "__main__.py"), run_name="__main__"))

    @pulumi.runtime.test
    def execute() -> pulumi.Output[None]:
        run()
        root = pulumi.runtime.get_root_resource()
        outputs = getattr(root, "outputs", {})
        return pulumi.Output.from_input(outputs).apply(exports.update)

    execute()
    urns = {
        (urn.rsplit("::", 1)[-1], urn.split("::")[2].split("$")[-1]): urn
        for urn in monitor.resources
    }
    resources = []
    for typ, name, inputs, outputs in mocks.records:
        urn = urns.get((name, typ), "")
        dependencies = monitor.dependencies.get(urn, frozenset())
        resources.append(Recorded(typ, name, urn, inputs, outputs, dependencies))
    recorded = {r.urn for r in resources}
    components = {u: d for u, d in monitor.dependencies.items() if u not in recorded}
    return MockedStack(
        stack=stack,
        resources=resources,
        exports=exports,
        invokes=list(mocks.invokes),
        parents=dict(monitor.parents),
        components=components,
    )


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    message: str


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def check_policies(
    stack: str,
    resources: Sequence[Recorded],
    policies: Iterable[Policy],
) -> list[Violation]:
    """Every violation ``policies`` report on ``resources`` of ``stack``: resource policies
    see each resource's inputs, stack policies see every resource's outputs, and
    ``pulumi.get_stack()`` answers ``stack`` (as in the analyzer)."""
    reset_options(project=PROJECT_NAME, stack=stack)
    violations: list[Violation] = []

    def reporter(policy: str, where: str) -> Callable[[str, str | None], None]:
        def report(message: str, urn: str | None = None) -> None:
            violations.append(Violation(policy, urn or where, message))

        return report

    for policy in policies:
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(
                    resource.type, resource.inputs, resource.urn, resource.name, _options(), None
                )
                policy.validate(args, reporter(policy.name, resource.urn or resource.name))
        elif isinstance(policy, StackValidationPolicy):
            stack_resources = [
                PolicyResource(r.type, r.outputs, r.urn, r.name, _options(), None, None, [], {})
                for r in resources
            ]
            policy.validate(StackValidationArgs(stack_resources), reporter(policy.name, "stack"))
    return violations


def main(argv: Sequence[str] | None = None) -> int:
    from infra.policies.rules import POLICIES

    stacks = list(argv if argv is not None else sys.argv[1:]) or ["dev", "prod"]
    failed = False
    for stack in stacks:
        mocked = run_program(stack)
        print(f"stack {stack}: {len(mocked.resources)} resources")
        for token, count in sorted(mocked.types().items()):
            print(f"  {count:3d}  {token}")
        violations = check_policies(stack, mocked.resources, POLICIES)
        for violation in violations:
            print(f"  VIOLATION {violation.policy}: {violation.resource}: {violation.message}")
        failed = failed or bool(violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
