"""Every command that writes checks its output first: foreign files are never replaced, and an output that
cannot be written fails within seconds with one line and exit code 2 (textshift.outputs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

FAST = ["--epochs", "1", "--warmup-epochs", "1"]
LIMIT_S = 10


@pytest.fixture()
def read_only(tmp_path):
    """An existing folder nothing can be created in: mode 0o555, or (as root, whom modes do not stop) immutable."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)],
                                                        capture_output=True).returncode != 0:
        pytest.skip("running as root where no folder can be made read-only (no chattr +i)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def _refused(run_cli, *argv, words: str = "") -> str:
    started = time.perf_counter()
    result = run_cli(*argv)
    seconds = time.perf_counter() - started
    assert result.exit_code == 2, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and words in result.stderr, result.stderr
    assert seconds < LIMIT_S, f"refused after {seconds:.1f}s; expected within {LIMIT_S}s (before the long work)"
    return result.stderr


def _commands(c: dict, out: Path, *, file_out: Path) -> dict[str, list]:
    """argv of every writing command with ``out`` as its folder output or ``file_out`` as its file output."""
    return {
        "train": ["train", c["news"], "-o", out, "--backbone", c["backbone"], *FAST],
        "transfer": ["transfer", c["model"], c["bills"], "-o", out, "--strategy", "finetune", "--epochs", "1"],
        "grow": ["grow", c["model"], c["bills"], "-o", out, "--epochs", "1"],
        "inspect": ["inspect", c["news"], "-o", out, "--backbone", c["backbone"], "--folds", "2"],
        "compare": ["compare", c["model"], c["bills"], "-o", out, "--sizes", "20", "--seeds", "1", "--epochs", "1"],
        "demo": ["demo", "-o", out, "--backbone", c["backbone"], "--epochs", "1", "--sizes", "20"],
        "predict": ["predict", c["model"], c["bills"], "-o", file_out.with_suffix(".csv")],
        "evaluate": ["evaluate", c["model"], c["bills"], "--confusion", file_out.with_suffix(".png")],
        "data-export": ["data", "export", "bills-test", file_out.with_suffix(".csv")],
        "review-export": ["review", c["bills"], "--export", file_out.with_suffix(".csv")],
    }


@pytest.fixture()
def inputs(news_model, small_news, small_bills, tiny_backbone) -> dict:
    return {"model": news_model, "news": small_news, "bills": small_bills, "backbone": tiny_backbone}


FOLDER_COMMANDS = ["train", "transfer", "grow", "inspect", "compare", "demo"]
FILE_COMMANDS = ["predict", "evaluate", "data-export", "review-export"]


@pytest.mark.parametrize("command", FOLDER_COMMANDS + FILE_COMMANDS)
def test_overwrite_never_replaces_a_foreign_output(command, inputs, tmp_path, run_cli):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.txt").write_text("four years of work")
    mine = tmp_path / "mine"
    for suffix in (".csv", ".png"):  # a file of the user's, where a file output goes
        mine.with_suffix(suffix).write_text("name,grade\nnot written by textshift\n"
                                            if suffix == ".csv" else "my holiday picture")
    argv = _commands(inputs, folder, file_out=mine)[command]
    overwrite = [] if command == "demo" else ["--overwrite"]  # demo has no --overwrite: it reuses its folder
    message = _refused(run_cli, *argv, *overwrite, words="Choose another")
    assert "--overwrite" not in message, message
    assert (folder / "thesis.txt").read_text() == "four years of work"
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.txt"]
    assert mine.with_suffix(".png").read_text() == "my holiday picture"
    assert mine.with_suffix(".csv").read_text().endswith("not written by textshift\n")


@pytest.mark.parametrize("command", FOLDER_COMMANDS + FILE_COMMANDS)
def test_an_unwritable_output_fails_before_the_work(command, inputs, read_only, run_cli):
    argv = _commands(inputs, read_only / "out", file_out=read_only / "out")[command]
    _refused(run_cli, *argv, words="cannot write in")
    assert list(read_only.iterdir()) == []


def test_review_checks_its_edit_log_and_export_folder_before_scoring(inputs, read_only, tmp_path, run_cli):
    # --report names no report: had the edit log not been checked first, that would be the error
    missing = tmp_path / "no-report"
    _refused(run_cli, "review", inputs["bills"], "--store", read_only / "log.sqlite", "--report", missing,
             "--port", "0", words="cannot write in")
    _refused(run_cli, "review", inputs["bills"], "--export-dir", read_only, "--report", missing, "--port", "0",
             words="cannot write in")


def test_a_read_only_model_folder_fails_evaluate_before_scoring(inputs, tmp_path, run_cli):
    model = tmp_path / "model"
    shutil.copytree(inputs["model"], model)
    (model / "confusion.png").unlink(missing_ok=True)
    if os.geteuid() != 0:
        model.chmod(0o555)
    elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(model)]).returncode != 0:
        pytest.skip("running as root where no folder can be made read-only (no chattr +i)")
    try:
        _refused(run_cli, "evaluate", model, inputs["bills"], words="Choose another --confusion path")
    finally:
        subprocess.run(["chattr", "-i", str(model)]) if os.geteuid() == 0 else model.chmod(0o755)


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_a_file_where_a_folder_goes(command, inputs, tmp_path, run_cli):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    _refused(run_cli, *_commands(inputs, blocker, file_out=tmp_path / "x")[command], words="is a file")
    _refused(run_cli, *_commands(inputs, blocker / "out", file_out=tmp_path / "x")[command], words="is a file")
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("command", ["predict", "review-export"])
def test_a_folder_where_a_file_goes(command, inputs, tmp_path, run_cli):
    folder = tmp_path / "looks-like.csv"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    argv = _commands(inputs, tmp_path / "unused", file_out=tmp_path / "looks-like")[command]
    _refused(run_cli, *argv, "--overwrite", words="is a folder")
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
@pytest.mark.parametrize("where", [".", ".."])
def test_the_current_folder_or_one_above_is_never_an_output(command, where, inputs, tmp_path, monkeypatch,
                                                            run_cli):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = _commands(inputs, Path(where), file_out=tmp_path / "x")[command]
    overwrite = [] if command == "demo" else ["--overwrite"]
    _refused(run_cli, *argv, *overwrite, words="current folder")
    assert list(work.iterdir()) == [] and not any(p.name.endswith(".checkpoint") for p in tmp_path.iterdir())


