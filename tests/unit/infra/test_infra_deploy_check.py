"""``caplab deploy check`` against a fake Google at the HTTP boundary (an
``httpx.MockTransport`` answering Resource Manager, Service Usage and Cloud Storage the way
their REST APIs do; nothing leaves the process), and the permission table against the
program's resources."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
import pytest
from google.oauth2.credentials import Credentials

from infra import deploy_check, deployer
from infra.offline import MockedStack

TOKEN = "test-token"
ALL = set(deployer.permissions(deployer.project_needs(build=True)))


@dataclass
class FakeGoogle:
    """The three REST endpoints the check calls, for one project and one bucket."""

    project: str = "p-1"
    granted: set[str] = field(default_factory=lambda: set(ALL))
    enabled: set[str] = field(default_factory=lambda: set(deployer.BOOTSTRAP_APIS))
    bucket: str = "state-b"
    bucket_granted: set[str] = field(default_factory=lambda: set(deployer.STATE_BUCKET.permissions))
    page_size: int = 2
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self.error(401, "UNAUTHENTICATED", "Request had invalid authentication")
        host, path = request.url.host, request.url.path
        if host == "cloudresourcemanager.googleapis.com" and request.method == "POST":
            if path != f"/v1/projects/{self.project}:testIamPermissions":
                return self.error(403, "PERMISSION_DENIED", "The caller does not have permission")
            wanted = json.loads(request.content)["permissions"]
            if len(wanted) > 100 or any("*" in p for p in wanted):
                return self.error(400, "INVALID_ARGUMENT", "bad permissions")
            return self.held(wanted, self.granted)
        if (
            host == "serviceusage.googleapis.com"
            and path == f"/v1/projects/{self.project}/services"
        ):
            assert request.url.params["filter"] == "state:ENABLED"
            names = sorted(self.enabled)
            start = int(request.url.params.get("pageToken") or 0)
            page = names[start : start + self.page_size]
            body: dict[str, object] = {
                "services": [{"config": {"name": n}, "state": "ENABLED"} for n in page]
            }
            if start + self.page_size < len(names):
                body["nextPageToken"] = str(start + self.page_size)
            return httpx.Response(200, json=body)
        if (
            host == "storage.googleapis.com"
            and path == f"/storage/v1/b/{self.bucket}/iam/testPermissions"
        ):
            return self.held(request.url.params.get_list("permissions"), self.bucket_granted)
        return self.error(404, "NOT_FOUND", f"{request.method} {request.url}")

    @staticmethod
    def held(wanted: Iterable[str], granted: set[str]) -> httpx.Response:
        held = [p for p in wanted if p in granted]
        return httpx.Response(200, json={"permissions": held} if held else {})

    @staticmethod
    def error(code: int, status: str, message: str) -> httpx.Response:
        return httpx.Response(
            code, json={"error": {"code": code, "message": message, "status": status}}
        )


def client(google: FakeGoogle) -> httpx.Client:
    """The command's own client setup (``GoogleAuth`` over real google-auth credentials),
    with the fake as its transport."""
    auth = deploy_check.GoogleAuth(Credentials(token=TOKEN))
    return httpx.Client(auth=auth, transport=httpx.MockTransport(google))


def run(google: FakeGoogle, *flags: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    deploy_check.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deploy", "check", "--project", google.project, *flags])
    status = args.handler(args, client(google))
    return status, capsys.readouterr().out


def test_a_ready_project_passes_and_lists_what_pulumi_up_enables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every permission held, the bootstrap APIs on: ready (exit 0); the APIs still off are
    the ones the program enables, read across pages of the listing."""
    google = FakeGoogle(enabled={*deployer.BOOTSTRAP_APIS, "run.googleapis.com"})
    status, out = run(google, capsys=capsys)
    assert status == 0
    assert out.splitlines()[-1] == "ready"
    expected = sorted(set(deployer.REQUIRED_APIS) - google.enabled)
    listed = out.split("APIs pulumi up will enable:\n")[1].split()[: len(expected)]
    assert listed == expected
    pages = [r for r in google.requests if r.url.host == "serviceusage.googleapis.com"]
    assert len(pages) == 2


