"""Health and readiness answer on paths Cloud Run leaves alone on a service's URL (some paths
ending in ``z`` are reserved there: https://cloud.google.com/run/docs/known-issues), while
the probes the program declares keep paths the app factory serves."""

from __future__ import annotations

import httpx
import pytest

from infra.offline import MockedStack
from services.shared.app import create_app


def client(ready: bool = True) -> httpx.AsyncClient:
    def readiness() -> None:
        if not ready:
            raise TimeoutError("Spanner did not answer")

    app = create_app("probe", project="p", readiness=readiness)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


@pytest.mark.parametrize(("public", "probe"), [("/health", "/healthz"), ("/ready", "/readyz")])
@pytest.mark.parametrize("ready", [True, False])
async def test_public_paths_answer_as_the_probe_paths_do(
    public: str, probe: str, ready: bool
) -> None:
    """``/health`` and ``/ready`` answer what ``/healthz`` and ``/readyz`` answer, ready or
    not (not ready: 503 on both readiness paths)."""
    async with client(ready) as http:
        on_public, on_probe = await http.get(public), await http.get(probe)
    assert on_public.status_code == on_probe.status_code
    assert on_public.status_code == (503 if public == "/ready" and not ready else 200)
    assert on_public.json().get("status") == on_probe.json().get("status")


async def test_every_operations_path_ending_in_z_has_a_public_twin() -> None:
    """No operation the factory documents is reachable only through a path ending in z."""
    async with client() as http:
        paths = set((await http.get("/openapi.json")).json()["paths"])
    ending_in_z = {path for path in paths if path.endswith("z")}
    assert ending_in_z == {"/healthz", "/readyz"}
    assert {path[:-1] for path in ending_in_z} <= paths


async def test_the_probes_use_paths_the_factory_serves(built_dev: MockedStack) -> None:
    """Cloud Run's probes reach the container directly: the program's probe paths are
    answered by every service built with the factory."""
    probed = {
        service.inputs["template"]["containers"][0][probe]["httpGet"]["path"]
        for service in built_dev.of_type("gcp:cloudrunv2/service:Service")
        for probe in ("startupProbe", "livenessProbe")
    }
    assert probed == {"/readyz", "/healthz"}
    async with client() as http:
        assert {(await http.get(path)).status_code for path in probed} == {200}
