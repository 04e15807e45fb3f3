"""What `pulumi preview` and `gcloud builds submit` check before the program or the first
step runs, applied to the real ``infra/Pulumi.yaml``, ``infra/Pulumi.<stack>.yaml`` and
``cloudbuild.yaml`` (rules and their sources: ``tests/fixtures/infra_rules.py``). Each rule
is also run on a bad case, with the message the Pulumi CLI's own tests expect."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pulumi_gcp.config
import pytest
import yaml

from infra.offline import PROGRAM_DIR
from tests.fixtures import infra_rules as rules
from tests.fixtures.infra_image import ROOT

STACKS = ("dev", "prod")
CLOUDBUILD = ROOT / "cloudbuild.yaml"
DOCUMENTED_SUBMIT = {"_STACK": "dev", "_REGION": "us-central1", "_PULUMI_BACKEND": "gs://state"}
"""The substitutions docs/deploying.md passes to ``gcloud builds submit``."""


@pytest.fixture(scope="module")
def gcp_keys() -> set[str]:
    return rules.provider_config_keys(pulumi_gcp.config)


def project() -> tuple[str, dict]:
    return rules.project_document(PROGRAM_DIR / "Pulumi.yaml")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_project_file_passes_the_cli_validation() -> None:
    """``Pulumi.yaml`` breaks none of ``Project.Validate``'s rules."""
    name, config = project()
    assert name == "caplab"
    assert rules.project_errors(name, config) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_sets_every_key_without_a_default(stack: str) -> None:
    """The CLI refuses a stack that lacks a declared key with neither default nor value."""
    name, config = project()
    values = rules.stack_values(PROGRAM_DIR / f"Pulumi.{stack}.yaml")
    assert rules.stack_errors(stack, name, config, values) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_key_is_known(stack: str, gcp_keys: set[str]) -> None:
    """``gcp:`` keys are keys the gcp provider reads; ``caplab:`` keys are declared."""
    name, config = project()
    values = rules.stack_values(PROGRAM_DIR / f"Pulumi.{stack}.yaml")
    assert {"project", "region"} <= gcp_keys
    assert rules.unknown_keys(name, config, values, {"gcp": gcp_keys}) == []


def test_missing_keys_are_refused_together_as_the_cli_does(tmp_path: Path) -> None:
    """Two typed keys without a default and a stack that sets neither: one error naming
    both (the CLI's TestStackConfigErrorsWhenMissingTwoStackValueForConfigTypeWithNoDefault)."""
    project_file = write(
        tmp_path,
        "Pulumi.yaml",
        "name: test\nruntime: python\nconfig:\n  another:\n    type: string\n"
        "  values:\n    type: array\n    items:\n      type: string\n  fine:\n    type: string\n"
        "    default: x\n",
    )
    name, config = rules.project_document(project_file)
    values = rules.stack_values(write(tmp_path, "Pulumi.dev.yaml", "config: {}\n"))
    assert rules.stack_errors("dev", name, config, values) == [
        "Stack 'dev' is missing configuration values 'another' and 'values'"
    ]


@pytest.mark.parametrize(
    ("declared", "stack_line", "message"),
    [
        ("type: integer", "test:n: hello", "must be of type 'integer'"),
        ("type: boolean", "test:n: maybe", "must be of type 'boolean'"),
        ("type: array\n    items:\n      type: string", "test:n: someValue", "'array<string>'"),
        ("type: array\n    items:\n      type: integer", "test:n: [1, x]", "'array<integer>'"),
        ("type: string", "test:n: [a]", "must be of type 'string'"),
    ],
)
def test_values_of_the_wrong_type_are_refused(
    tmp_path: Path, declared: str, stack_line: str, message: str
) -> None:
    """Typed keys are checked as the CLI checks them (TestStackConfigIntegerTypeIsCorrectly
    Validated, TestStackConfigErrorsWhenStackValueIsNotCorrectlyTyped)."""
    project_file = write(tmp_path, "Pulumi.yaml", f"name: test\nconfig:\n  n:\n    {declared}\n")
    name, config = rules.project_document(project_file)
    values = rules.stack_values(write(tmp_path, "Pulumi.dev.yaml", f"config:\n  {stack_line}\n"))
    (error,) = rules.stack_errors("dev", name, config, values)
    assert error.startswith("Stack 'dev' with configuration key 'n' ")
    assert message in error


