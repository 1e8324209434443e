"""Regenerate the checkpoints and the stored notebook outputs from the notebooks.

Recording twice leaves no diff: stream outputs are stored joined (how a kernel chunks
them depends on timing), and a cell whose output is a measurement is tagged ``measured``
in its metadata, so that nbval does not compare it (``notebooks/conftest.py``).
``determinism_problems`` checks both on the stored notebooks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from workbook.parts import (
    APP_PATHS,
    CHECKPOINTS_DIR,
    REPO_ROOT,
    Part,
    all_parts,
    app_files,
    checkpoint_dir,
)

# The cell tag for outputs that are measurements (timings, throughput, plots of them).
MEASURED_TAG = "measured"


def join_streams(outputs: list[Any]) -> list[Any]:
    """Join consecutive stream outputs of the same name (stdout, stderr) into one.

    Where a kernel splits a cell's printing into chunks depends on timing; the text does not.
    """
    joined: list[Any] = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and output["output_type"] == previous["output_type"] == "stream"
            and output["name"] == previous["name"]
        ):
            previous["text"] = _text(previous["text"]) + _text(output["text"])
        else:
            joined.append(output)
    return joined


def _text(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "".join(text)


def determinism_problems(notebook: Path) -> list[str]:
    """What in a stored notebook would change if it were recorded again.

    Two consecutive stream outputs of the same name (recording joins them), and an image in
    a cell not tagged ``measured`` (a plot here is a plot of measurements). Timings printed as
    text cannot be told from constants ("timeout after 0.05 s"); tagging those is the
    author's part, and printing a comparison ("faster: True") instead is better still.
    """
    problems = []
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code_cells = [cell for cell in cells if cell["cell_type"] == "code"]
    for number, cell in enumerate(code_cells, start=1):
        where = f"{notebook.name}, code cell {number}"
        outputs = cell.get("outputs", [])
        if len(join_streams([dict(output) for output in outputs])) != len(outputs):
            problems.append(f"{where}: consecutive stream outputs of the same name")
        if MEASURED_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for output in outputs:
            data = output.get("data", {})
            if "image/png" in data or "image/svg+xml" in data:
                problems.append(f"{where}: an image output, not tagged {MEASURED_TAG!r}")
                break
    return problems


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
        if cell.cell_type == "code":
            cell.outputs = join_streams(cell.outputs)
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
