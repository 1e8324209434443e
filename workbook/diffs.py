"""How two sets of application files differ: one diff, for the site and for the check."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ChangeKind = Literal["added", "changed", "removed"]


@dataclass(frozen=True)
class FileChange:
    """How one application file differs between two checkpoints."""

    path: str
    kind: ChangeKind
    diff: str  # unified diff, or a one-line note for a binary file
    added: int
    removed: int


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def file_changes(before: dict[str, Path], after: dict[str, Path]) -> list[FileChange]:
    """Every file added, changed or removed between two sets of application files."""
    changes: list[FileChange] = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old is not None and new is not None and old.read_bytes() == new.read_bytes():
            continue
        kind: ChangeKind = "added" if old is None else "removed" if new is None else "changed"
        header = [
            "--- /dev/null\n" if old is None else f"--- a/{path}\n",
            "+++ /dev/null\n" if new is None else f"+++ b/{path}\n",
        ]
        old_text = "" if old is None else _read_text(old)
        new_text = "" if new is None else _read_text(new)
        if old_text is None or new_text is None:
            changes.append(FileChange(path, kind, "".join([*header, "Binary file\n"]), 0, 0))
            continue
        hunks = list(
            difflib.unified_diff(
                old_text.splitlines(keepends=True), new_text.splitlines(keepends=True), n=3
            )
        )[2:]  # difflib's own ---/+++ lines: replaced by the git-style header
        if not hunks:
            hunks = ["(empty file)\n"]
        text = "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in [*header, *hunks]
        )
        added = sum(1 for line in hunks if line.startswith("+"))
        removed = sum(1 for line in hunks if line.startswith("-"))
        changes.append(FileChange(path, kind, text, added, removed))
    return changes
