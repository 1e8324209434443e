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


def test_a_second_write_in_a_part_is_reported_against_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = Workspace(2, tmp_path)
    workspace.write("shelfwise/extra.py", "a = 1\nb = 2\n")
    capsys.readouterr()

    workspace.write("shelfwise/extra.py", "a = 1\nb = 3\nc = 4\n", show_diff=True)

    summary, *diff = capsys.readouterr().out.splitlines()
    assert summary == (
        "✎ shelfwise/extra.py — changed since its last write in this part: +2 −1 lines"
    )
    assert [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "-b = 2",
        "+b = 3",
        "+c = 4",
    ]


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


# --- discovery ---------------------------------------------------------------------------


def test_copies_and_stray_notebooks_are_ignored_and_named_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import workbook.parts

    for name in (
        "part-01-structure.ipynb",
        "part-02-service-layer.ipynb",
        "part-02-service-layer-Copy1.ipynb",  # JupyterLab's "Duplicate"
        "part-02-service-layer-copy2.ipynb",  # a valid slug, but still a copy
        "Untitled.ipynb",
        ".ipynb_checkpoints/part-01-structure-checkpoint.ipynb",
    ):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}", encoding="utf-8")
    monkeypatch.setattr(workbook.parts, "NOTEBOOKS_DIR", tmp_path.resolve())
    monkeypatch.delenv(workbook.parts.QUIET_ENV, raising=False)
    assert [(part.number, part.slug) for part in all_parts()] == [
        (1, "structure"),
        (2, "service-layer"),
    ]
    all_parts()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line.split(":")[0] for line in captured.err.splitlines()] == [
        f"ignoring {tmp_path}/Untitled.ipynb",
        f"ignoring {tmp_path}/part-02-service-layer-Copy1.ipynb",
        f"ignoring {tmp_path}/part-02-service-layer-copy2.ipynb",
    ]