def test_scalars_reach_the_type_check_as_text(tmp_path: Path) -> None:
    """``20`` is an integer, ``true`` a boolean, ``[1, 2]`` an array of integers: what the
    stack files use passes."""
    project_file = write(
        tmp_path,
        "Pulumi.yaml",
        "name: test\nconfig:\n  i: {type: integer}\n  b: {type: boolean}\n"
        "  a: {type: array, items: {type: integer}}\n",
    )
    name, config = rules.project_document(project_file)
    stack = write(
        tmp_path, "Pulumi.dev.yaml", "config:\n  test:i: 20\n  test:b: true\n  test:a: [1, 2]\n"
    )
    assert rules.stack_errors("dev", name, config, rules.stack_values(stack)) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("gcp:region:\n    type: string\n    value: x", "should not define a type"),
        ("gcp:region:\n    default: x", "should not define a default value"),
        ("zones:\n    type: array\n    default: [a]", "does not specify the underlying type"),
        ("n:\n    type: integer\n    default: hello", "is not of the expected type 'integer'"),
    ],
)
def test_project_file_mistakes_are_refused(tmp_path: Path, entry: str, message: str) -> None:
    """TestNamespacedProjectConfigShouldNotBeExplicitlyTyped, ...ShouldNotBeProvideDefault,
    TestProjectConfigCannotBeTypedArrayWithoutItems and a mistyped default."""
    name, config = rules.project_document(
        write(tmp_path, "Pulumi.yaml", f"name: test\nconfig:\n  {entry}\n")
    )
    (error,) = rules.project_errors(name, config)
    assert message in error


def test_unknown_namespaced_keys_are_refused(tmp_path: Path, gcp_keys: set[str]) -> None:
    """A misspelled provider key, an undeclared project key and a namespace nobody reads."""
    name, config = rules.project_document(
        write(tmp_path, "Pulumi.yaml", "name: test\nconfig:\n  size: {type: integer}\n")
    )
    values = rules.stack_values(
        write(
            tmp_path,
            "Pulumi.dev.yaml",
            "config:\n  gcp:projct: p\n  gcp:project: p\n  test:size: 1\n  test:sise: 1\n"
            "  aws:region: x\n",
        )
    )
    assert rules.unknown_keys(name, config, values, {"gcp": gcp_keys}) == [
        "gcp:projct",
        "test:sise",
        "aws:region",
    ]


def cloudbuild() -> dict:
    return yaml.safe_load(CLOUDBUILD.read_text())


def test_gcloud_builds_submit_produces_valid_image_references() -> None:
    """The documented ``gcloud builds submit`` (no trigger: SHORT_SHA and the other trigger
    variables are empty) names only images docker accepts, and the build pushes to the
    program's repository."""
    build = rules.submit(cloudbuild(), DOCUMENTED_SUBMIT, project="my-project").document
    references = rules.image_references(build)
    pushed = [ref for where, ref in references if "builder" not in where]
    assert pushed, references
    assert [(w, r) for w, r in references if not rules.is_image_reference(r)] == []
    from infra.components.registry import IMAGE_NAME, REPOSITORY_ID

    repository = f"us-central1-docker.pkg.dev/my-project/{REPOSITORY_ID}/{IMAGE_NAME}"
    assert {ref.split("@")[0].rsplit(":", 1)[0] for ref in pushed} == {repository}
    # The tag the stack's program resolves (``ImageRepository.deployed(<stack>)``) moves.
    assert f"{repository}:dev" in pushed


def test_an_empty_trigger_variable_makes_an_invalid_reference() -> None:
    """The check has teeth: a tag from ``$SHORT_SHA`` is empty outside a trigger, and docker
    refuses ``name:``; the same build started by a trigger would pass."""
    broken = {
        "substitutions": {"_IMAGE": "us-docker.pkg.dev/${PROJECT_ID}/r/services"},
        "options": {"dynamicSubstitutions": True},
        "steps": [
            {
                "name": "gcr.io/cloud-builders/docker",
                "args": ["build", "-t", "${_IMAGE}:${SHORT_SHA}", "."],
            }
        ],
    }
    references = rules.image_references(rules.submit(broken, {}).document)
    assert references[1] == ("step 0", "us-docker.pkg.dev/my-project/r/services:")
    assert not rules.is_image_reference(references[1][1])


