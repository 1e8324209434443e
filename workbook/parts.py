"""Where things live: the parts, their checkpoints and the application paths."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
WORKSPACES_DIR = REPO_ROOT / ".workspaces"

# What a checkpoint holds: the application a part has built, nothing else.
APP_PATHS = ("shelfwise", "tests", ".importlinter")

# Generated files that never belong to a checkpoint.
IGNORED_NAMES = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".import_linter_cache",
        ".hypothesis",
        ".ipynb_checkpoints",
        ".coverage",
    }
)

# part-NN-slug.ipynb, the slug lowercase words joined by single hyphens.
_NOTEBOOK_NAME = re.compile(r"^part-(\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.ipynb$")
# JupyterLab's "Duplicate" (and classic Jupyter's "Make a Copy") append "-Copy1"; a lowercase
# "-copy1" would pass as a slug, so copies are named and refused explicitly.
_COPY_SUFFIX = re.compile(r"-copy\d*$", re.IGNORECASE)
# Set once a process has said which notebooks it ignores. Kernels inherit it, so the line
# never lands in a stored output (`make checkpoints`) or in an nbval run's outputs.
QUIET_ENV = "WORKBOOK_IGNORED_REPORTED"


@dataclass(frozen=True)
class Part:
    """One part of the workbook: a notebook and the checkpoint it produces."""

    number: int
    slug: str
    notebook: Path

    @property
    def name(self) -> str:
        """``part-04``: the name of the part's checkpoint."""
        return f"part-{self.number:02d}"

    @cached_property
    def title(self) -> str:
        """The first heading of the notebook's first markdown cell."""
        cells = json.loads(self.notebook.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
        return self.slug.replace("-", " ").capitalize()


def part_match(path: Path) -> re.Match[str] | None:
    """The name match if ``path`` is a part's notebook, ``None`` for anything else.

    Anything else: a copy (``part-04-service-layer-Copy1.ipynb``), a learner's own notebook,
    or anything under ``.ipynb_checkpoints/`` (JupyterLab's autosaves).
    """
    if path.parent.resolve() != NOTEBOOKS_DIR or _COPY_SUFFIX.search(path.stem):
        return None
    return _NOTEBOOK_NAME.match(path.name)


def ignored_notebooks() -> list[Path]:
    """The notebooks in ``notebooks/`` that are not parts (copies, a learner's own)."""
    return [path for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")) if part_match(path) is None]


def ignored_message(path: Path) -> str:
    return f"ignoring {_display(path)}: not a part (parts are named part-NN-slug.ipynb)"


def report_ignored(paths: list[Path]) -> None:
    """Say once per process (and its children), on stderr, which notebooks are not parts.

    stderr, not ``warnings.warn``: test runs turn warnings into errors, and a learner's copy
    of a notebook must not break them.
    """
    if paths and not os.environ.get(QUIET_ENV):
        for path in paths:
            print(ignored_message(path), file=sys.stderr)
        os.environ[QUIET_ENV] = "1"


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def all_parts() -> list[Part]:
    """Every part that has a notebook, in order; other notebooks are reported and ignored."""
    parts, ignored = [], []
    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        match = part_match(path)
        if match is None:
            ignored.append(path)
        else:
            parts.append(Part(int(match[1]), match[2], path))
    report_ignored(ignored)
    numbers = [part.number for part in parts]
    if numbers != list(range(1, len(parts) + 1)):
        raise ValueError(f"parts must be numbered 1, 2, 3… without gaps, found {numbers}")
    return parts


def get_part(number: int) -> Part:
    """The part with this number."""
    parts = all_parts()
    if not 1 <= number <= len(parts):
        raise ValueError(f"there is no part {number}; parts are 1–{len(parts)}")
    return parts[number - 1]


def checkpoint_dir(number: int) -> Path | None:
    """Where the application after part ``number`` is stored.

    Part 0 is the empty start (``None``). The last written part's checkpoint is the
    repository root itself, so the finished application is never stored twice.
    """
    if number == 0:
        return None
    if number == len(all_parts()):
        return REPO_ROOT
    return CHECKPOINTS_DIR / f"part-{number:02d}"


def app_files(root: Path | None) -> dict[str, Path]:
    """The application files under ``root``, keyed by their POSIX path relative to it."""
    if root is None:
        return {}
    files: dict[str, Path] = {}
    for top in APP_PATHS:
        start = root / top
        if start.is_file():
            files[top] = start
        elif start.is_dir():
            for path in start.rglob("*"):
                relative = path.relative_to(root)
                ignored = IGNORED_NAMES.intersection(relative.parts) or path.suffix == ".pyc"
                if path.is_file() and not ignored:
                    files[relative.as_posix()] = path
    return dict(sorted(files.items()))
