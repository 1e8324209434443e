"""The learner's workspace: a copy of the previous checkpoint that a part's notebook writes into.

Exercises work in a copy. ``ws.exercises()`` (the first code cell of a part's exercises)
copies the part's workspace to ``.workspaces/part-NN-exercises/`` and from then on ``%%code``,
``ws.write`` and the tools (``ws.pytest``, ``ws.lint_imports``…) work there, and it becomes
the current directory and the first entry of ``sys.path``. ``ws.check()`` keeps checking the
part's own workspace, strictly: every file equal to the checkpoint, nothing extra. So a solved
exercise (a new ``shelfwise/shipping/`` package, an edited ``.importlinter``) can never make
the part's check fail, and the check never has to guess which files were exercises. Running
the exercises cell again starts the copy afresh, as ``start_part`` does; pass ``keep=True``
to continue an earlier attempt. ``await ws.exercise(name, check)`` is unchanged: the check
runs wherever the learner is working.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbook.diffs import file_changes
from workbook.parts import (
    APP_PATHS,
    REPO_ROOT,
    WORKSPACES_DIR,
    app_files,
    checkpoint_dir,
    get_part,
)

# Set by `python -m workbook record`: the end-of-part check stores the checkpoint
# instead of comparing against it.
RECORD_ENV = "WORKBOOK_RECORD"

_COLOUR_VARIABLES = ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS")
# What pytest and hypothesis look at to decide they run in CI.
_CI_VARIABLES = (
    "CI",
    "BUILD_NUMBER",
    "TF_BUILD",
    "BUILDKITE",
    "CIRCLECI",
    "CIRRUS_CI",
    "CODEBUILD_BUILD_ID",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "HEROKU_TEST_RUN_ID",
    "TEAMCITY_VERSION",
    "bamboo.buildKey",
    "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI",
)

# Throw-away files a notebook writes to demonstrate something; never part of a checkpoint.
SCRATCH_DIR = "scratch"

# Modules that the workspace provides; they are re-imported after every change.
APP_MODULES = ("shelfwise", "tests")

_PYTEST_DURATION = re.compile(r" in \d+(?:\.\d+)?s(?: \([0-9:]+\))?")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _unload_after_change(relative: str) -> None:
    # Tests import the package, never the other way round: a changed test module leaves the
    # package (and names a notebook imported from it) valid.
    top = Path(relative).parts[0]
    if top == "shelfwise":
        unload_app_modules()
    elif top == "tests":
        unload_app_modules(("tests",))


def _report(output: str, returncode: int) -> None:
    print(output)
    if returncode:
        print(f"[exit code {returncode}]")


def _display(path: Path) -> str:
    """A path as a learner should see it: relative to the repository, never absolute."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def unload_app_modules(packages: tuple[str, ...] = APP_MODULES) -> None:
    """Forget imported application modules so the next import reads the files again.

    SQLAlchemy keeps every mapped class in its registry; a re-imported ``models`` module
    would declare the same tables a second time, so the old mappers are cleared too.
    """
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            del sys.modules[name]
    # Import's directory listings are cached; a file written a moment ago may be missing.
    importlib.invalidate_caches()
    if "shelfwise" in packages and "sqlalchemy.orm" in sys.modules:
        from sqlalchemy.orm import clear_mappers

        clear_mappers()


@dataclass(frozen=True)
class ToolRun:
    """What a command run in the workspace returned and printed."""

    returncode: int
    output: str = field(repr=False)

    def _ipython_display_(self) -> None:
        """Show nothing: the output was printed already, as the command ran."""


@dataclass(frozen=True)
class TestRun:
    """What a pytest run reported."""

    passed: int
    failed: int
    skipped: int
    output: str = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def _ipython_display_(self) -> None:
        """Show nothing: pytest's report was printed already."""


# Missing and extra files first: they explain most of the diffs that follow.
_PROBLEM_ORDER = {"removed": 0, "added": 1, "changed": 2}


