"""Where things live: the parts, their checkpoints and the application paths."""

from __future__ import annotations

import json
import re
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

_NOTEBOOK_NAME = re.compile(r"^part-(\d{2})-([a-z0-9-]+)\.ipynb$")


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


def all_parts() -> list[Part]:
    """Every part that has a notebook, in order."""
    parts = []
    for path in sorted(NOTEBOOKS_DIR.glob("part-*.ipynb")):
        match = _NOTEBOOK_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path.name}: notebooks are named part-NN-<slug>.ipynb")
        parts.append(Part(int(match[1]), match[2], path))
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
