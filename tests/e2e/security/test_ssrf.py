"""Webhook URLs cannot reach inside the project (SSRF), through the notifier's HTTP API.

Every refused URL is refused at registration: these tests never make the notifier send
anything to an address outside 127.0.0.0/8 (the one send-time case below targets loopback,
which the policy refuses in that process).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from caplab.local import launcher
from tests.fixtures.security import RunService
from tests.fixtures.services import ServiceRunner

NO_LOOPBACK = {"CAPLAB_OUTBOUND_ALLOW_LOOPBACK": "false"}

REFUSED = {
    "metadata-ip": "http://169.254.169.254/computeMetadata/v1/",
    "metadata-name": "http://metadata.google.internal/computeMetadata/v1/",
    "metadata-short-name": "http://metadata/computeMetadata/v1/",
    "internal-name": "https://db.c.my-project.internal/",
    "rfc1918-10": "http://10.1.2.3/",
    "rfc1918-172": "http://172.16.0.1/",
    "rfc1918-192": "http://192.168.0.1/",
    "shared-100-64": "http://100.64.0.1/",
    "link-local-v6": "http://[fe80::1]/",
    "ula": "http://[fd00::1]/",
    "mapped-v4": "http://[::ffff:10.0.0.1]/",
    "nat64": "http://[64:ff9b::a9fe:a9fe]/",
    "unspecified": "http://0.0.0.0/",
    "loopback": "http://127.0.0.1:8089/hooks",
    "loopback-decimal": "http://2130706433/",
    "loopback-v6": "http://[::1]/",
    "localhost-resolved": "http://localhost/",
    "non-standard-port": "https://8.8.8.8:22/",
    "not-http": "ftp://example.com/",
}


@pytest.fixture(scope="module")
def strict_notifier(services: ServiceRunner) -> Iterator[launcher.RunningService]:
    """A notifier without the local loopback opt-in: the policy as on Cloud Run, except that
    ``http`` is allowed."""
    with services.restartable("notifier", NO_LOOPBACK) as notifier:
        yield notifier


def register(notifier: launcher.RunningService, url: str) -> tuple[str, httpx.Response]:
    account = f"acct-{uuid.uuid4().hex[:12]}"
    return account, httpx.put(
        f"{notifier.url}/v1/accounts/{account}/webhook", json={"url": url}, timeout=30
    )


@pytest.mark.parametrize("url", REFUSED.values(), ids=REFUSED.keys())
def test_internal_destinations_are_refused_at_registration(
    strict_notifier: launcher.RunningService, url: str
) -> None:
    """422 problem+json naming ``body.url``; nothing is stored."""
    account, response = register(strict_notifier, url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "body.url"
    stored = httpx.get(f"{strict_notifier.url}/v1/accounts/{account}/webhook", timeout=30)
    assert stored.status_code == 404


def test_loopback_is_allowed_only_by_the_local_setting(
    strict_notifier: launcher.RunningService, services: ServiceRunner
) -> None:
    """The session's notifier runs with ``caplab emulators env``'s opt-in: loopback (any
    port) registers there, private ranges still do not."""
    local = services.start("notifier")
    _, accepted = register(local, "http://127.0.0.1:8089/hooks/x")
    assert accepted.status_code == 200, accepted.text
    _, private = register(local, "http://10.1.2.3/")
    assert private.status_code == 422
    _, strict = register(strict_notifier, "http://127.0.0.1:8089/hooks/x")
    assert strict.status_code == 422


def test_cloud_run_accepts_https_only(run_service: RunService) -> None:
    """With ``K_SERVICE`` set, an ``http`` webhook is refused for its scheme (before any name
    is resolved or address checked)."""
    env = {
        "K_SERVICE": "caplab-notifier",
        "HOST": "127.0.0.1",
        "CAPLAB_PUSH_AUDIENCE": "caplab-notifier",
        "CAPLAB_TASKS_INVOKER_AUDIENCE": "caplab-notifier",
        "CAPLAB_NOTIFIER_URL": "https://caplab-notifier-1.a.run.app",
        **NO_LOOPBACK,
    }
    with run_service("notifier", env) as notifier:
        _, response = register(notifier, "http://8.8.8.8/hook")
        assert response.status_code == 422
        assert "https" in response.json()["detail"]


def test_a_refused_address_is_refused_again_at_send_time(
    strict_notifier: launcher.RunningService, sink: launcher.RunningService
) -> None:
    """A delivery whose URL the policy refuses (here: loopback, on a notifier without the
    opt-in) is answered 200 ``blocked`` (no retry can help) and nothing reaches the sink."""
    hook = uuid.uuid4().hex[:10]
    task = {
        "event_id": uuid.uuid4().hex,
        "account": "acct-x",
        "side": "credit",
        "url": f"{sink.url}/hooks/{hook}",
        "event": {"event_id": "e"},
    }
    response = httpx.post(f"{strict_notifier.url}/tasks/webhook-delivery", json=task, timeout=30)
    assert response.status_code == 200
    assert response.json()["outcome"].startswith("blocked: 127.0.0.1 is a loopback address")
    assert httpx.get(f"{sink.url}/hooks/{hook}", timeout=30).json()["received"] == 0
    downstreams = httpx.get(f"{strict_notifier.url}/v1/downstreams", timeout=30).json()
    assert downstreams[sink.url]["breaker"]["failures"] == 0
