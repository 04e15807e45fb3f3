"""Fixtures shared by every test layer, and the one hook that marks each test with its layer
(``tests/<layer>/<area>/``: ``pytest -m unit`` runs the fast layer).

- ``clean_environ`` (autouse, session-wide): nothing inherited can point a client at a real
  project or at someone else's emulator.
- ``stack``: the official emulators (plus any added to ``emulators.specs.EMULATORS``) started
  once per session on free ports in a temporary ``CAPLAB_HOME``, bootstrapped with the topology,
  and always stopped, whatever the tests did.
- ``emulator_env``: exports the stack's variables for one test.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from caplab.core.signals import stop_on_sigterm
from emulators import manager

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.fanout",
    "tests.fixtures.cloudtasks",
    "tests.fixtures.infra",
    "tests.fixtures.bank",
]

# Property tests never assert timings: Hypothesis's per-example deadline is off. The
# "mutation" profile (`make mutation`) also fixes the examples, so a mutant's verdict does not
# depend on the draw, and skips shrinking: a mutant needs a failure, not the smallest one.
settings.register_profile("caplab", deadline=None)
settings.register_profile(
    "mutation",
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.load_profile("caplab")

LAYERS = ("unit", "integration", "e2e")
"""Each test's layer is the first folder under ``tests/``: its marker is set from there."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        layer = item.path.relative_to(root).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live under tests/{{{','.join(LAYERS)}}}/"
            )
        item.add_marker(layer)


_SCRUBBED = re.compile(r"^(.*_EMULATOR_HOST|CLOUD_TASKS_.*|GOOGLE_.*|CAPLAB_.*)$")


@pytest.fixture(autouse=True, scope="session")
def clean_environ() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if _SCRUBBED.match(key) and key != "CAPLAB_GCLOUD_SDK_ROOT":
                patch.delenv(key)
        yield


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, clean_environ: None
) -> Iterator[manager.StackConfig]:
    home: Path = tmp_path_factory.mktemp("caplab-home")
    environ = dict(os.environ, CAPLAB_HOME=str(home))
    config = manager.StackConfig.from_environ(environ, port_overrides=manager.free_ports())
    # A test run stopped with SIGTERM (a CI timeout, `timeout`, a closed terminal) unwinds
    # like Ctrl-C, so this teardown still stops the emulators.
    previous = stop_on_sigterm()
    try:
        manager.up(config)
        yield config
    finally:
        manager.down(config)
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def emulator_env(stack: manager.StackConfig, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stack's client variables, exported for this test; returned as a dict too."""
    variables = manager.client_environment(stack)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    return variables
