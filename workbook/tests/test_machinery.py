"""The workbook's invariants: every checkpoint comes from a notebook, and drift is caught."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbook.parts import (
    APP_PATHS,
    CHECKPOINTS_DIR,
    REPO_ROOT,
    Part,
    all_parts,
    app_files,
    checkpoint_dir,
)
from workbook.workspace import Workspace, diff_trees, start_part


def test_there_is_one_checkpoint_per_part_before_the_last() -> None:
    parts = all_parts()
    stored = sorted(path.name for path in CHECKPOINTS_DIR.glob("*") if path.is_dir())
    assert stored == [part.name for part in parts[:-1]]
    assert checkpoint_dir(len(parts)) == REPO_ROOT


@pytest.mark.parametrize("part", all_parts()[:-1], ids=lambda part: part.name)
def test_checkpoints_hold_only_application_files(part: Part) -> None:
    folder = CHECKPOINTS_DIR / part.name
    assert {entry.name for entry in folder.iterdir()} <= set(APP_PATHS)
    assert app_files(folder), f"{folder} is empty"


@pytest.mark.parametrize("part", all_parts(), ids=lambda part: part.name)
def test_every_code_cell_was_executed_when_recorded(part: Part) -> None:
    notebook = json.loads(part.notebook.read_text(encoding="utf-8"))
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    counts = [cell["execution_count"] for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), (
        "run `make checkpoints`: some cells were not executed in order"
    )
    first = "".join(code_cells[0]["source"])
    assert f"start_part({part.number})" in first, "the first code cell prepares the workspace"
    checks = [cell for cell in code_cells if "ws.check()" in "".join(cell["source"])]
    assert len(checks) == 1, "each part has exactly one end-of-part check cell"


def _tree(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return app_files(root)


def test_drift_names_the_part_and_each_file(tmp_path: Path) -> None:
    expected = _tree(
        tmp_path / "checkpoint",
        {"shelfwise/a.py": "x = 1\n", "shelfwise/gone.py": "", "tests/t.py": "pass\n"},
    )
    actual = _tree(
        tmp_path / "workspace",
        {"shelfwise/a.py": "x = 2\n", "shelfwise/new.py": "", "tests/t.py": "pass\n"},
    )
    problems = diff_trees(expected, actual, "part-07")
    assert problems[0].startswith("missing: shelfwise/gone.py is in part-07")
    assert problems[1].startswith("extra: shelfwise/new.py was written by the notebook")
    assert problems[2].splitlines()[:3] == [
        "differs: shelfwise/a.py (- part-07, + workspace)",
        "--- a/shelfwise/a.py",
        "+++ b/shelfwise/a.py",
    ]
    assert "-x = 1" in problems[2] and "+x = 2" in problems[2]
    assert diff_trees(expected, expected, "part-07") == []


def test_caches_are_not_application_files(tmp_path: Path) -> None:
    files = _tree(
        tmp_path,
        {
            "shelfwise/a.py": "",
            "shelfwise/__pycache__/a.cpython-311.pyc": "",
            "tests/.hypothesis/x": "",
            "scratch/notes.py": "",
        },
    )
    assert list(files) == ["shelfwise/a.py"]


@pytest.fixture
def restore_process_state() -> Iterator[None]:
    cwd, path = Path.cwd(), list(sys.path)
    yield
    os.chdir(cwd)
    sys.path[:] = path


@pytest.mark.usefixtures("restore_process_state")
def test_a_part_starts_from_the_previous_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    last = len(all_parts())
    workspace = start_part(last)
    assert Path.cwd() == workspace.root
    assert sys.path[0] == str(workspace.root)
    previous = app_files(checkpoint_dir(last - 1))
    assert list(app_files(workspace.root)) == list(previous)
    assert capsys.readouterr().out.startswith(f"Part {last}: workspace .workspaces/")


@pytest.mark.usefixtures("restore_process_state")
def test_writes_stay_inside_the_application(capsys: pytest.CaptureFixture[str]) -> None:
    workspace = start_part(1)
    for bad in ("../escape.py", "/tmp/x.py", "notes.txt"):
        with pytest.raises(ValueError):
            workspace.write(bad, "x = 1")
    workspace.write("scratch/demo.py", "x = 1")
    assert "scratch/demo.py" not in app_files(workspace.root)
    workspace.write("shelfwise/extra.py", "x = 1\n\n\n")
    assert (workspace.root / "shelfwise/extra.py").read_text() == "x = 1\n"
    assert capsys.readouterr().out.endswith("✎ shelfwise/extra.py — new file, 1 line\n")


def test_workspace_reports_changes_against_the_part_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = Workspace(2, tmp_path)
    start = app_files(checkpoint_dir(1))
    name, source = next(iter(start.items()))
    workspace.write(name, source.read_text(encoding="utf-8") + "# more\n")
    assert capsys.readouterr().out == f"✎ {name} — changed since part 1: +1 −0 lines\n"


def test_record_refuses_a_part_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    from workbook.__main__ import main

    assert main(["record", "--from", "99"]) == 2
    assert capsys.readouterr().err.startswith("python -m workbook: --from must be between 1 and")


def test_start_part_names_the_parts_that_exist() -> None:
    with pytest.raises(ValueError, match=r"there is no part 99; parts are 1–\d+"):
        start_part(99)


@pytest.mark.parametrize("part", all_parts(), ids=lambda part: part.name)
def test_stored_outputs_do_not_depend_on_the_machine(part: Part) -> None:
    notebook = json.loads(part.notebook.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = json.dumps(output)
            assert str(REPO_ROOT) not in text, f"an absolute path in {part.name}: {text[:200]}"
            assert "0x7f" not in text, f"a memory address in {part.name}: {text[:200]}"


def test_tools_print_the_same_in_ci_as_on_a_laptop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("FORCE_COLOR", "1")
    workspace = Workspace(1, tmp_path)
    result = workspace.python(
        "-c",
        "import os; print(sorted(k for k in ('CI', 'FORCE_COLOR') if k in os.environ))",
        quiet=True,
    )
    assert result.output == "[]"
