"""How nbval sees the notebooks: only parts run, and measurements are not compared."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from workbook.checkpoints import MEASURED_TAG
from workbook.parts import QUIET_ENV, ignored_message, ignored_notebooks, part_match

# The summary below names the ignored notebooks once; kernels started by this run (which
# inherit the environment) must not print it into outputs that nbval compares.
os.environ[QUIET_ENV] = "1"


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    # A learner's copy of part 4 would run in part 4's workspace beside the original.
    if collection_path.suffix == ".ipynb" and part_match(collection_path) is None:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A measurement differs on every run; the one place its stored output is not compared.
    for item in items:
        cell: Any = getattr(item, "cell", None)
        if cell is not None and MEASURED_TAG in cell.metadata.get("tags", []):
            item.options["check"] = False  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in ignored_notebooks():
        terminalreporter.write_line(ignored_message(path))
