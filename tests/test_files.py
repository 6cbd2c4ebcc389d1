"""textshift.files: every write is complete or absent, folder swaps put the old folder back on failure, and no
other module renames files into place itself."""

import ast
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from textshift.data import atomic_write_frame, read_labeled
from textshift.files import atomic_write, recover_interrupted_swap, remove_folder, replace_file, swap_folder

SRC = Path(__file__).resolve().parents[1] / "src" / "textshift"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_the_file_only_when_the_block_completes(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old\n")
    with atomic_write(path, encoding="utf-8") as handle:
        handle.write("new, ")
        assert path.read_text() == "old\n"  # nothing visible under the real name while writing
        handle.write("complete\n")
    assert path.read_text() == "new, complete\n"
    assert _names(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("mode, payload", [("w", "half a line"), ("wb", b"\x00half")])
def test_an_error_inside_atomic_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, mode, payload):
    path = tmp_path / "notes.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_write(path, mode) as handle:
        handle.write(payload)
        raise RuntimeError("disk on fire")
    assert path.read_text() == "old\n"
    assert _names(tmp_path) == ["notes.txt"]


def test_an_error_inside_atomic_write_creates_nothing_when_there_was_no_file(tmp_path):
    with pytest.raises(KeyError), atomic_write(tmp_path / "new.bin", "wb") as handle:
        handle.write(b"partial")
        raise KeyError("boom")
    assert _names(tmp_path) == []


def test_atomic_write_refuses_modes_that_do_not_write_a_whole_file(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'; got 'a'"), atomic_write(tmp_path / "x", "a"):
        pass
    assert _names(tmp_path) == []


def test_two_atomic_writes_to_one_path_use_distinct_temporary_files(tmp_path):
    path = tmp_path / "x.txt"
    with atomic_write(path) as first, atomic_write(path) as second:
        assert first.name != second.name
        assert Path(first.name).name.startswith(".x.txt.tmp-")  # the pattern textshift.locks cleans up
        first.write("first")
        second.write("second")
    assert path.read_text() == "first" and _names(tmp_path) == ["x.txt"]  # the write that completes last wins


@pytest.mark.parametrize("name", ["rows.csv", "rows.csv.gz", "rows.tsv.bz2", "rows.jsonl.xz", "rows.parquet"])
def test_atomic_write_frame_writes_every_format_through_atomic_write(tmp_path, name):
    frame = pd.DataFrame({"text": ["a bill, with a comma", "é"], "label": ["x", "y"]})
    atomic_write_frame(frame, tmp_path / name)
    assert _names(tmp_path) == [name]
    data = read_labeled(tmp_path / name)
    assert data.texts == frame["text"].tolist() and data.labels == frame["label"].tolist()


def test_replace_file_promotes_a_finished_temporary_file(tmp_path):
    (tmp_path / "rows.csv").write_text("old\n")
    (tmp_path / ".rows.csv.partial").write_text("row\n0\n")
    replace_file(tmp_path / ".rows.csv.partial", tmp_path / "rows.csv")
    assert (tmp_path / "rows.csv").read_text() == "row\n0\n" and _names(tmp_path) == ["rows.csv"]


def _folder(path: Path, content: str) -> Path:
    path.mkdir()
    (path / "v.txt").write_text(content)
    return path


@pytest.mark.parametrize("existing", [False, True])
def test_swap_folder_puts_the_new_folder_in_place_and_leaves_nothing_else(tmp_path, existing):
    if existing:
        _folder(tmp_path / "report", "old")
    swap_folder(_folder(tmp_path / ".report.tmp-1", "new"), tmp_path / "report")
    assert (tmp_path / "report" / "v.txt").read_text() == "new"
    assert _names(tmp_path) == ["report"]


def test_a_folder_swap_failing_midway_puts_the_old_folder_back(tmp_path):
    """A staging folder on another file system cannot be renamed into place: the atomic exchange fails, the old
    folder is moved aside, the second rename fails for real (EXDEV), and the old folder must come back."""
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm")) if Path("/dev/shm").is_dir() else None
    if elsewhere is None or os.stat(elsewhere).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system (/dev/shm) to make a rename fail")
    try:
        target = _folder(tmp_path / "report", "old")
        staging = _folder(elsewhere / ".report.tmp-1", "new")
        with pytest.raises(OSError):
            swap_folder(staging, target)
        assert (target / "v.txt").read_text() == "old"
        assert _names(tmp_path) == ["report"]  # no .report.old-* left behind
        assert (staging / "v.txt").read_text() == "new"  # the caller still owns (and removes) its staging folder
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_a_swap_killed_between_its_two_renames_is_recovered(tmp_path):
    target = tmp_path / "report"
    assert not recover_interrupted_swap(target)  # nothing to recover
    older = _folder(tmp_path / ".report.old-00000000", "older")
    os.utime(older, (1, 1))
    _folder(tmp_path / ".report.old-11111111", "newest")
    _folder(tmp_path / ".report.old-22222222", "not accepted")
    accept = lambda folder: (folder / "v.txt").read_text() != "not accepted"  # noqa: E731
    assert recover_interrupted_swap(target, accept=accept)
    assert (target / "v.txt").read_text() == "newest"
    assert not recover_interrupted_swap(target, accept=accept)  # the folder exists: nothing is touched


def test_remove_folder_deletes_it_after_moving_it_aside(tmp_path):
    folder = _folder(tmp_path / "run.checkpoint", "state")
    remove_folder(folder, aside=tmp_path / ".run.tmp-checkpoint-1")
    assert _names(tmp_path) == []


def _renames(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in {("os", "replace"), ("os", "rename"), ("os", "renames"),
                                              ("shutil", "move")}:
                found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "shutil"):
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if a.name in ("replace", "rename", "renames", "move")]
    return found


def test_no_module_but_files_renames_files_into_place():
    modules = sorted(SRC.rglob("*.py"))
    assert SRC / "files.py" in modules and _renames(ast.parse((SRC / "files.py").read_text()))  # the scan sees them
    offenders = {str(path.relative_to(SRC)): found for path in modules if path != SRC / "files.py"
                 if (found := _renames(ast.parse(path.read_text())))}
    assert offenders == {}, "use textshift.files (atomic_write, replace_file, swap_folder) instead"