def test_an_input_inside_a_folder_output_is_refused(inputs, tmp_path, run_cli):
    model = tmp_path / "models" / "source"
    shutil.copytree(inputs["model"], model)
    _refused(run_cli, "transfer", model, inputs["bills"], "-o", model.parent, "--overwrite", words="contains the "
             "input")
    assert (model / "model.safetensors").is_file()


def test_textshift_outputs_are_still_replaced_with_overwrite(inputs, tmp_path, run_cli):
    """The rule refuses only what textshift did not write: its own outputs are replaced on request."""
    model = tmp_path / "model"
    for _ in range(2):
        result = run_cli("transfer", inputs["model"], inputs["bills"], "-o", model, "--strategy", "zero-shot",
                         "--overwrite", "-q")
        assert result.exit_code == 0, result
    predictions = tmp_path / "p.csv"
    for _ in range(2):
        result = run_cli("predict", model, inputs["bills"], "-o", predictions, "--overwrite", "-q")
        assert result.exit_code == 0, result
    png = tmp_path / "cm.png"
    for _ in range(2):
        result = run_cli("evaluate", model, inputs["bills"], "--confusion", png, "--overwrite", "-q")
        assert result.exit_code == 0, result
    again = run_cli("predict", model, inputs["bills"], "-o", predictions)
    assert again.exit_code == 2 and "Pass --overwrite" in again.stderr


def test_library_saves_refuse_foreign_folders(inputs, tmp_path):
    from textshift.errors import ForeignOutputError
    from textshift.model import Classifier

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("mine")
    classifier = Classifier.load(inputs["model"])
    with pytest.raises(ForeignOutputError, match="is not a textshift model folder"):
        classifier.save(folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["todo.txt"]
