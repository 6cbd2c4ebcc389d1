"""Crash safety: epoch checkpoints, resuming after SIGKILL, and saves killed midway.

The subprocess tests kill real processes with SIGKILL (no cleanup code runs) and check what is left on disk.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from textshift.checkpoints import checkpoint_dir_for, latest_checkpoint, read_state, save_checkpoint
from textshift.errors import ConfigError
from textshift.model import Classifier, check_model_folder, is_model_folder
from textshift.training import LossShaping, TrainConfig, train

TEXTS = ["war army troops missile"] * 20 + ["hospital doctor patients drug"] * 20 + ["army doctor"] * 10
LABELS = ["Defense"] * 20 + ["Health"] * 20 + ["Defense", "Health"] * 5
VAL_TEXTS = ["army troops", "doctor drug", "missile war", "patients hospital"]
VAL_LABELS = ["Defense", "Health", "Defense", "Health"]
CONFIG = TrainConfig(epochs=4, batch_size=4, warmup_epochs=2, learning_rate=1e-3, patience=10, seed=5)


def _weights_equal(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


class _Interrupt(Exception):
    pass


def _zero_loss(fail_after: int | None = None):
    """An extra loss of exactly zero that can raise after some steps, to interrupt a run in process."""
    calls = [0]

    def loss_fn(logits, targets, indices):
        calls[0] += 1
        if fail_after is not None and calls[0] > fail_after:
            raise _Interrupt
        return torch.zeros((), device=logits.device)

    return loss_fn


def _train(backbone: str, checkpoint_dir: Path, *, resume: bool = False, fail_after: int | None = None,
           config: TrainConfig = CONFIG):
    classifier = Classifier.from_backbone(backbone, labels=["Defense", "Health"], seed=1)
    result = train(classifier, TEXTS, LABELS, config=config, val_texts=VAL_TEXTS, val_labels=VAL_LABELS,
                   loss=LossShaping(loss_fn=_zero_loss(fail_after)), checkpoint_dir=checkpoint_dir, resume=resume)
    return classifier, result


# ------------------------------------------------------------------------------------------------- library
def test_resume_equals_uninterrupted_run(tiny_backbone, tmp_path):
    reference, reference_result = _train(tiny_backbone, tmp_path / "reference")
    assert [p.name for p in (tmp_path / "reference").iterdir()] == ["epoch-0004"]
    finished, finished_result = _train(tiny_backbone, tmp_path / "reference", resume=True)  # killed while saving
    assert finished_result.val_metrics == reference_result.val_metrics
    assert _weights_equal(finished.model.state_dict(), reference.model.state_dict())

    folder = tmp_path / "interrupted"
    steps_per_epoch = len(TEXTS) // CONFIG.batch_size + 1
    with pytest.raises(_Interrupt):
        _train(tiny_backbone, folder, fail_after=2 * steps_per_epoch + 3)  # dies in epoch 3
    assert read_state(latest_checkpoint(folder))["epoch"] == 2
    resumed, resumed_result = _train(tiny_backbone, folder, resume=True)

    assert resumed_result.val_metrics == reference_result.val_metrics
    assert resumed_result.best_epoch == reference_result.best_epoch
    assert _without_seconds(resumed_result.history) == _without_seconds(reference_result.history)
    assert _weights_equal(resumed.model.state_dict(), reference.model.state_dict())


def test_resume_refuses_other_settings(tiny_backbone, tmp_path):
    with pytest.raises(_Interrupt):
        _train(tiny_backbone, tmp_path, fail_after=15)
    other = TrainConfig(**{**CONFIG.to_dict(), "batch_size": 8})
    with pytest.raises(ConfigError, match="the 'batch_size' setting was 4, now 8") as error:
        _train(tiny_backbone, tmp_path, resume=True, config=other)
    assert "\n" not in str(error.value)


def test_resume_without_checkpoint_starts_fresh(tiny_backbone, tmp_path):
    _, result = _train(tiny_backbone, tmp_path / "new", resume=True)
    assert [record["epoch"] for record in result.history] == [0, 1, 2, 3, 4]


def test_partial_checkpoints_are_ignored(tmp_path):
    tensors = {"w": torch.ones(2)}
    save_checkpoint(tmp_path, epoch=1, model=tensors, best=None, optimizer={"state": {}, "param_groups": []},
                    rng=[({"torch": torch.get_rng_state()}, {})], state={"history": []})
    partial = tmp_path / ".tmp-epoch-0002-0badc0de"  # what a save killed before its rename leaves behind
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\0" * 10)
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch-0001"
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not textshift checkpoints"):
        latest_checkpoint(tmp_path)


def test_removal_renames_first_and_the_next_write_clears_what_a_kill_left(tmp_path, monkeypatch):
    import shutil

    from textshift.checkpoints import remove_checkpoints
    from textshift.locks import output_lock

    folder = tmp_path / "model.checkpoint"
    save_checkpoint(folder, epoch=1, model={"w": torch.ones(2)}, best=None,
                    optimizer={"state": {}, "param_groups": []}, rng=[({"torch": torch.get_rng_state()}, {})],
                    state={"history": []})

    def killed(path, *args, **kwargs):  # the process dies while deleting
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        remove_checkpoints(folder)
    monkeypatch.undo()
    assert latest_checkpoint(folder) is None  # nothing left that looks like an interrupted run
    [leftover] = tmp_path.iterdir()
    assert leftover.name.startswith(".model.tmp-checkpoint-")
    with output_lock(tmp_path / "model"):
        pass
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------- processes
def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def _kill_after_first_checkpoint(args: list, checkpoints: Path, *, pause: float = 0.0) -> None:
    """Run ``textshift ARGS`` and SIGKILL it ``pause`` seconds after its first epoch checkpoint appears."""
    process = subprocess.Popen([sys.executable, "-m", "textshift", *map(str, args)], env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while latest_checkpoint(checkpoints) is None:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.02)
        time.sleep(pause)
        assert process.poll() is None, "the run finished before it could be interrupted"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def news_val(tmp_path_factory) -> Path:
    """80 news headlines of the small_news topics that small_news does not hold."""
    from textshift.data import read_labeled

    news = read_labeled("embedded:news").frame
    topics = ["Defense", "Health", "Law and Crime", "Sports and Recreation"]
    path = tmp_path_factory.mktemp("val") / "news_val.csv"
    pd.concat([news[news.label == t].iloc[60:80] for t in topics])[["text", "label"]].to_csv(path, index=False)
    return path


def test_sigkilled_training_resumes_to_the_same_model(tiny_backbone, small_news, news_val, tmp_path, run_cli):
    options = ["--backbone", tiny_backbone, "--val-data", news_val, "--epochs", "4", "--warmup-epochs", "2",
               "--batch-size", "8", "--lr", "5e-4", "--memory-per-class", "0", "--seed", "3"]
    out = tmp_path / "model"
    checkpoints = checkpoint_dir_for(out)
    _kill_after_first_checkpoint(["train", small_news, "-o", out, *options, "-q"], checkpoints, pause=0.1)
    assert not out.exists()
    done = read_state(latest_checkpoint(checkpoints))["epoch"]
    assert 1 <= done < 4

    refused = run_cli("train", small_news, "-o", out, *options)
    assert refused.exit_code == 2 and "pass --resume to continue it" in refused.stderr
    changed = run_cli("train", small_news, "-o", out, *options[:-2], "--seed", "4", "--resume")
    assert changed.exit_code == 2 and "the 'seed' setting was 3, now 4" in changed.stderr

    resumed = run_cli("train", small_news, "-o", out, *options, "--resume")
    assert resumed.exit_code == 0, resumed
    assert f"resuming after epoch {done}" in resumed.stderr
    assert not checkpoints.exists()
    reference = tmp_path / "reference"
    assert run_cli("train", small_news, "-o", reference, *options, "-q").exit_code == 0

    meta, reference_meta = (json.loads((folder / "textshift.json").read_text())["metrics"]
                            for folder in (out, reference))
    assert meta["validation"] == reference_meta["validation"]
    assert meta["best_epoch"] == reference_meta["best_epoch"]
    assert _without_seconds(meta["history"]) == _without_seconds(reference_meta["history"])
    assert _weights_equal(Classifier.load(out).model.state_dict(), Classifier.load(reference).model.state_dict())
    assert {p.name for p in tmp_path.iterdir()} - {"home"} == {"model", "reference"}  # no checkpoint left


def test_sigkilled_transfer_resumes_to_the_same_model(tiny_backbone, small_news, small_bills, tmp_path, run_cli):
    source = tmp_path / "source"
    assert run_cli("train", small_news, "-o", source, "--backbone", tiny_backbone, "--epochs", "1",
                   "--memory-per-class", "0", "-q").exit_code == 0
    # adapt: a masked-LM phase, then fine-tuning with checkpoints; the resumed run skips the finished MLM phase
    options = ["--strategy", "adapt", "--epochs", "20", "--lr", "5e-4", "--seed", "2"]
    out = tmp_path / "model"
    checkpoints = checkpoint_dir_for(out)
    _kill_after_first_checkpoint(["transfer", source, small_bills, "-o", out, *options, "-q"], checkpoints)
    assert not out.exists()
    done = read_state(latest_checkpoint(checkpoints))["epoch"]
    assert 1 <= done < 20

    refused = run_cli("transfer", source, small_bills, "-o", out, *options)
    assert refused.exit_code == 2 and "pass --resume to continue it" in refused.stderr
    other = run_cli("transfer", source, small_bills, "-o", out, *options[2:], "--strategy", "finetune", "--resume")
    assert other.exit_code == 2 and "its run was" in other.stderr and "'adapt'" in other.stderr

    resumed = run_cli("transfer", source, small_bills, "-o", out, *options, "--resume")
    assert resumed.exit_code == 0, resumed
    assert f"resuming after epoch {done}" in resumed.stderr
    assert not checkpoints.exists()
    reference = tmp_path / "reference"
    assert run_cli("transfer", source, small_bills, "-o", reference, *options, "-q").exit_code == 0
    assert _weights_equal(Classifier.load(out).model.state_dict(), Classifier.load(reference).model.state_dict())
    meta, reference_meta = (json.loads((folder / "textshift.json").read_text())["metrics"]
                            for folder in (out, reference))
    assert _without_seconds(meta["history"]) == _without_seconds(reference_meta["history"])


SAVE_FOREVER = """
import sys, torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
from textshift.model import Classifier, ModelMeta, head_linear

