"""Streaming prediction: durable chunks, and resuming an interrupted run to the same file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from textshift.errors import ConfigError, OutputExistsError
from textshift.model import Classifier
from textshift.predict import predict_file


@pytest.fixture(scope="module")
def model_dir(tiny_backbone, tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict") / "model"
    Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health", "Law and Crime"], seed=0).save(folder)
    return folder


@pytest.fixture(scope="module")
def texts_csv(tmp_path_factory):
    from textshift.data import read_labeled

    bills = read_labeled("embedded:bills").frame.head(600)
    path = tmp_path_factory.mktemp("predict-data") / "bills.csv"
    bills[["text"]].assign(id=range(len(bills))).to_csv(path, index=False)
    return path


def _interrupt_after(chunks: int):
    seen = [0]

    def on_chunk(rows: int) -> None:
        seen[0] += 1
        if seen[0] == chunks:
            raise KeyboardInterrupt

    return on_chunk


def test_interrupted_run_resumes_to_the_same_file(model_dir, texts_csv, tmp_path):
    model = Classifier.load(model_dir)
    full = predict_file(model, texts_csv, tmp_path / "full.csv", chunk_size=50, top_k=2)
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        predict_file(model, texts_csv, out, chunk_size=50, top_k=2, on_chunk=_interrupt_after(3))
    assert not out.exists() and (tmp_path / ".out.csv.partial").exists()
    with pytest.raises(OutputExistsError, match="--resume"):
        predict_file(model, texts_csv, out, chunk_size=50, top_k=2)
    with pytest.raises(ConfigError, match="other input, model or options"):
        predict_file(model, texts_csv, out, chunk_size=50, top_k=1, resume=True)
    seen: list[int] = []
    resumed = predict_file(model, texts_csv, out, chunk_size=70, top_k=2, resume=True, on_chunk=seen.append)
    assert seen[0] == 210  # rows 150-209 of the chunk 140-209 first: the 150 done rows are not predicted again
    assert resumed.rows == full.rows == 600 and resumed.label_counts == full.label_counts
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.csv", "out.csv"]


def test_resume_without_an_unfinished_run_starts_from_the_first_row(model_dir, texts_csv, tmp_path):
    summary = predict_file(Classifier.load(model_dir), texts_csv, tmp_path / "p.csv", chunk_size=200, resume=True)
    assert summary.rows == 600 and len(pd.read_csv(tmp_path / "p.csv")) == 600


def test_sigkilled_predict_resumes_from_the_command_line(model_dir, texts_csv, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "textshift", "predict", str(model_dir), str(texts_csv), "--chunk-size", "10",
           "-q", "-o"]
    subprocess.run(cmd + [str(tmp_path / "full.csv")], env=env, check=True, capture_output=True, timeout=300)
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(cmd + [str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / ".out.csv.partial.json"
    deadline = time.monotonic() + 120
    while not progress.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if out.exists():
        pytest.skip("the run finished before it could be killed")
    resumed = subprocess.run(cmd + [str(out), "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert not progress.exists() and not (tmp_path / ".out.csv.partial").exists()


def test_input_columns_named_like_outputs_are_kept_as_input_columns(model_dir, tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"text": ["the army base", "a hospital"], "label": ["Defense", "Health"], "row": [7, 8],
                  "probability": [0.5, 0.1], "label_2": ["x", "y"], "note": ["n1", "n2"]}).to_csv(data, index=False)
    out = predict_file(Classifier.load(model_dir), data, tmp_path / "p.csv", top_k=2)
    frame = pd.read_csv(out.output)
    assert list(frame.columns) == ["row", "text", "input_label", "input_row", "input_probability", "input_label_2",
                                   "note", "label", "probability", "label_2", "probability_2"]
    assert frame.row.tolist() == [0, 1] and frame.input_label.tolist() == ["Defense", "Health"]
    assert frame.input_row.tolist() == [7, 8] and frame.note.tolist() == ["n1", "n2"]


def test_resume_refuses_another_model_with_the_same_metadata(model_dir, texts_csv, tmp_path):
    """A fine-tuned copy keeps its source's labels (and used to keep its creation time): its weights tell them apart."""
    import torch

    model = Classifier.load(model_dir)
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        predict_file(model, texts_csv, out, chunk_size=50, on_chunk=_interrupt_after(2))
    other = Classifier.load(model_dir)
    with torch.no_grad():
        next(other.model.parameters()).add_(0.01)
    with pytest.raises(ConfigError, match="other input, model or options"):
        predict_file(other, texts_csv, out, chunk_size=50, resume=True)