@pytest.mark.parametrize(
    ("reference", "valid"),
    [
        ("us-central1-docker.pkg.dev/p/caplab/services:dev", True),
        ("us-central1-docker.pkg.dev/p/caplab/services@sha256:" + "a" * 64, True),
        ("gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators", True),
        ("pulumi/pulumi-python:3.200.0", True),
        ("localhost:5000/a/b:t", True),
        ("us-central1-docker.pkg.dev/p/caplab/services:", False),
        ("us-central1-docker.pkg.dev/p/Caplab/services:dev", False),
        ("services:-dev", False),
        ("services@sha256:abc", False),
        ("a" * 256, False),
    ],
)
def test_the_reference_grammar_is_dockers(reference: str, valid: bool) -> None:
    """distribution/reference: lower-case repository paths, tags of [A-Za-z0-9_.-] not
    starting with . or -, digests of at least 32 hex digits, names up to 255 characters."""
    assert rules.is_image_reference(reference) is valid


def test_substitutions_are_strict_as_cloud_build_is() -> None:
    """An undefined ``$_NAME`` and a defined-but-unused one each fail the build; ``$$``
    escapes a dollar."""
    step = {"name": "bash", "args": ["-c", "echo $$HOME ${_UNDEFINED}"]}
    with pytest.raises(rules.SubstitutionError, match="_UNDEFINED"):
        rules.submit({"steps": [step]}, {})
    with pytest.raises(rules.SubstitutionError, match="_UNUSED"):
        rules.submit({"steps": [{"name": "bash", "args": ["-c", "echo $$HOME"]}]}, {"_UNUSED": "x"})
    ok = rules.submit({"steps": [{"name": "bash", "args": ["-c", "echo $$HOME $BUILD_ID"]}]}, {})
    assert ok.document["steps"][0]["args"][1].startswith("echo $HOME 0b9a6f5e-")


def _deploy_script(project: str) -> str:
    build = rules.submit(cloudbuild(), DOCUMENTED_SUBMIT, project=project).document
    (deploy,) = [step for step in build["steps"] if step.get("id") == "deploy"]
    assert deploy["args"][0] == "-c"
    return deploy["args"][1]


@pytest.mark.parametrize(
    ("stack_project", "stack_region", "deploys"),
    [("my-project", "us-central1", True), ("caplab-dev-000000", "us-central1", False)],
    ids=["matching-stack", "stack-of-another-project"],
)
def test_the_deploy_step_updates_only_a_stack_of_the_build_s_project(
    tmp_path: Path, stack_project: str, stack_region: str, deploys: bool
) -> None:
    """The deploy step's script, as Cloud Build would run it, with stand-ins for ``python``,
    ``pip`` and ``pulumi`` on the PATH: it runs ``pulumi up`` only when the stack's
    ``gcp:project`` and ``gcp:region`` are the build's."""
    bin_dir = tmp_path / "bin"
    workdir = tmp_path / "repo" / "infra"
    for folder in (bin_dir, workdir, tmp_path / "repo" / ".venv" / "bin"):
        folder.mkdir(parents=True)
    calls = tmp_path / "calls"
    fakes = {
        bin_dir / "python": "exit 0",
        tmp_path / "repo" / ".venv" / "bin" / "pip": "exit 0",
        bin_dir / "pulumi": (
            f'echo "$*" >> {calls}\n'
            'if [ "$1 $2" = "config get" ]; then\n'
            f'  case "$3" in gcp:project) echo {stack_project};; gcp:region) echo {stack_region};;'
            " esac\nfi"
        ),
    }
    for path, body in fakes.items():
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    result = subprocess.run(
        ["bash", "-c", _deploy_script("my-project")],
        cwd=workdir,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ran = calls.read_text().splitlines()
    assert ran[:2] == ["login gs://state", "stack select dev"]
    assert (result.returncode == 0) is deploys
    assert ("up --yes --policy-pack policies" in ran) is deploys
    if not deploys:
        assert "has gcp:project=caplab-dev-000000; this build is for my-project" in result.stderr
