"""``caplab deploy check --project P``: what this project and this caller still lack before
``pulumi up`` (or, with ``--build``, before ``gcloud builds submit``).

It asks Google Cloud two things, as the caller's Application Default Credentials:
- Resource Manager ``projects.testIamPermissions``: which of the permissions in
  :mod:`infra.deployer` the caller holds on the project (with ``--state-bucket``, Cloud
  Storage's bucket ``testPermissions`` for the state bucket too);
- Service Usage ``services.list`` (enabled only): which APIs are on. The bootstrap APIs must
  be; the program enables the others itself, which the report says; with ``--build`` the
  build's APIs must already be on (the first ``pulumi up`` turns them on).

To check another identity (the Cloud Build service account), run it with credentials for
that identity, e.g. after ``gcloud auth application-default login
--impersonate-service-account=SA``. The HTTP calls are a few plain REST requests through
httpx (a base dependency), so the command needs neither Pulumi nor another client library;
tests run it against a fake transport.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from caplab.core.errors import CaplabError
from infra.deployer import (
    BOOTSTRAP_APIS,
    BUILD_APIS,
    REQUIRED_APIS,
    STATE_BUCKET,
    Needs,
    permissions,
    project_needs,
    role_for,
)

RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com/v1"
SERVICE_USAGE = "https://serviceusage.googleapis.com/v1"
STORAGE = "https://storage.googleapis.com/storage/v1"
BATCH = 100
"""Permissions per testIamPermissions request."""


class GoogleApiError(CaplabError):
    """A Google API answered with an error; the message carries its status and reason."""


@dataclass
class Report:
    project: str
    build: bool
    missing: dict[str, Needs] = field(default_factory=dict)
    """Permission -> the group that needs it."""
    bucket_missing: list[str] = field(default_factory=list)
    apis_off: list[str] = field(default_factory=list)
    """APIs that must already be on and are not."""
    apis_enabled_by_program: list[str] = field(default_factory=list)
    """APIs ``pulumi up`` will enable."""

    @property
    def ready(self) -> bool:
        return not (self.missing or self.bucket_missing or self.apis_off)

    def lines(self) -> list[str]:
        target = "gcloud builds submit" if self.build else "pulumi up"
        lines = [f"project {self.project}: checked for {target}"]
        if self.missing:
            lines.append(f"missing permissions ({len(self.missing)}):")
            for permission, needs in sorted(self.missing.items()):
                role = role_for(permission, needs)
                lines.append(f"  {permission:48} {role:36} {needs.what}")
        if self.bucket_missing:
            lines.append(f"missing on the state bucket ({STATE_BUCKET.role}):")
            lines += [f"  {permission}" for permission in self.bucket_missing]
        if self.apis_off:
            lines.append("APIs to enable first (gcloud services enable ...):")
            lines += [f"  {api}" for api in self.apis_off]
        if self.apis_enabled_by_program:
            lines.append("APIs pulumi up will enable:")
            lines += [f"  {api}" for api in self.apis_enabled_by_program]
        lines.append("ready" if self.ready else "not ready")
        return lines


def _checked(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.is_success:
        return response.json() if response.content else {}
    try:
        error = response.json().get("error", {})
        message = error.get("message") if isinstance(error, dict) else str(error)
    except ValueError:
        message = response.text[:200]
    raise GoogleApiError(f"{what}: HTTP {response.status_code}: {message}")


def granted_on_project(http: httpx.Client, project: str, wanted: Sequence[str]) -> set[str]:
    """The subset of ``wanted`` the caller holds on ``project``."""
    granted: set[str] = set()
    for start in range(0, len(wanted), BATCH):
        batch = list(wanted[start : start + BATCH])
        response = http.post(
            f"{RESOURCE_MANAGER}/projects/{quote(project)}:testIamPermissions",
            json={"permissions": batch},
        )
        granted |= set(
            _checked(response, "Resource Manager testIamPermissions").get("permissions", [])
        )
    return granted


def granted_on_bucket(http: httpx.Client, bucket: str, wanted: Sequence[str]) -> set[str]:
    """The subset of ``wanted`` the caller holds on the Cloud Storage bucket ``bucket``."""
    response = http.get(
        f"{STORAGE}/b/{quote(bucket)}/iam/testPermissions",
        params=[("permissions", permission) for permission in wanted],
    )
    return set(_checked(response, "Cloud Storage testPermissions").get("permissions", []))


def enabled_apis(http: httpx.Client, project: str) -> set[str]:
    """Every API enabled on ``project`` (all pages)."""
    enabled: set[str] = set()
    token = ""
    while True:
        params = {"filter": "state:ENABLED", "pageSize": "200"}
        if token:
            params["pageToken"] = token
        response = http.get(f"{SERVICE_USAGE}/projects/{quote(project)}/services", params=params)
        page = _checked(response, "Service Usage services.list")
        enabled |= {s["config"]["name"] for s in page.get("services", [])}
        token = page.get("nextPageToken", "")
        if not token:
            return enabled


def check(
    http: httpx.Client, project: str, build: bool = False, state_bucket: str | None = None
) -> Report:
    """What ``project`` and the caller behind ``http`` lack (see the module docstring)."""
    needs = project_needs(build=build)
    wanted = permissions(needs)
    granted = granted_on_project(http, project, wanted)
    report = Report(project=project, build=build)
    for group in needs.values():
        for permission in group.permissions:
            if permission not in granted:
                report.missing.setdefault(permission, group)
    if state_bucket:
        bucket = state_bucket.removeprefix("gs://").rstrip("/")
        held = granted_on_bucket(http, bucket, STATE_BUCKET.permissions)
        report.bucket_missing = [p for p in STATE_BUCKET.permissions if p not in held]
    enabled = enabled_apis(http, project)
    must_be_on: Iterable[str] = BOOTSTRAP_APIS + (BUILD_APIS if build else ())
    report.apis_off = sorted({api for api in must_be_on if api not in enabled})
    report.apis_enabled_by_program = sorted(
        api for api in REQUIRED_APIS if api not in enabled and api not in report.apis_off
    )
    return report


class GoogleAuth(httpx.Auth):
    """Adds the caller's Application Default Credentials (refreshed when needed, with the
    quota project header when they carry one) to each request."""

    def __init__(self, credentials: Any) -> None:
        import google.auth.transport.requests

        self._credentials = credentials
        self._refresh = google.auth.transport.requests.Request()

    def auth_flow(self, request: httpx.Request) -> Any:
        headers: dict[str, str] = {}
        self._credentials.before_request(self._refresh, request.method, str(request.url), headers)
        request.headers.update(headers)
        yield request


def default_client() -> httpx.Client:
    """An httpx client authenticated with Application Default Credentials."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    except DefaultCredentialsError as error:
        raise CaplabError(
            f"no Google credentials ({error}); run `gcloud auth application-default login`"
        ) from error
    return httpx.Client(auth=GoogleAuth(credentials), timeout=30.0)


def run(args: argparse.Namespace, client: httpx.Client | None = None) -> int:
    """Print the report; exit status 0 when ready, 1 when something is missing."""
    with client or default_client() as http:
        report = check(http, args.project, build=args.build, state_bucket=args.state_bucket)
    print("\n".join(report.lines()))
    return 0 if report.ready else 1


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser("deploy", help="Google Cloud deployment helpers")
    commands = deploy.add_subparsers(dest="deploy_command", required=True, metavar="COMMAND")
    parser = commands.add_parser(
        "check",
        help="which permissions and APIs are missing before pulumi up (or the build)",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("--project", required=True, help="the Google Cloud project id")
    parser.add_argument(
        "--build", action="store_true", help="check for gcloud builds submit as well"
    )
    parser.add_argument("--state-bucket", help="the Pulumi state bucket (gs://NAME) to check")
    parser.set_defaults(handler=run)
