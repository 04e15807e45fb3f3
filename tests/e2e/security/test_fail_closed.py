"""Authentication fails closed.

- On Cloud Run (``K_SERVICE`` set) a service whose token-checked endpoints have no audience
  configured does not start: exit status 78 and one CRITICAL log line naming the setting.
- Configured as on Cloud Run, the ledger and the notifier answer 401 to push, task and API
  calls without a valid token, whatever ``X-CloudTasks-*`` headers the request claims.
- Token checks run off the event loop, and tokens naming unknown key ids cannot make a
  service refetch the key set on every request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid

import httpx
import pytest

from emulators import manager
from services.shared.runner import EXIT_SETTINGS
from tests.fixtures.security import Issuer, RunService

DISCARD = "127.0.0.1:9"
"""Emulator address for processes that must not get far enough to call one."""
DISCARD_URL = f"http://{DISCARD}"
NOWHERE = {
    "SPANNER_EMULATOR_HOST": DISCARD,
    "PUBSUB_EMULATOR_HOST": DISCARD,
    "BIGTABLE_EMULATOR_HOST": DISCARD,
    "CLOUD_TASKS_EMULATOR_HOST": DISCARD,
    "GOOGLE_CLOUD_PROJECT": "caplab-local",
}
CLOUD_RUN = {
    "K_SERVICE": "caplab-test",
    "HOST": "127.0.0.1",
    # Where each service's tasks go: required on Cloud Run, never dialled here.
    "CAPLAB_LEDGER_URL": "https://caplab-ledger-1.a.run.app",
    "CAPLAB_NOTIFIER_URL": "https://caplab-notifier-1.a.run.app",
}
CHECKED = {
    "ledger": ("CAPLAB_PUSH_AUDIENCE", "CAPLAB_TASKS_INVOKER_AUDIENCE", "CAPLAB_CALLER_AUDIENCE"),
    "notifier": ("CAPLAB_PUSH_AUDIENCE", "CAPLAB_TASKS_INVOKER_AUDIENCE"),
    "activity": ("CAPLAB_PUSH_AUDIENCE",),
}


def start_refused(name: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run ``caplab service NAME``; its exit status and output lines."""
    environ = dict(os.environ, **NOWHERE, **CLOUD_RUN, PORT=str(manager.free_port()), **env)
    done = subprocess.run(
        [sys.executable, "-m", "caplab", "service", name],
        env=environ,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode().splitlines()


@pytest.mark.parametrize(
    ("name", "missing"),
    [("ledger", "CAPLAB_CALLER_AUDIENCE"), ("notifier", "CAPLAB_TASKS_INVOKER_AUDIENCE")],
)
def test_a_missing_audience_on_cloud_run_stops_the_service(name: str, missing: str) -> None:
    """Every audience but one is set: the service exits 78 with one line naming that one
    (tests/unit/security covers every service and setting in-process)."""
    others = {setting: f"caplab-{name}" for setting in CHECKED[name] if setting != missing}
    status, lines = start_refused(name, others)
    assert status == EXIT_SETTINGS
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["severity"] == "CRITICAL"
    assert missing in entry["message"]


def test_loopback_webhooks_are_refused_on_cloud_run() -> None:
    """The local opt-in for loopback webhooks stops the notifier on Cloud Run."""
    audiences = {setting: "caplab-notifier" for setting in CHECKED["notifier"]}
    status, lines = start_refused("notifier", {**audiences, "CAPLAB_OUTBOUND_ALLOW_LOOPBACK": "1"})
    assert status == EXIT_SETTINGS
    assert len(lines) == 1
    assert "CAPLAB_OUTBOUND_ALLOW_LOOPBACK" in lines[0]


def cloud_ledger_env(issuer: Issuer) -> dict[str, str]:
    """The ledger as the Pulumi program configures it, with this issuer standing in for
    Google's (all three verifiers point at it)."""
    # A bank is configured so that the payout task route exists (nothing here reaches it).
    env = dict(CLOUD_RUN, CAPLAB_OUTBOUND_ALLOW_LOOPBACK="false", CAPLAB_BANK_URL=DISCARD_URL)
    for prefix in ("CAPLAB_PUSH", "CAPLAB_TASKS_INVOKER", "CAPLAB_CALLER"):
        env |= issuer.settings(prefix, "caplab-ledger")
    env["CAPLAB_CALLER_AUDIENCE"] = "caplab-ledger,{url}"
    env["CAPLAB_PUSH_SERVICE_ACCOUNT"] = "push@caplab-test.iam.gserviceaccount.com"
    env["CAPLAB_TASKS_INVOKER_SERVICE_ACCOUNT"] = "tasks@caplab-test.iam.gserviceaccount.com"
    return env


def test_cloud_configured_ledger_refuses_unauthenticated_calls(
    issuer: Issuer, run_service: RunService
) -> None:
    """Push, task and API calls without a token, or with a forged one, are 401 problems; a
    task request claiming to be the queue's last attempt changes nothing without a token.
    The probes stay open."""
    with (
        run_service("ledger", cloud_ledger_env(issuer)) as ledger,
        httpx.Client(base_url=ledger.url, timeout=30) as http,
    ):
        payout = uuid.uuid4().hex
        forged = issuer.bearer("caplab-ledger", email="tasks@caplab-test.iam.gserviceaccount.com",
                               key_id="not-the-issuers")  # fmt: skip
        calls = [
            ("POST", "/internal/invalidate", {}),
            ("POST", f"/tasks/payouts/{payout}", {"X-CloudTasks-TaskRetryCount": "99"}),
            ("POST", f"/tasks/payouts/{payout}", {"X-CloudTasks-TaskRetryCount": "99", **forged}),
            ("GET", "/v1/snapshot?accounts=a", {}),
            ("POST", "/v1/transfers", {"Idempotency-Key": "k"}),
        ]
        for method, path, headers in calls:
            response = http.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, response.text)
        # A caller the ledger accepts is still refused where only the push or the tasks
        # identity may call, however many attempts the task headers claim.
        someone = issuer.bearer("caplab-ledger", email="someone@example.com")
        assert http.post("/internal/invalidate", headers=someone, json={}).status_code == 401
        last_attempt = {"X-CloudTasks-TaskRetryCount": "99", **someone}
        assert http.post(f"/tasks/payouts/{payout}", headers=last_attempt).status_code == 401
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200