def test_missing_permissions_are_named_with_a_role_that_grants_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without actAs and Spanner's DDL update the check fails (exit 1) and names each
    missing permission with a role and what needs it."""
    google = FakeGoogle(granted=ALL - {"iam.serviceAccounts.actAs", "spanner.databases.updateDdl"})
    status, out = run(google, capsys=capsys)
    assert status == 1
    assert out.splitlines()[-1] == "not ready"
    section = out.split("missing permissions (2):\n")[1].split("APIs pulumi up")[0]
    missing = [line.split() for line in section.splitlines()]
    assert [words[0] for words in missing] == [
        "iam.serviceAccounts.actAs",
        "spanner.databases.updateDdl",
    ]
    assert "roles/iam.serviceAccountUser" in " ".join(missing[0])
    assert "roles/spanner.admin" in missing[1]


def test_bootstrap_apis_must_already_be_on(capsys: pytest.CaptureFixture[str]) -> None:
    """Service Usage and Resource Manager off: nothing can enable the rest."""
    google = FakeGoogle(enabled={"serviceusage.googleapis.com"})
    status, out = run(google, capsys=capsys)
    assert status == 1
    assert "APIs to enable first (gcloud services enable ...):\n  cloudresourcemanager" in out


def test_the_build_needs_its_apis_on_and_its_own_permissions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--build``: Cloud Build, Secret Manager and Artifact Registry must be on, and the
    passphrase secret readable; ``--state-bucket`` checks the bucket's object permissions."""
    google = FakeGoogle(
        granted=ALL - {"secretmanager.versions.access"},
        bucket_granted={"storage.objects.get", "storage.objects.list"},
    )
    status, out = run(google, "--build", "--state-bucket", "gs://state-b", capsys=capsys)
    assert status == 1
    assert "secretmanager.versions.access" in out
    assert "missing on the state bucket (roles/storage.objectAdmin):" in out
    assert "  storage.objects.create\n  storage.objects.delete\n" in out
    off = out.split("APIs to enable first (gcloud services enable ...):\n")[1]
    assert off.split()[:3] == sorted(deployer.BUILD_APIS)
    status, _ = run(
        FakeGoogle(enabled={*deployer.BOOTSTRAP_APIS, *deployer.BUILD_APIS}),
        "--build",
        capsys=capsys,
    )
    assert status == 0


def test_permissions_are_asked_in_batches_of_at_most_100(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every permission is asked once, whatever the batch size."""
    monkeypatch.setattr(deploy_check, "BATCH", 7)
    google = FakeGoogle()
    report = deploy_check.check(client(google), google.project, build=True)
    asked = [
        p
        for r in google.requests
        if r.url.host == "cloudresourcemanager.googleapis.com"
        for p in json.loads(r.content)["permissions"]
    ]
    assert sorted(asked) == sorted(ALL)
    assert report.missing == {}


def test_an_api_error_is_one_line_with_its_status_and_message() -> None:
    """A project the caller cannot see: the command fails with Google's own message."""
    with pytest.raises(deploy_check.GoogleApiError, match="HTTP 403: The caller does not have"):
        deploy_check.check(client(FakeGoogle()), "someone-elses-project")


def test_credentials_are_sent_on_every_call() -> None:
    """Each request carries the caller's bearer token (the fake refuses others)."""
    google = FakeGoogle()
    deploy_check.check(client(google), google.project, state_bucket="gs://state-b")
    assert google.requests
    assert {r.headers["authorization"] for r in google.requests} == {f"Bearer {TOKEN}"}


def test_the_permission_table_covers_exactly_what_the_program_uses(
    mocked_stacks: dict[str, MockedStack],
) -> None:
    """Every resource type and data source either stack declares has its permissions, and no
    row is left for one the program no longer uses: a new kind of resource fails here until
    its permissions are written down."""
    types: set[str] = set()
    invokes: set[str] = set()
    for mocked in mocked_stacks.values():
        types |= {r.type for r in mocked.resources if not r.type.startswith("caplab:")}
        invokes |= set(mocked.invokes)
    assert set(deployer.RESOURCES) == types
    assert set(deployer.DATA_SOURCES) == invokes
    shape = re.compile(r"[a-z]+(\.[a-zA-Z]+){2}")
    assert [p for p in ALL | set(deployer.STATE_BUCKET.permissions) if not shape.fullmatch(p)] == []
