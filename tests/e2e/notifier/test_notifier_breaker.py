"""The notifier's delivery endpoint as a process, against the webhook sink as a process:
the breaker opens under sustained failure (and then fails fast without calling the sink),
and closes again after the receiver recovers; the endpoint verifies the queue's OIDC token;
webhook registrations round-trip."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from caplab.core.clients import build_tasks_client
from caplab.core.environment import GcpSettings, config_from
from caplab.local import launcher
from emulators import manager
from emulators.cloudtasks.tokens import JWKS_PATH
from services.notifier.delivery import DELIVERY_PATH, Delivery
from services.shared.outbound import TaskAuth, create_http_task
from tests.fixtures.fanout import eventually, unique
from tests.fixtures.services import ServiceRunner

THRESHOLD = 3
RESET_SECONDS = 1.0


def _task(hook_url: str) -> bytes:
    event_id = uuid.uuid4().hex
    return Delivery(event_id, "acct", "credit", hook_url, {"event_id": event_id}).to_json()


def test_breaker_opens_fails_fast_and_closes_after_recovery(
    services: ServiceRunner, sink: launcher.RunningService
) -> None:
    """THRESHOLD failed deliveries open the host's breaker; further deliveries are refused
    with 503 + Retry-After without reaching the sink; after the reset timeout one trial
    succeeds and closes it."""
    hook = unique("hook")
    hook_url = f"{sink.url}/hooks/{hook}"
    extra = {
        "CAPLAB_WEBHOOK_FAILURE_THRESHOLD": str(THRESHOLD),
        "CAPLAB_WEBHOOK_RESET_TIMEOUT": f"{RESET_SECONDS}s",
    }
    with services.restartable("notifier", extra) as notifier, httpx.Client() as http:
        assert http.put(f"{sink.url}/control/{hook}", json={"down": True}).status_code == 200
        deliver = notifier.url + DELIVERY_PATH
        failed = [http.post(deliver, content=_task(hook_url)) for _ in range(THRESHOLD)]
        assert [r.status_code for r in failed] == [502] * THRESHOLD

        refused = [http.post(deliver, content=_task(hook_url)) for _ in range(5)]
        assert {r.status_code for r in refused} == {503}
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        assert http.get(f"{sink.url}/hooks/{hook}").json()["received"] == THRESHOLD

        host = sink.url.split("//")[1]
        breaker = http.get(notifier.url + "/v1/downstreams").json()[host]
        assert breaker["breaker"]["state"] == "open"
        assert breaker["breaker"]["rejections"] == 5

        assert http.put(f"{sink.url}/control/{hook}", json={"down": False}).status_code == 200

        def half_open() -> bool | None:
            state = http.get(notifier.url + "/v1/downstreams").json()[host]["breaker"]["state"]
            return True if state == "half_open" else None

        eventually(half_open)  # the notifier's own clock decides when the trial is due
        recovered = http.post(deliver, content=_task(hook_url))
        assert recovered.status_code == 200
        assert recovered.json()["outcome"] == "delivered"
        breaker = http.get(notifier.url + "/v1/downstreams").json()[host]
        assert (breaker["breaker"]["state"], breaker["breaker"]["closed"]) == ("closed", 1)
        assert http.get(f"{sink.url}/hooks/{hook}").json()["effects"] == 1


def test_webhook_registration_round_trips_and_rejects_bad_urls(
    fanout_service: Callable[[str], launcher.RunningService],
) -> None:
    """A registered URL reads back; a malformed one is 422 naming body.url; a removed one is
    404."""
    notifier = fanout_service("notifier")
    account = unique("acct")
    url = f"{notifier.url}/v1/accounts/{account}/webhook"
    assert httpx.put(url, json={"url": "http://127.0.0.1:1/hooks/x"}).status_code == 200
    assert httpx.get(url).json()["url"] == "http://127.0.0.1:1/hooks/x"
    bad = httpx.put(url, json={"url": "not a url"})
    assert (bad.status_code, bad.json()["field"]) == (422, "body.url")
    assert httpx.delete(url).status_code == 204
    assert httpx.get(url).status_code == 404


def test_delivery_endpoint_verifies_the_queue_oidc_token(
    services: ServiceRunner, sink: launcher.RunningService, stack: manager.StackConfig
) -> None:
    """Configured as in the cloud (tasks carry an OIDC token of a service account; the
    endpoint checks signature, issuer, audience and email), a request without a token is 401
    and a task dispatched by the Cloud Tasks emulator, which signs one, is delivered."""
    environ = manager.client_environment(stack)
    issuer = environ["CLOUD_TASKS_OIDC_ISSUER"]
    account = "notifier-tasks@caplab-local.iam.gserviceaccount.com"
    audience = "caplab-notifier"
    extra = {
        "CAPLAB_TASKS_SERVICE_ACCOUNT": account,
        "CAPLAB_TASKS_AUDIENCE": audience,
        "CAPLAB_TASKS_INVOKER_AUDIENCE": audience,
        "CAPLAB_TASKS_INVOKER_SERVICE_ACCOUNT": account,
        "CAPLAB_TASKS_INVOKER_ISSUER": issuer,
        "CAPLAB_TASKS_INVOKER_CERTS_URL": issuer + JWKS_PATH,
    }
    hook = unique("hook")
    with services.restartable("notifier", extra) as notifier, httpx.Client() as http:
        target = notifier.url + DELIVERY_PATH
        unsigned = http.post(target, content=_task(f"{sink.url}/hooks/{hook}"))
        assert unsigned.status_code == 401
        settings = GcpSettings.from_config(config_from(environ))
        tasks = build_tasks_client(settings.cloud_tasks_emulator_host)
        created = create_http_task(
            tasks,
            settings.queue_path("webhooks"),
            unique("oidc"),
            target,
            _task(f"{sink.url}/hooks/{hook}"),
            TaskAuth(service_account=account, audience=audience),
        )
        assert created

        def delivered() -> dict | None:
            summary = http.get(f"{sink.url}/hooks/{hook}").json()
            return summary if summary["effects"] else None

        summary = eventually(delivered)
        assert summary["effects"] == 1
        assert summary["received"] == 1
