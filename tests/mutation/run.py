"""``make mutation``: mutmut over the modules listed in ``config.toml``, a score per module.

mutmut (https://mutmut.readthedocs.io) plants one small change at a time in a module (an
operator, a constant, a comparison, a returned value) and runs the tests that cover the changed
function; a mutant is *killed* when a test fails. The score of a module is

    killed / (mutants − equivalent mutants listed in config.toml)

where a timeout counts as killed (the change made a test hang) and a mutant no test reaches
counts as survived.

The run happens in a copy of the work tree (``.caplab/mutation/``), so the tree stays
untouched; mutmut's ``mutants/`` folder there keeps the generated mutants between runs, but
every run maps the tests to the functions they cover and tests every mutant of the chosen
modules again.
mutmut reads its settings from ``pyproject.toml``; the copy's gets a ``[tool.mutmut]`` section
written from ``config.toml``.

    python -m tests.mutation.run [--jobs N] [--module PATH ...]

Exit status: 0 when every module reaches the threshold, 1 otherwise, 2 on a bad config.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("config.toml")
WORKDIR = ROOT / ".caplab" / "mutation"
SOURCE_PACKAGES = ["caplab", "emulators", "services", "loadtest", "infra"]
KILLED = {"killed", "timeout", "caught by type check"}


@dataclass
class Module:
    path: str
    tests: list[str]
    equivalent: dict[str, str] = field(default_factory=dict)

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


@dataclass
class Score:
    module: Module
    statuses: dict[str, str]

    @property
    def counted(self) -> dict[str, str]:
        return {k: v for k, v in self.statuses.items() if k not in self.module.equivalent}

    @property
    def killed(self) -> int:
        return sum(status in KILLED for status in self.counted.values())

    @property
    def survivors(self) -> list[str]:
        return sorted(k for k, v in self.counted.items() if v not in KILLED)

    @property
    def ratio(self) -> float:
        return self.killed / len(self.counted) if self.counted else 1.0

    @property
    def stale_equivalents(self) -> list[str]:
        """Listed as equivalent, but killed or no longer generated: the list needs an edit."""
        return sorted(
            name for name in self.module.equivalent if self.statuses.get(name, "killed") in KILLED
        )


def load_config(path: Path = CONFIG) -> tuple[float, list[Module]]:
    data = tomllib.loads(path.read_text())
    modules = [
        Module(entry["path"], list(entry["tests"]), dict(entry.get("equivalent", {})))
        for entry in data["module"]
    ]
    for module in modules:
        if not (ROOT / module.path).is_file():
            raise SystemExit(f"config.toml: {module.path} does not exist")
        foreign = [name for name in module.equivalent if not name.startswith(module.dotted + ".")]
        if foreign:
            raise SystemExit(f"config.toml: {foreign} are not mutants of {module.path}")
    return float(data["threshold"]), modules


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def sync_copy() -> None:
    """Mirror the work tree's files into WORKDIR (mtimes kept, so mutmut's cache holds)."""
    wanted = set(_project_files())
    for name in wanted:
        source, target = ROOT / name, WORKDIR / name
        stat = source.stat()
        if target.exists():
            current = target.stat()
            if (current.st_size, current.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for top in (*SOURCE_PACKAGES, "tests"):
        for stale in (WORKDIR / top).rglob("*.py"):
            if str(stale.relative_to(WORKDIR)) not in wanted:
                stale.unlink()


def write_settings(modules: list[Module]) -> None:
    """The copy's pyproject.toml: the project's, plus mutmut's section."""
    tests = sorted({test for module in modules for test in module.tests})
    settings = {
        "source_paths": SOURCE_PACKAGES,
        "only_mutate": [module.path for module in modules],
        # A mutant that makes a unit test hang (a deadline ignored, a loop that never ends)
        # is stopped after 20 s and counted as a timeout (killed): every unit test takes
        # under 2 s unmutated, so 20 s is a hang even on a loaded machine.
        "pytest_add_cli_args": ["-m", "unit", "-p", "no:cacheprovider",
                                "--hypothesis-profile=mutation", "--timeout=20"],
        "pytest_add_cli_args_test_selection": tests,
        "use_git_change_detection": False,
    }  # fmt: skip
    section = "\n[tool.mutmut]\n" + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in settings.items()
    )
    pyproject = (ROOT / "pyproject.toml").read_text()
    target = WORKDIR / "pyproject.toml"
    target.write_text(pyproject + section)
    # A changed section must not look like an untouched copy to the next sync.
    stat = (ROOT / "pyproject.toml").stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))


