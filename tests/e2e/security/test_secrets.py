"""A webhook URL's userinfo is used to call the receiver and shown nowhere: not in the
registration's answers, not in the delivery's answer, not in ``/v1/downstreams`` (keyed
``scheme://host:port``), not in the notifier's log."""

from __future__ import annotations

import base64
import uuid

import httpx

from tests.fixtures.security import Recorder, RunService, log_entries

SECRET = "s3cr3t-" + uuid.uuid4().hex[:8]


def test_userinfo_is_sent_but_never_shown(run_service: RunService, recorder: Recorder) -> None:
    payee = f"acct-{uuid.uuid4().hex[:12]}"
    plain = f"http://127.0.0.1:{recorder.port}/hooks/{payee}"
    url = f"http://hooks:{SECRET}@127.0.0.1:{recorder.port}/hooks/{payee}"
    with run_service("notifier", {}) as notifier:
        with httpx.Client(base_url=notifier.url, timeout=30) as http:
            registered = http.put(f"/v1/accounts/{payee}/webhook", json={"url": url})
            assert registered.status_code == 200
            shown = http.get(f"/v1/accounts/{payee}/webhook")
            assert registered.json()["url"] == shown.json()["url"] == plain
            # The delivery endpoint is what the queue calls: called here as the queue does
            # (locally it checks no token), with the task body the notifier schedules.
            task = {"event_id": uuid.uuid4().hex, "account": payee, "side": "credit",
                    "url": url, "event": {"event_id": "e"}}  # fmt: skip
            delivered = http.post("/tasks/webhook-delivery", json=task)
            assert delivered.json()["outcome"] == "delivered"
            downstreams = http.get("/v1/downstreams")
            assert list(downstreams.json()) == [f"http://127.0.0.1:{recorder.port}"]
            # A receiver that fails is logged: the log line must not carry the secret either.
            broken = {**task, "url": f"http://hooks:{SECRET}@127.0.0.1:9/closed"}
            assert http.post("/tasks/webhook-delivery", json=broken).status_code == 502
            for answer in (registered, shown, delivered, downstreams):
                assert SECRET not in answer.text
        assert any("failed" in entry["message"] for entry in log_entries(notifier))
        assert notifier.log_path is not None
        assert SECRET not in notifier.log_path.read_text()
    ((path, headers),) = recorder.requests
    assert path == f"/hooks/{payee}"
    credentials = base64.b64decode(headers["Authorization"].removeprefix("Basic "))
    assert credentials == f"hooks:{SECRET}".encode()
