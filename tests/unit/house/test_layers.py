"""The house's rules hold: import layers (import-linter's contracts in ``pyproject.toml``), a
lean service image (``pip install .`` carries no lab, plots, Pulumi or test tools) and a
container command that imports only the service it runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("caplab", "services", "emulators", "loadtest", "infra")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """The packages' sources and pyproject.toml, copied where a test may break them."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_import_contracts_hold_on_the_tree(tree_copy: Path) -> None:
    result = lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "climbing_import"),
    [
        ("services/shared/problems.py", "import caplab.cli"),
        ("emulators/bootstrap.py", "import services.ledger.app"),
        ("loadtest/client.py", "import services.shared.app"),
        ("caplab/core/topology.py", "import emulators.manager"),
        ("infra/settings.py", "import loadtest.report"),
        ("services/ledger/app.py", "import matplotlib"),
    ],
)
def test_an_import_that_climbs_or_crosses_fails_the_contracts(
    tree_copy: Path, module: str, climbing_import: str
) -> None:
    path = tree_copy / module
    path.write_text(path.read_text() + f"\n{climbing_import}  # planted\n")
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout


def test_the_runtime_dependencies_carry_no_lab_plots_infra_or_test_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    for heavy in ("matplotlib", "pulumi", "schemathesis", "pytest", "rich", "aiohttp"):
        assert heavy not in runtime
    assert "matplotlib" in " ".join(project["optional-dependencies"]["lab"])


def test_the_container_command_imports_only_its_service() -> None:
    """(aiohttp and rich are left out of the probe: Google's and httpx's libraries import
    them when they happen to be installed, as in this test environment; the image has
    neither.)"""
    probe = (
        "import sys; from caplab import cli; cli.build_parser('service');"
        "import services.ledger.app;"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'matplotlib','pulumi','loadtest','emulators'})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
