"""The stand-in ledger (``python -m caplab.local.standin``) as a separate process per test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from caplab.local import standin as standin_module


@pytest.fixture
def standin(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``with standin("--stall-at", "0.5", ...) as url:`` runs a stand-in ledger."""
    return lambda *options: standin_module.running(tmp_path / "standin.log", *options)