def test_nbval_skips_copies_and_does_not_compare_measurements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    from types import SimpleNamespace

    from workbook.parts import NOTEBOOKS_DIR, QUIET_ENV

    monkeypatch.setenv(QUIET_ENV, "")  # importing the conftest sets it; restored afterwards
    spec = importlib.util.spec_from_file_location("nbval_conftest", NOTEBOOKS_DIR / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    assert conftest.pytest_ignore_collect(NOTEBOOKS_DIR / "part-04-service-layer-Copy1.ipynb")
    assert conftest.pytest_ignore_collect(all_parts()[0].notebook) is None
    measured = SimpleNamespace(cell=SimpleNamespace(metadata={"tags": ["measured"]}), options={})
    plain = SimpleNamespace(cell=SimpleNamespace(metadata={}), options={})
    conftest.pytest_collection_modifyitems([measured, plain])
    assert measured.options == {"check": False}
    assert plain.options == {}


# --- the end-of-part check and exercises --------------------------------------------------


def _part_one_workspace(root: Path) -> Workspace:
    for relative, source in app_files(checkpoint_dir(1)).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(source.read_bytes())
    return Workspace(1, root)


def test_a_failed_check_shows_the_differing_files_then_the_failing_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = _part_one_workspace(tmp_path)
    workspace.write("tests/test_wrong.py", "def test_wrong() -> None:\n    assert 1 == 2")
    with pytest.raises(AssertionError) as failure:
        workspace.check()
    message = str(failure.value)
    assert message.startswith("your workspace does not match checkpoint part-01")
    assert "extra: tests/test_wrong.py" in message
    assert "run ws.exercises() first" in message
    assert message.index("extra: tests/test_wrong.py") < message.index("part-01: 1 test failed")
    assert "test_wrong" in message.split("part-01: 1 test failed")[1]


@pytest.mark.usefixtures("restore_process_state")
def test_exercises_work_in_a_copy_and_the_part_check_stays_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import workbook.workspace

    monkeypatch.setattr(workbook.workspace, "WORKSPACES_DIR", tmp_path)
    workspace = _part_one_workspace(tmp_path / "part-01")
    workspace.exercises()
    copy = tmp_path / "part-01-exercises"
    assert (Path.cwd(), sys.path[0]) == (copy, str(copy))
    assert capsys.readouterr().out.startswith("Exercises: ")
    # Exercise 1.1: a new feature package and an edited contract file.
    workspace.write("shelfwise/shipping/__init__.py", '"""Shipping."""')
    workspace.write(".importlinter", (copy / ".importlinter").read_text() + "# shipping\n")
    assert (copy / "shelfwise/shipping/__init__.py").is_file()
    assert not (tmp_path / "part-01/shelfwise/shipping").exists()
    workspace.check()
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("✔ workspace matches checkpoint part-01")


# --- deterministic recording --------------------------------------------------------------


def test_recording_joins_consecutive_streams_of_the_same_name() -> None:
    from workbook.checkpoints import join_streams

    def stream(name: str, text: str) -> dict[str, str]:
        return {"output_type": "stream", "name": name, "text": text}

    figure = {"output_type": "display_data", "data": {"image/png": ""}}
    outputs = [
        stream("stdout", "a\n"),
        stream("stdout", "b\n"),
        stream("stderr", "!\n"),
        stream("stdout", "c\n"),
        figure,
        stream("stdout", "d\n"),
    ]
    assert join_streams(outputs) == [
        stream("stdout", "a\nb\n"),
        stream("stderr", "!\n"),
        stream("stdout", "c\n"),
        figure,
        stream("stdout", "d\n"),
    ]


def test_determinism_problems_name_split_streams_and_untagged_images(tmp_path: Path) -> None:
    from workbook.checkpoints import determinism_problems

    image = {"output_type": "display_data", "data": {"image/png": "", "text/plain": ""}}
    text = {"output_type": "stream", "name": "stdout", "text": "x\n"}
    cells = [
        {"cell_type": "markdown", "source": "", "metadata": {}},
        {"cell_type": "code", "metadata": {}, "outputs": [text, text]},
        {"cell_type": "code", "metadata": {}, "outputs": [image]},
        {"cell_type": "code", "metadata": {"tags": ["measured"]}, "outputs": [image]},
        {"cell_type": "code", "metadata": {}, "outputs": [text, image, text]},
    ]
    notebook = tmp_path / "part-01-x.ipynb"
    notebook.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    assert determinism_problems(notebook) == [
        "part-01-x.ipynb, code cell 1: consecutive stream outputs of the same name",
        "part-01-x.ipynb, code cell 2: an image output, not tagged 'measured'",
        "part-01-x.ipynb, code cell 4: an image output, not tagged 'measured'",
    ]


@pytest.mark.parametrize("part", all_parts(), ids=lambda part: part.name)
def test_recording_again_would_not_change_the_stored_outputs(part: Part) -> None:
    from workbook.checkpoints import determinism_problems

    problems = determinism_problems(part.notebook)
    assert not problems, "\n".join(problems)


# --- entry points ---------------------------------------------------------------------------


def test_serve_names_the_folder_of_a_part_and_refuses_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from workbook.__main__ import main

    last = len(all_parts())
    assert main(["app-dir", "1"]) == 0
    assert main(["app-dir", str(last)]) == 0
    assert capsys.readouterr().out.splitlines() == ["checkpoints/part-01", "."]
    for wrong in ("0", str(last + 1), "five", "-1"):
        assert main(["app-dir", wrong]) == 2
        assert capsys.readouterr().err == (
            f"PART must be a part number, 1 to {last}; got {wrong!r}\n"
        )


def test_the_site_check_finds_chrome_by_any_of_its_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbook.browser import find_browser

    chrome = tmp_path / "google-chrome-stable"
    chrome.write_text("#!/bin/sh\n")
    chrome.chmod(0o755)
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser() == str(chrome)
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "missing"))
    assert find_browser() is None


def test_setup_refuses_an_old_python_in_one_line(tmp_path: Path) -> None:
    import subprocess

    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\ncase "$2" in *print*) echo 3.9;; *) exit 1;; esac\n')
    old.chmod(0o755)
    # A throw-away VENV: the check must come before anything touches a virtual environment.
    result = subprocess.run(
        ["make", "--no-print-directory", "setup", f"PYTHON={old}", f"VENV={tmp_path}/venv"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == (
        f"make setup: ShelfWise needs Python 3.11 or newer; {old} is 3.9 "
        "(install one, or run make setup PYTHON=/path/to/python3.11)\n"
    )
    assert not (tmp_path / "venv").exists()


def test_the_readme_says_how_many_parts_are_written() -> None:
    import re

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    status = re.search(r"\*\*Status: (\d+) of 24 parts are written\.\*\*", readme)
    assert status is not None, "README.md states how many parts are written"
    assert int(status[1]) == len(all_parts())
