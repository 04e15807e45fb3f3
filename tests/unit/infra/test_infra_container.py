"""The Dockerfile and cloudbuild.yaml: linted, schema-checked, and consistent with the
program and the service registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from jsonschema import Draft7Validator

from caplab.core import catalogue
from tests.fixtures.infra_image import DOCKERFILE, ROOT, command, environment, instructions

HADOLINT = Path(sys.executable).with_name("hadolint")
CLOUDBUILD = ROOT / "cloudbuild.yaml"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, check=False
    )


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing to report in the Dockerfile."""
    result = hadolint(DOCKERFILE)
    assert (result.returncode, result.stdout) == (0, "")


def test_hadolint_flags_a_careless_dockerfile(tmp_path: Path) -> None:
    """The lint has teeth: a floating base tag, unpinned pip install and a shell-form CMD are
    each reported."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install fastapi\nCMD caplab service ledger\n")
    result = hadolint(careless)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3025"):
        assert rule in result.stdout


def test_image_runs_unprivileged_with_unbuffered_output_on_port() -> None:
    """Slim base, non-root user, PYTHONUNBUFFERED and a default $PORT; the locked
    dependencies, with no extra but the load generator's (the Cloud Run Job), are installed
    before the code is copied."""
    steps = instructions()
    assert steps[0][0] == "FROM"
    assert "-slim" in steps[0][1]
    assert environment()["PYTHONUNBUFFERED"] == "1"
    assert environment()["PORT"] == "8080"
    user = [arguments for instruction, arguments in steps if instruction == "USER"]
    assert user
    assert user[-1] not in ("root", "0")
    order = [f"{i} {a}" for i, a in steps]
    first_code_copy = next(n for n, s in enumerate(order) if s.startswith("COPY caplab"))
    dependencies = next(n for n, s in enumerate(order) if "--no-install-project" in s)
    assert dependencies < first_code_copy
    installs = [s for s in order if s.startswith("RUN") and "uv sync" in s]
    assert installs
    assert all("--locked" in s and "--no-dev" in s for s in installs)
    extras = {e for s in installs for e in re.findall(r"--extra[ =](\S+)", s)}
    assert extras == {"loadgen"}


def test_one_image_serves_every_deployed_service() -> None:
    """The image's command is ``caplab service <name>``; every deployed service is one the
    command knows, and only local-only services are left out of the cloud."""
    assert command()[:2] == ["caplab", "service"]
    assert command()[2] in catalogue.NAMES
    deployed = {service.name for service in catalogue.DEPLOYED}
    assert deployed == set(catalogue.NAMES) - catalogue.LOCAL_ONLY


def test_cloudbuild_matches_the_cloud_build_schema() -> None:
    """cloudbuild.yaml validates against the Cloud Build schema check-jsonschema ships."""
    document = yaml.safe_load(CLOUDBUILD.read_text())
    errors = list(Draft7Validator(get_builtin_schema("vendor.cloudbuild")).iter_errors(document))
    assert errors == []
    assert [step["id"] for step in document["steps"]] == ["test", "build", "push", "deploy"]
    assert "--policy-pack" in document["steps"][-1]["args"][-1]


def test_schema_rejects_a_malformed_build() -> None:
    """The schema has teeth: a misspelled step key and arguments given as one string are
    refused."""
    broken = {
        "steps": [
            {"name": "gcr.io/cloud-builders/docker", "arg": ["build", "."]},
            {"name": "gcr.io/cloud-builders/docker", "args": "build ."},
        ]
    }
    errors = list(Draft7Validator(get_builtin_schema("vendor.cloudbuild")).iter_errors(broken))
    messages = " ".join(error.message for error in errors)
    assert "'arg' was unexpected" in messages
    assert "'build .' is not of type 'array'" in messages