def diff_trees(expected: dict[str, Path], actual: dict[str, Path], label: str) -> list[str]:
    """A readable list of how the workspace (``actual``) differs from checkpoint ``label``."""
    problems = []
    changes = file_changes(expected, actual)
    for change in sorted(changes, key=lambda change: (_PROBLEM_ORDER[change.kind], change.path)):
        if change.kind == "removed":
            problems.append(
                f"missing: {change.path} is in {label} but the notebook did not write it"
            )
        elif change.kind == "added":
            problems.append(
                f"extra: {change.path} was written by the notebook but is not in {label}"
            )
        else:
            problems.append(
                f"differs: {change.path} (- {label}, + workspace)\n{change.diff.rstrip()}"
            )
    return problems


class Workspace:
    """A part's working copy of the application, on ``sys.path`` while the notebook runs.

    ``root`` is where files are written and tools run: the part's workspace, or its
    exercises copy after ``exercises()``. ``part_root`` is what ``check()`` checks.
    """

    def __init__(self, part_number: int, root: Path) -> None:
        self.part = get_part(part_number)
        self.root = root
        self.part_root = root
        self.start = checkpoint_dir(part_number - 1)
        # What this part has written so far, by file: a second write of a file in the same
        # part is reported against the first, so its cell shows what that step changed.
        self._written: dict[Path, str] = {}

    # -- writing files -------------------------------------------------------------

    def write(self, relative: str, text: str, *, show_diff: bool = False) -> None:
        """Write one application file and print one stable line about it."""
        path = self._app_path(relative)
        text = text.rstrip("\n") + "\n"
        previous = self._written.get(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self._written[path] = text
        _unload_after_change(relative)
        if previous is None:
            print(f"✎ {relative} — {self._change_summary(relative, text)}")
        else:
            print(f"✎ {relative} — {_changes(previous, text, 'its last write in this part')}")
        if show_diff and previous is not None:
            label = f"{self.part.name}/{relative}"
            _print_diff(previous, text, f"{label} (its last write)", label)
        elif show_diff:
            self.show_diff(relative)

    def remove(self, relative: str) -> None:
        """Delete an application file (or folder) the part no longer wants."""
        path = self._app_path(relative)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        _unload_after_change(relative)
        print(f"✗ {relative} — removed")

    def show_diff(self, relative: str) -> None:
        """Print what this part has changed in one file so far."""
        before = self._start_text(relative)
        after = self._app_path(relative).read_text(encoding="utf-8")
        start = "empty" if self.start is None else f"part-{self.part.number - 1:02d}"
        _print_diff(before, after, f"{start}/{relative}", f"{self.part.name}/{relative}")

    def _app_path(self, relative: str) -> Path:
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ValueError(
                f"{relative}: give a path inside the workspace, e.g. shelfwise/main.py"
            )
        if Path(relative).parts[0] not in (*APP_PATHS, SCRATCH_DIR):
            raise ValueError(
                f"{relative}: application files live under {', '.join(APP_PATHS)}; "
                f"throw-away files under {SCRATCH_DIR}/"
            )
        return self.root / relative

    def _start_text(self, relative: str) -> str:
        if self.start is None or not (self.start / relative).is_file():
            return ""
        return (self.start / relative).read_text(encoding="utf-8")

    def _change_summary(self, relative: str, text: str) -> str:
        before = self._start_text(relative)
        lines = len(text.splitlines())
        if not before:
            return f"new file, {_count(lines, 'line')}"
        return _changes(before, text, f"part {self.part.number - 1}")

    # -- running tools -------------------------------------------------------------

    def run(self, *command: str, quiet: bool = False) -> ToolRun:
        """Run a command in the workspace and print what it printed (and a failing exit code).

        Output is made machine-independent here: workspace paths become relative and
        pytest's durations are dropped.
        """
        result = subprocess.run(
            list(command),
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self._tool_env(),
            check=False,
        )
        output = (result.stdout + result.stderr).replace(str(self.root) + os.sep, "")
        output = _PYTEST_DURATION.sub("", output).rstrip("\n")
        if not quiet:
            _report(output, result.returncode)
        return ToolRun(result.returncode, output)

    def python(self, *args: str, quiet: bool = False) -> ToolRun:
        """Run ``python -m …`` with this environment's interpreter, in the workspace."""
        return self.run(sys.executable, *args, quiet=quiet)

    def mypy(self, *paths: str) -> ToolRun:
        """Type-check with mypy --strict, as CI does."""
        result = self.python(
            "-m", "mypy", "--strict", "--no-color-output", "--no-error-summary", *paths,
            quiet=True,
        )  # fmt: skip
        _report(result.output or "mypy --strict: no issues found", result.returncode)
        return result

    def lint_imports(self) -> ToolRun:
        """Check the import contracts in ``.importlinter``."""
        lint_imports = Path(sys.executable).with_name("lint-imports")
        result = self.run(str(lint_imports), "--no-cache", ".importlinter", quiet=True)
        # Skip import-linter's banner: the report starts at "Analyzed N files".
        _report(result.output[result.output.find("Analyzed") :].strip(), result.returncode)
        return result

    def pytest(self, *args: str, quiet: bool = False) -> TestRun:
        """Run the workspace's tests (or the ones named) and print pytest's report."""
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.xml"
            result = self.python(
                "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no",
                "-c", str(REPO_ROOT / "pyproject.toml"), "--rootdir", ".",
                f"--junitxml={report}", "-o", "junit_family=xunit2",
                *(args or ("tests",)),
                quiet=quiet,
            )  # fmt: skip
            counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
            if report.exists():
                suite = ET.parse(report).getroot()
                suite = suite if suite.tag == "testsuite" else suite[0]
                counts = {key: int(suite.get(key, "0")) for key in counts}
        failed = counts["failures"] + counts["errors"]
        passed = counts["tests"] - failed - counts["skipped"]
        return TestRun(passed, failed, counts["skipped"], result.output)

    def _tool_env(self) -> dict[str, str]:
        # The workspace's package must win over the finished one installed in the venv.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH")]))
        env.pop(RECORD_ENV, None)
        env.setdefault("MPLBACKEND", "Agg")
        # Jupyter asks child processes for colour; stored outputs must be plain text.
        # pytest and hypothesis print more when they detect CI; outputs must not depend on it.
        for name in (*_COLOUR_VARIABLES, *_CI_VARIABLES):
            env.pop(name, None)
        env["NO_COLOR"] = "1"
        env["COLUMNS"] = "80"
        # The fuzz run (part 8 on) is the slowest test; in a notebook a few examples per
        # operation show it working, and the root suite in CI spends the full budget.
        env.setdefault("SHELFWISE_FUZZ_EXAMPLES", "4")
        return env

    # -- exercises and the end-of-part check ---------------------------------------

    async def exercise(self, name: str, check: Callable[[], object | Awaitable[object]]) -> None:
        """Run an exercise's check and say whether it is solved (never raises)."""
        try:
            result = check()
            if inspect.isawaitable(result):
                await result
        except AssertionError as error:
            print(f"Exercise {name}: not solved yet — {error}")
        else:
            print(f"Exercise {name}: solved ✔")

    def exercises(self, *, keep: bool = False) -> None:
        """Work on the exercises in a copy of this workspace; the part's check stays strict."""
        root = WORKSPACES_DIR / f"{self.part.name}-exercises"
        if root.exists() and not keep:
            shutil.rmtree(root)
        if not root.exists():
            _copy_app(app_files(self.part_root), root)
        (root / SCRATCH_DIR).mkdir(parents=True, exist_ok=True)
        _enter(root, leave=self.root)
        self.root = root
        print(
            f"Exercises: {_display(root)} (a copy of your part {self.part.number} workspace) "
            f"is the current directory; ws.check() still checks {_display(self.part_root)}"
        )

    def check(self) -> None:
        """The end-of-part check: the workspace equals the part's checkpoint and its tests pass.

        Both are always reported: the file differences first (they usually explain the
        failing tests), then pytest's report.
        """
        from workbook.checkpoints import record_checkpoint

        part = copy.copy(self)
        part.root = self.part_root  # never the exercises copy
        run = part.pytest(quiet=True)
        expected = checkpoint_dir(self.part.number)
        assert expected is not None
        if run.ok and os.environ.get(RECORD_ENV):
            record_checkpoint(self.part_root, expected)
        problems = diff_trees(app_files(expected), app_files(self.part_root), self.part.name)
        failures = []
        if problems:
            where = "the repository root" if expected == REPO_ROOT else _display(expected)
            failures.append(
                f"your workspace does not match checkpoint {self.part.name} ({where}):\n"
                + "\n".join(problems)
            )
            if self.root == self.part_root and any(p.startswith("extra:") for p in problems):
                failures[-1] += "\n(exercises belong in their own copy: run ws.exercises() first)"
        if not run.ok:
            failed = f"{_count(run.failed, 'test')} failed" if run.failed else "no test passed"
            failures.append(f"{self.part.name}: {failed}:\n{run.output}")
        if failures:
            raise AssertionError("\n\n".join(failures))
        print(
            f"✔ workspace matches checkpoint {self.part.name} "
            f"({len(app_files(self.part_root))} files); {_count(run.passed, 'test')} passed"
        )


def _copy_app(files: dict[str, Path], root: Path) -> None:
    root.mkdir(parents=True)
    for relative, source in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _enter(root: Path, leave: Path | None = None) -> None:
    """Make ``root`` the current directory and the place imports come from."""
    os.chdir(root)
    if leave is not None and str(leave) in sys.path:
        sys.path.remove(str(leave))
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    unload_app_modules()


def start_part(number: int, *, keep: bool = False) -> Workspace:
    """Prepare the workspace for part ``number`` and make it the current directory.

    The workspace starts as a copy of checkpoint ``number - 1`` (empty for part 1) in
    ``.workspaces/part-NN``. An existing workspace is replaced unless ``keep=True``, so a
    part always starts from the reference state, not from an earlier attempt.
    """
    part = get_part(number)
    start = checkpoint_dir(number - 1)
    if start is not None and not start.is_dir():
        raise FileNotFoundError(
            f"checkpoint part-{number - 1:02d} has not been generated yet: run `make checkpoints`"
        )
    root = WORKSPACES_DIR / part.name
    if root.exists() and not keep:
        shutil.rmtree(root)
    if not root.exists():
        _copy_app(app_files(start), root)
    (root / SCRATCH_DIR).mkdir(exist_ok=True)
    workspace = Workspace(number, root)
    # A part's exercises copy from an earlier run must not shadow the part's own files.
    _enter(root, leave=WORKSPACES_DIR / f"{part.name}-exercises")
    _register_magics(workspace)
    origin = "an empty workspace" if start is None else f"checkpoint part-{number - 1:02d}"
    print(
        f"Part {number}: workspace {_display(root)} "
        f"(from {origin}, {len(app_files(root))} files) is the current directory"
    )
    return workspace


def _register_magics(workspace: Workspace) -> None:
    try:
        from IPython.core.getipython import get_ipython
    except ImportError:
        return
    shell: Any = get_ipython()
    if shell is None:
        return

    def code(line: str, cell: str) -> None:
        """%%code PATH [--diff]: write the cell into the workspace file PATH."""
        args = shlex.split(line)
        show_diff = "--diff" in args
        paths = [arg for arg in args if arg != "--diff"]
        if len(paths) != 1:
            raise ValueError("usage: %%code PATH [--diff]")
        workspace.write(paths[0], cell, show_diff=show_diff)

    shell.register_magic_function(code, magic_kind="cell", magic_name="code")


def _changes(before: str, after: str, since: str) -> str:
    """How ``after`` differs from ``before``, in lines, as one phrase."""
    if before == after:
        return f"unchanged since {since}"
    added = removed = 0
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        added += line.startswith("+ ")
        removed += line.startswith("- ")
    return f"changed since {since}: +{added} −{removed} lines"


def _print_diff(before: str, after: str, from_label: str, to_label: str) -> None:
    diff = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), from_label, to_label
    )
    print("".join(diff).rstrip("\n") or f"{to_label}: unchanged")
