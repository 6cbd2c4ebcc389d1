"""One writer per output: the lock beside every output, held across real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from textshift.errors import OutputBusyError
from textshift.locks import lock_path, output_lock, remove_stale_temporaries, writes

HOLD = ("import sys, time\n"
        "from textshift.locks import output_lock\n"
        "lock = output_lock(sys.argv[1])\n"
        "lock.__enter__()\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")


@pytest.fixture()
def holder():
    """Start a separate process that takes the lock of a path and keeps it until killed."""
    started = []

    def start(target: Path) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_second_writer_fails_at_once_naming_the_holder(holder, tmp_path):
    target = tmp_path / "model"
    process = holder(target)
    with pytest.raises(OutputBusyError, match=rf"{target} is being written by another textshift process "
                                              rf"\(pid {process.pid}\)"), output_lock(target):
        pass


def test_the_lock_dies_with_its_process(holder, tmp_path):
    target = tmp_path / "out.csv"
    process = holder(target)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert lock_path(target).exists()  # a killed holder leaves the file, which means nothing on its own
    with output_lock(target):
        pass
    assert not lock_path(target).exists()


def test_reentrant_within_a_process_and_released_after(tmp_path):
    target = tmp_path / "model"
    with output_lock(target) as lock:
        assert lock == tmp_path / ".model.lock" and lock.read_text().strip().isdigit()
        with output_lock(target):
            pass
        assert lock.exists()  # the inner block does not release the outer one
    assert not lock.exists()


def test_other_ranks_do_not_lock(holder, tmp_path, monkeypatch):
    target = tmp_path / "model"
    holder(target)
    monkeypatch.setenv("RANK", "1")  # a non-writing process of `accelerate launch`
    with output_lock(target):
        pass


def test_stale_temporaries_of_a_killed_save_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / "model"
    stale_dir, stale_file = tmp_path / ".model.tmp-1a2b3c4d", tmp_path / ".model.tmp-999"
    stale_dir.mkdir()
    (stale_dir / "model.safetensors").write_bytes(b"half")
    stale_file.write_text("x")
    keep = [tmp_path / ".model.partial", tmp_path / ".other.tmp-1", tmp_path / "model.tmp-1"]
    for path in keep:
        path.write_text("keep")
    with output_lock(target):
        assert not stale_dir.exists() and not stale_file.exists()
    assert all(path.exists() for path in keep)
    assert remove_stale_temporaries(tmp_path / "absent" / "model") == []


def test_folders_made_for_a_failed_command_are_removed(tmp_path):
    target = tmp_path / "a" / "b" / "model"
    with pytest.raises(RuntimeError), output_lock(target):
        assert target.parent.is_dir()
        raise RuntimeError("bad input found after the lock was taken")
    assert not (tmp_path / "a").exists()
    with output_lock(target):
        target.mkdir()
    assert target.is_dir()  # a folder with the output in it stays


def test_writes_locks_the_named_argument(holder, tmp_path):
    @writes("output")
    def save(data, output=None):
        return output

    target = tmp_path / "p.csv"
    assert save("x", target) == target
    holder(target)
    with pytest.raises(OutputBusyError):
        save("x", output=target)
    assert save("x") is None  # no path: the function reports it itself


def test_saving_a_model_another_process_is_writing_is_refused(holder, tiny_backbone, tmp_path):
    from textshift.model import Classifier

    target = tmp_path / "model"
    holder(target)
    classifier = Classifier.from_backbone(tiny_backbone, labels=["a", "b"])
    with pytest.raises(OutputBusyError):
        classifier.save(target)
    assert not target.exists()


def test_cli_train_into_a_busy_output_is_one_line_and_exit_2(holder, run_cli, small_news, tmp_path, tiny_backbone):
    target = tmp_path / "model"
    holder(target)
    result = run_cli("train", str(small_news), "-o", str(target), "--backbone", tiny_backbone, "--epochs", "1")
    assert result.exit_code == 2
    assert "being written by another textshift process" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not target.exists()


def test_cli_predict_into_a_busy_file_is_refused(holder, run_cli, small_news, tmp_path, tiny_backbone):
    from textshift.model import Classifier

    model = tmp_path / "model"
    Classifier.from_backbone(tiny_backbone, labels=["a", "b"]).save(model)
    target = tmp_path / "predictions.csv"
    holder(target)
    result = run_cli("predict", str(model), str(small_news), "-o", str(target))
    assert result.exit_code == 2 and "being written by another textshift process" in result.stderr
    assert not target.exists()


def test_the_next_save_removes_what_a_killed_save_left(tiny_backbone, tmp_path):
    from textshift.model import Classifier

    leftover = tmp_path / ".model.tmp-0badc0de"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"\0" * 1024)  # a save killed while writing its weights
    Classifier.from_backbone(tiny_backbone, labels=["a", "b"]).save(tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
