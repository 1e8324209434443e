"""Regenerate the checkpoints and the stored notebook outputs from the notebooks."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from workbook.parts import (
    APP_PATHS,
    CHECKPOINTS_DIR,
    REPO_ROOT,
    Part,
    all_parts,
    app_files,
    checkpoint_dir,
)


def record_checkpoint(workspace: Path, target: Path) -> None:
    """Replace the application files in ``target`` with the workspace's."""
    for top in APP_PATHS:
        existing = target / top
        if existing.is_dir():
            shutil.rmtree(existing)
        elif existing.exists():
            existing.unlink()
    for relative, source in app_files(workspace).items():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


def execute_notebook(part: Part) -> None:
    """Run a notebook top to bottom in a fresh kernel and store its outputs."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(part.notebook, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(part.notebook.parent)}},
        record_timing=False,
    )
    client.execute()
    # Keep only metadata that does not depend on the machine that ran it.
    notebook.metadata["language_info"] = {"name": "python"}
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, part.notebook)  # type: ignore[no-untyped-call]


def record(first: int = 1) -> None:
    """Execute parts ``first``… in order; each end-of-part check stores its checkpoint."""
    parts = all_parts()
    start = checkpoint_dir(first - 1)
    if start is not None and not start.is_dir():
        raise SystemExit(f"checkpoint part-{first - 1:02d} is missing: record from an earlier part")
    os.environ["WORKBOOK_RECORD"] = "1"
    for part in parts[first - 1 :]:
        started = time.monotonic()
        print(f"{part.name}: executing {part.notebook.relative_to(REPO_ROOT)} …", flush=True)
        execute_notebook(part)
        print(f"{part.name}: done in {time.monotonic() - started:.0f} s", flush=True)
    # The last part lives at the root; older checkpoints of it are stale.
    for stale in CHECKPOINTS_DIR.glob("part-*"):
        if int(stale.name.removeprefix("part-")) >= len(parts):
            shutil.rmtree(stale)