backbone, folder = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(backbone)
config = BertConfig(vocab_size=len(tokenizer), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=512, num_labels=2, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
meta = ModelMeta(backbone=backbone, labels=["a", "b"])
classifier = Classifier(BertForSequenceClassification(config), tokenizer, meta)
generation = 0
while True:
    generation += 1
    with torch.no_grad():
        head_linear(classifier.model).bias.fill_(generation)
    classifier.meta.extra["generation"] = generation
    classifier.save(folder)
    print(generation, flush=True)
"""


def test_save_killed_midway_leaves_the_previous_model(tiny_backbone, tmp_path):
    folder = tmp_path / "model"
    interrupted_a_write = False
    for attempt in range(3):  # until a kill lands inside a save (nearly always the first time: saves never stop)
        process = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, tiny_backbone, folder], env=_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = process.stdout.readline()
            assert first.strip().isdigit(), process.communicate()
            time.sleep(random.Random(attempt).uniform(0.2, 0.6))
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        last_reported = int(([first] + process.stdout.read().split())[-1])

        check_model_folder(folder)
        loaded = Classifier.load(folder)
        generation = loaded.meta.extra["generation"]
        assert generation >= last_reported  # the last completed save, or one that completed unreported
        bias = loaded.model.classifier.bias
        assert torch.all(bias == generation), "weights and textshift.json come from different saves"
        leftovers = [p for p in tmp_path.iterdir() if p != folder]
        assert all(p.name.startswith(".model.") for p in leftovers), leftovers  # hidden, never the model's name
        # A kill inside save() leaves its temporary folder, or the replaced model it had not yet deleted.
        interrupted_a_write |= any(".tmp-" in p.name or ".old-" in p.name for p in leftovers)
        if interrupted_a_write:
            break
    assert interrupted_a_write, "no kill landed inside a save"
    assert is_model_folder(folder)