def test_unknown_key_ids_do_not_refetch_the_key_set(
    issuer: Issuer, run_service: RunService
) -> None:
    """Ten tokens naming key ids the issuer never published cost one key-set fetch in all
    (PyJWT's refresh cooldown), and a valid token still verifies after them."""
    env = issuer.settings("CAPLAB_TASKS_INVOKER", "caplab-notifier")
    with (
        run_service("notifier", env) as notifier,
        httpx.Client(base_url=notifier.url, timeout=30) as http,
    ):
        for _ in range(10):
            made_up = issuer.bearer("caplab-notifier", key_id=uuid.uuid4().hex)
            response = http.post("/tasks/webhook-delivery", headers=made_up, content=b"{}")
            assert response.status_code == 401
        assert issuer.fetches == 1
        valid = issuer.bearer("caplab-notifier")
        # Past authentication: the empty body is not a delivery (400), not a 401.
        assert http.post("/tasks/webhook-delivery", headers=valid, content=b"{}").status_code == 400
        assert issuer.fetches == 1


def test_token_checks_run_off_the_event_loop(issuer: Issuer, run_service: RunService) -> None:
    """While a token check waits for the key set (held by the issuer), the service keeps
    answering other requests; released, the check completes."""
    env = issuer.settings("CAPLAB_TASKS_INVOKER", "caplab-notifier")
    with run_service("notifier", env) as notifier:
        issuer.released.clear()
        issuer.waiting.clear()
        answers: list[int] = []
        held = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{notifier.url}/tasks/webhook-delivery", content=b"{}", timeout=60,
                           headers=issuer.bearer("caplab-notifier")).status_code
            )
        )  # fmt: skip
        held.start()
        try:
            assert issuer.waiting.wait(timeout=30)
            # Bounds a hang, not a latency: a check on the event loop would block this reply
            # until the key set is released.
            assert httpx.get(f"{notifier.url}/healthz", timeout=10).status_code == 200
            assert answers == []
        finally:
            issuer.released.set()
            held.join(timeout=60)
        assert answers == [400]
