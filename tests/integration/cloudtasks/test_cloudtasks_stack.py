"""The Cloud Tasks emulator as the stack's fourth emulator: started, probed and bootstrapped
by ``caplab emulators up``, reached through the one client factory."""

from __future__ import annotations

import httpx

from caplab.core.clients import ClientFactory
from caplab.core.environment import GcpSettings, config_from
from caplab.core.topology import TOPOLOGY
from emulators import manager


def test_stack_bootstraps_the_topology_queues(
    stack: manager.StackConfig, emulator_env: dict[str, str]
) -> None:
    """Every queue of the topology exists with its declared rate limits and retry policy,
    seen through ``ClientFactory.tasks`` configured only by the exported variables."""
    assert emulator_env["CLOUD_TASKS_EMULATOR_HOST"] == stack.address(
        next(s for s in stack.emulators if s.name == "tasks")
    )
    settings = GcpSettings.from_config(config_from(emulator_env))
    client = ClientFactory(settings).tasks
    for declared in TOPOLOGY.queues:
        queue = client.get_queue(name=settings.queue_path(declared.name))
        assert queue.rate_limits.max_dispatches_per_second == declared.max_dispatches_per_second
        assert queue.rate_limits.max_concurrent_dispatches == declared.max_concurrent_dispatches
        assert queue.retry_config.max_attempts == declared.retry.max_attempts
        assert queue.retry_config.max_doublings == declared.retry.max_doublings
        assert queue.retry_config.min_backoff.total_seconds() == declared.retry.min_backoff_seconds
        assert queue.retry_config.max_backoff.total_seconds() == declared.retry.max_backoff_seconds
        assert (
            queue.retry_config.max_retry_duration.total_seconds()
            == declared.retry.max_retry_duration_seconds
        )
    client.transport.close()


def test_stack_publishes_the_oidc_issuer(
    stack: manager.StackConfig, emulator_env: dict[str, str]
) -> None:
    """``caplab emulators env`` exports CLOUD_TASKS_OIDC_ISSUER, whose discovery document
    points at the JWKS."""
    issuer = emulator_env["CLOUD_TASKS_OIDC_ISSUER"]
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer
    keys = httpx.get(discovery["jwks_uri"]).json()["keys"]
    assert keys[0]["alg"] == "RS256"


def test_stack_status_reports_tasks_healthy(stack: manager.StackConfig) -> None:
    """``status`` probes the Cloud Tasks emulator like the others."""
    rows = {row.name: row for row in manager.status(stack)}
    assert rows["tasks"].health is manager.Health.HEALTHY
