"""Requests generated from the ledger's own OpenAPI document never make it answer 5xx.

Cases are drawn per operation with schemathesis's Hypothesis strategies and sent over HTTP to
the ledger process (schemathesis' pytest loader does not run under this pytest version, so the
loop over operations is written out here).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from caplab.local.launcher import RunningService

EXAMPLES_PER_OPERATION = 30


def test_generated_requests_never_get_a_server_error(ledger: RunningService) -> None:
    """Any generated request (valid or not) to any operation answers below 500."""
    schema = schemathesis.openapi.from_url(ledger.url + "/openapi.json")
    server_errors: list[str] = []
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        sent[operation.label] = 0

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=operation.as_strategy())
        def send(case: schemathesis.Case) -> None:
            response = case.call(base_url=ledger.url, timeout=30)
            sent[case.operation.label] += 1
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path}: {response.text[:200]}")

        send()
    assert server_errors == []
    # Five operations take inputs (accounts, reads, snapshots, transfers, transfer reads).
    assert sum(sent.values()) >= 5 * EXAMPLES_PER_OPERATION, sent
