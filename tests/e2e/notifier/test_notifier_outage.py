"""The notifier with Cloud Tasks out of reach: a push it cannot enqueue answers 503 at its own
deadline, so Pub/Sub redelivers, and the redelivery after Cloud Tasks is back schedules the
webhook delivery, which reaches the receiver once."""

from __future__ import annotations

import httpx

from caplab.local import launcher
from tests.fixtures.fanout import EventPublisher, eventually, push_envelope, unique
from tests.fixtures.security import log_entries
from tests.fixtures.services import OUTAGE_CLIENT_TIMEOUT, OUTAGE_DEADLINE, ServiceRunner
from tests.fixtures.tcp_link import tcp_link


def test_a_push_answers_503_at_the_deadline_while_cloud_tasks_is_cut_and_the_redelivery_lands(
    services: ServiceRunner,
    service_environ: dict[str, str],
    sink: launcher.RunningService,
    events: EventPublisher,
) -> None:
    """The notifier reaches Cloud Tasks through a link that turns into a black hole
    (connected, never answered: only a deadline ends a call into it). The push of an event
    for an account with a webhook answers 503 problem+json with ``Retry-After`` (a nack)
    within ``OUTAGE_CLIENT_TIMEOUT``, and the log says the enqueue was cut by the deadline's
    ``TimeoutError``. Once the link is released, the same delivery pushed again answers 204
    and the webhook receives the event exactly once."""
    payer, payee, hook = unique("acct"), unique("acct"), unique("hook")
    event = events.transfer(payer, payee, 3)  # its own push goes to the session's processes
    body = push_envelope(event.to_json(), "notifier", **event.attributes())
    with tcp_link(service_environ["CLOUD_TASKS_EMULATOR_HOST"]) as tasks:
        env = {
            "CLOUD_TASKS_EMULATOR_HOST": tasks.address,
            "CAPLAB_NOTIFIER_DEADLINE": OUTAGE_DEADLINE,
        }
        with (
            services.restartable("notifier", env) as notifier,
            httpx.Client(base_url=notifier.url, timeout=OUTAGE_CLIENT_TIMEOUT) as http,
        ):
            webhook = {"url": f"{sink.url}/hooks/{hook}"}
            assert http.put(f"/v1/accounts/{payee}/webhook", json=webhook).status_code == 200
            tasks.hold_at(b"")
            cut = http.post("/pubsub/transfer-events", json=body)
            assert tasks.wait_held(timeout=0), "the enqueue never reached the Cloud Tasks link"
            tasks.release()
            redelivered = http.post("/pubsub/transfer-events", json=body)

            def delivered() -> dict | None:
                summary = httpx.get(f"{sink.url}/hooks/{hook}").json()
                return summary if summary["effects"] else None

            summary = eventually(delivered)
            logged = [e["message"] for e in log_entries(notifier)]
    assert cut.status_code == 503, cut.text
    assert cut.headers["content-type"] == "application/problem+json"
    assert cut.headers["retry-after"] == "1"
    assert cut.json()["type"].endswith("/redelivery-needed")
    assert f"effect of event {event.event_id} failed, redelivery expected: TimeoutError()" in logged
    assert redelivered.status_code == 204, redelivered.text
    assert summary["event_ids"] == [event.event_id]
    assert summary["succeeded"] == 1