def prepare_mutants(modules: list[Module]) -> None:
    """Make mutmut regenerate what its cache cannot know about: a module without results yet
    (its unmutated copy from an earlier run would pass for up to date), the tests (deleted
    test files must not linger in the copy) and which test covers which function (mutmut
    notices new tests, not a changed test under an old name)."""
    mutants = WORKDIR / "mutants"
    for module in modules:
        if not (mutants / f"{module.path}.meta").exists():
            (mutants / module.path).unlink(missing_ok=True)
    shutil.rmtree(mutants / "tests", ignore_errors=True)
    (mutants / "mutmut-stats.json").unlink(missing_ok=True)


def run_mutmut(jobs: int, modules: list[Module]) -> int:
    """``mutmut run`` over every mutant of ``modules``. Naming them makes mutmut test each
    one again: left to itself it keeps a cached verdict, so a survivor would stay a survivor
    after a new test that kills it."""
    mutmut = Path(sys.executable).with_name("mutmut")
    names = [f"{module.dotted}.*" for module in modules]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CAPLAB_", "GOOGLE_"))}
    command = [str(mutmut), "run", "--max-children", str(jobs), *names]
    return subprocess.run(command, cwd=WORKDIR, env=environ).returncode


def statuses(module: Module) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = WORKDIR / "mutants" / f"{module.path}.meta"
    if not meta.exists():
        return {}
    exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in exit_codes.items()}


def report(scores: list[Score], threshold: float) -> bool:
    width = max(len(score.module.path) for score in scores)
    print(f"\n{'module':<{width}}  killed  counted  equivalent  score")
    passed = True
    for score in scores:
        ok = score.ratio >= threshold and bool(score.statuses)
        passed &= ok
        print(
            f"{score.module.path:<{width}}  {score.killed:>6}  {len(score.counted):>7}  "
            f"{len(score.module.equivalent):>10}  {score.ratio:6.1%}"
            f"{'' if ok else '  < ' + format(threshold, '.0%')}"
        )
    for score in scores:
        if not score.statuses:
            print(f"\n{score.module.path}: no mutants were generated or run")
        if score.survivors:
            print(f"\nsurvivors in {score.module.path} (make mutation-show MUTANT=<name>):")
            for name in score.survivors:
                print(f"  {name}  [{score.statuses[name]}]")
        if score.stale_equivalents:
            passed = False
            print(f"\n{score.module.path}: listed as equivalent but killed or gone (edit "
                  f"config.toml): {', '.join(score.stale_equivalents)}")  # fmt: skip
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mutmut over config.toml, a score per module")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested in parallel")
    parser.add_argument("--module", action="append", default=[], help="only this path (repeatable)")
    args = parser.parse_args(argv)
    threshold, modules = load_config()
    selected = [module for module in modules if module.path in args.module]
    unknown = set(args.module) - {module.path for module in selected}
    if unknown:
        print(f"not in config.toml: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    WORKDIR.mkdir(parents=True, exist_ok=True)
    sync_copy()
    write_settings(modules)
    prepare_mutants(modules)
    code = run_mutmut(args.jobs, selected or modules)
    if code != 0:
        print(f"mutmut run exited with {code}", file=sys.stderr)
        return code
    scores = [Score(module, statuses(module)) for module in selected or modules]
    return 0 if report(scores, threshold) else 1


if __name__ == "__main__":
    sys.exit(main())
