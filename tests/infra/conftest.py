"""Fixtures for the Pulumi program's tests: each stack run once under Pulumi's mocks.

The runs return plain, fully resolved data (``infra.offline.MockedStack``): assertions never
touch a ``pulumi.Output``, so none can pass without being awaited.
"""

from __future__ import annotations

import pytest

from infra.offline import MockedStack, run_program

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def mocked_stacks() -> dict[str, MockedStack]:
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def mocked(request: pytest.FixtureRequest, mocked_stacks: dict[str, MockedStack]) -> MockedStack:
    """Each stack in turn."""
    return mocked_stacks[request.param]
