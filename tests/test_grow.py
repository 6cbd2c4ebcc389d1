"""Growing a classifier to new classes: memory, head growth, forgetting measures, folders, errors, CLI."""

from __future__ import annotations

import json
import logging
import random

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from textshift.data import TextData
from textshift.errors import ConfigError, ModelError
from textshift.grow import (
    MEMORY_FILE,
    GrowConfig,
    GrowError,
    Memory,
    RehearsalMemoryError,
    StepScores,
    _align_new_rows,
    accuracy_matrix,
    attach_memory,
    check_new_data,
    forgetting,
    grow,
    grow_folder,
    read_memory,
    save_with_memory,
    score_steps,
)
from textshift.model import Classifier, head_linear
from textshift.training import TrainConfig, deepcopy_classifier, train_classifier

WORDS = {
    "Defense": ["war", "army", "troops", "missile", "military"],
    "Health": ["hospital", "patients", "drug", "medical", "health"],
    "Energy": ["oil", "gas", "power", "electricity", "energy"],
    "Education": ["school", "teachers", "students", "education", "college"],
}
FAST = TrainConfig(epochs=6, batch_size=8, learning_rate=2e-3, warmup_epochs=5, val_fraction=0.0)


def keyword_rows(classes: list[str], n: int, seed: int) -> TextData:
    """``n`` texts per class made of 3 of its 5 keywords (a task the tiny backbone learns in seconds)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label in classes:
        for _ in range(n):
            texts.append(" ".join(rng.sample(WORDS[label], 3)))
            labels.append(label)
    return TextData.from_lists(texts, labels, name=f"{'-'.join(classes)}.csv")


@pytest.fixture(scope="module")
def step1(tiny_backbone):
    """A tiny classifier of Defense and Health, and its training data."""
    data = keyword_rows(["Defense", "Health"], 24, seed=1)
    classifier, _ = train_classifier(data, backbone=tiny_backbone, config=FAST)
    return classifier, data


@pytest.fixture()
def step1_folder(step1, tmp_path):
    classifier, data = step1
    folder = tmp_path / "step1"
    save_with_memory(classifier, folder, Memory.sample(data.texts, data.labels, per_class=10, seed=0))
    return folder


# ------------------------------------------------------------------------------------------------------ growing
def test_grow_adds_classes_after_the_old_ones(step1):
    classifier, data = step1
    before = classifier.predict_logits(["war army troops"])
    memory = Memory.sample(data.texts, data.labels, per_class=10, seed=0)
    result = grow(classifier, keyword_rows(["Energy", "Education"], 16, seed=2), memory=memory,
                  config=GrowConfig(train=FAST))
    grown = result.classifier
    assert grown.labels == ["Defense", "Health", "Education", "Energy"] and result.added == ["Education", "Energy"]
    np.testing.assert_allclose(classifier.predict_logits(["war army troops"]), before)  # input left unchanged
    assert [entry["added"] for entry in grown.meta.class_history] == [["Defense", "Health"], ["Education", "Energy"]]
    assert grown.meta.strategy == "grow" and grown.meta.extra["grow"]["memory_per_class"] == 20
    counts = result.memory.counts()  # duplicated texts are remembered once
    assert counts["Defense"] == counts["Health"] == 10 and 10 <= counts["Energy"] <= 16
    assert result.rehearsal_rows == 20


def test_rehearsal_keeps_old_classes_that_naive_finetuning_forgets(step1):
    classifier, data = step1
    new = keyword_rows(["Energy"], 16, seed=2)  # one new class: the tiny backbone learns 3 classes reliably
    test = keyword_rows(["Defense", "Health", "Energy"], 10, seed=9)
    steps = [["Defense", "Health"], ["Energy"]]
    before = score_steps(classifier, test, steps[:1])
    naive = grow(classifier, new, config=GrowConfig(memory_per_class=0, distill=False, bias_correction="none",
                                                    train=FAST))
    rehearsed = grow(classifier, new, memory=Memory.sample(data.texts, data.labels, per_class=10, seed=0),
                     config=GrowConfig(train=FAST))
    naive_scores = score_steps(naive.classifier, test, steps)
    rehearsed_scores = score_steps(rehearsed.classifier, test, steps)
    assert before.step_accuracy[1] >= 0.9
    assert naive_scores.old_class_accuracy <= 0.3  # forgets
    assert rehearsed_scores.old_class_accuracy >= 0.8 and rehearsed_scores.step_accuracy[2] >= 0.8
    assert forgetting([before, naive_scores])[1] > forgetting([before, rehearsed_scores])[1] + 0.5
    assert any("naive fine-tuning" in w for w in naive.warnings)


@pytest.mark.parametrize("options", [{"distill": False}, {"bias_correction": "align"}, {"init_from_mean": False},
                                     {"asymmetric_loss": True}, {"bias_correction": "logit-adjust+align"},
                                     {"calibrate_holdout": 2}])
def test_grow_options_run(step1, options):
    classifier, data = step1
    memory = Memory.sample(data.texts, data.labels, per_class=5, seed=0)
    result = grow(classifier, keyword_rows(["Energy"], 8, seed=4), memory=memory,
                  config=GrowConfig(train=TrainConfig(epochs=1, batch_size=8, warmup_epochs=1), **options))
    assert result.classifier.labels == ["Defense", "Health", "Energy"]


def test_calibration_holds_rows_out_and_folds_a_fitted_correction_into_the_head(step1):
    """4 remembered rows per old class and 4 rows of the new class are held out; the fit is folded into the head,
    so the saved model's logits on the new class are scale * before + shift."""
    from textshift.grow import _calibrate_new_rows, _calibration_rows

    labels = ["Energy"] * 10 + ["Defense"] * 10 + ["Health"] * 6
    held = _calibration_rows(labels, ["Energy"], memory_start=10, per_class=4, seed=0)
    assert held[:10].sum() == 4 and held[10:20].sum() == 4 and held[20:].sum() == 0  # Health: too few to spare

    classifier, data = step1
    memory = Memory.sample(data.texts, data.labels, per_class=10, seed=0)
    result = grow(classifier, keyword_rows(["Energy"], 12, seed=4), memory=memory,
                  config=GrowConfig(calibrate_holdout=4, train=TrainConfig(epochs=1, batch_size=8, warmup_epochs=1)))
    calibration = result.classifier.meta.extra["grow"]["calibration"]
    assert calibration["rows"] == 12 and result.train_result.train_rows == 12 + 20 - 12
    model = result.classifier
    texts = ["army war", "doctor drug", "power oil"]
    before = model.predict_logits(texts)
    scale, shift = _calibrate_new_rows(model, ["army war", "power oil"], ["Defense", "Energy"], n_old=2, max_length=32)
    after = model.predict_logits(texts)
    np.testing.assert_allclose(after[:, :2], before[:, :2], atol=1e-5)
    np.testing.assert_allclose(after[:, 2], before[:, 2] * scale + shift, atol=1e-4)


def test_calibration_without_rows_to_spare_warns(step1):
    classifier, data = step1
    memory = Memory.sample(data.texts, data.labels, per_class=5, seed=0)
    result = grow(classifier, keyword_rows(["Energy"], 8, seed=4), memory=memory,
                  config=GrowConfig(calibrate_holdout=10, train=TrainConfig(epochs=1, batch_size=8, warmup_epochs=1)))
    assert any("no class has 20 rows to spare" in w for w in result.warnings)
    assert "calibration" not in result.classifier.meta.extra["grow"] and result.train_result.train_rows == 18


def test_asymmetric_loss_keeps_new_rows_from_pushing_old_classes_down(step1):
    """Without memory or distillation, the new rows are all there is: scored against the new classes only, they
    leave the old classes' head rows exactly as they were (the plain loss moves them)."""
    classifier, _ = step1
    new = keyword_rows(["Energy", "Education"], 8, seed=4)
    quiet = TrainConfig(epochs=1, batch_size=8, warmup_epochs=1, weight_decay=0.0)
    options = dict(memory_per_class=0, distill=False, bias_correction="none", train=quiet)
    old_rows = head_linear(classifier.model).weight.detach()[:2].clone()
    asymmetric = grow(classifier, new, config=GrowConfig(asymmetric_loss=True, **options)).classifier
    plain = grow(classifier, new, config=GrowConfig(**options)).classifier
    assert torch.equal(head_linear(asymmetric.model).weight.detach()[:2], old_rows)
    assert not torch.equal(head_linear(plain.model).weight.detach()[:2], old_rows)
    assert asymmetric.meta.extra["grow"]["asymmetric_loss"] is True


def test_default_keeps_new_head_rows_no_longer_than_the_old_ones(step1):
    classifier, data = step1
    memory = Memory.sample(data.texts, data.labels, per_class=5, seed=0)
    result = grow(classifier, keyword_rows(["Energy", "Education"], 8, seed=4), memory=memory,
                  config=GrowConfig(train=TrainConfig(epochs=1, batch_size=8, warmup_epochs=1)))
    norms = head_linear(result.classifier.model).weight.detach().norm(dim=1)
    assert float(norms[2:].mean()) <= float(norms[:2].mean()) * (1 + 1e-4)
    assert result.classifier.meta.extra["grow"]["bias_correction"] == "balanced+align"
    assert 0 < result.classifier.meta.extra["grow"]["align_factor"] <= 1


@pytest.mark.parametrize("scale, expected", [(3.0, 1 / 3), (0.5, 1.0)])
def test_weight_aligning_only_shrinks_longer_new_rows(step1, scale, expected):
    classifier = deepcopy_classifier(step1[0])
    classifier.replace_head(["Defense", "Health", "Energy"], keep_rows=True)
    linear = head_linear(classifier.model)
    with torch.no_grad():
        linear.weight[2] = linear.weight[:2].norm(dim=1).mean() * scale * linear.weight[2] / linear.weight[2].norm()
    before = linear.weight.detach().clone()
    assert _align_new_rows(classifier, 2) == pytest.approx(expected, rel=1e-4)
    assert torch.allclose(linear.weight[:2], before[:2])
    assert torch.allclose(linear.weight[2], before[2] * expected, rtol=1e-4)


def test_old_data_stands_in_for_a_missing_memory(step1):
    classifier, data = step1
    result = grow(classifier, keyword_rows(["Energy"], 8, seed=4), old_data=data,
                  config=GrowConfig(memory_per_class=6, train=TrainConfig(epochs=1, warmup_epochs=1)))
    assert result.rehearsal_rows == 12 and not result.warnings
    assert result.memory.counts() == {"Defense": 6, "Health": 6, "Energy": 6}


def test_accuracy_matrix_and_forgetting():
    rows = [StepScores(1, {1: 0.9}, 0.9, 0.9, None, 10),
            StepScores(2, {1: 0.8, 2: 0.7}, 0.75, 0.75, 0.8, 20),
            StepScores(3, {1: 0.6, 2: 0.75, 3: 0.9}, 0.7, 0.7, 0.65, 30)]
    matrix = accuracy_matrix(rows)
    assert list(matrix.columns) == ["step 1", "step 2", "step 3", "macro_f1"]
    assert matrix.loc["after step 2", "step 3"] is None or pd.isna(matrix.loc["after step 2", "step 3"])
    assert forgetting(rows) == pytest.approx({1: 0.3, 2: -0.05})


# ------------------------------------------------------------------------------------------------------- errors
def test_all_known_classes_is_an_error_that_suggests_fine_tuning(step1):
    classifier, _ = step1
    with pytest.raises(GrowError, match="already classes of the model.*fine-tune"):
        grow(classifier, keyword_rows(["Health"], 4, seed=0))


def test_labels_differing_by_case_or_whitespace_warn():
    data = TextData.from_lists(list("abcdef"), ["health", "Energy", "ENERGY "] * 2, name="new.csv")
    added, warnings = check_new_data(["Health", "Defense"], data)
    assert added == ["ENERGY", "Energy", "health"]
    assert len(warnings) == 2 and all("only by case or whitespace" in w for w in warnings)
    assert any("'health'" in w and "the model's class 'Health'" in w for w in warnings)
    assert any("'Energy'" in w and "the new class 'ENERGY'" in w for w in warnings)


def test_no_memory_and_no_old_examples_warns_loudly(step1, caplog):
    classifier, _ = step1
    with caplog.at_level(logging.WARNING, logger="textshift.grow"):
        result = grow(classifier, keyword_rows(["Energy"], 6, seed=4),
                      config=GrowConfig(train=TrainConfig(epochs=1, warmup_epochs=1)))
    assert any("no rehearsal memory" in w and "--old-data" in w for w in result.warnings)
    assert "forget" in caplog.text


def test_config_is_validated():
    with pytest.raises(ConfigError, match="bias_correction"):
        GrowConfig(bias_correction="sometimes")
    with pytest.raises(ConfigError, match="memory_per_class"):
        GrowConfig(memory_per_class=-1)


# ------------------------------------------------------------------------------------------------------ folders
def test_memory_round_trips_and_hand_edits_are_detected(step1_folder):
    memory = read_memory(step1_folder)
    assert memory.counts() == {"Defense": 10, "Health": 10}
    meta = json.loads((step1_folder / "textshift.json").read_text())
    assert meta["extra"]["memory"]["rows"] == 20 and len(meta["extra"]["memory"]["sha256"]) == 64
    path = step1_folder / MEMORY_FILE
    path.write_text(path.read_text().replace("war", "peace", 1))
    with pytest.raises(RehearsalMemoryError, match="changed after textshift wrote it.*--rebuild-memory"):
        read_memory(step1_folder)
    path.unlink()
    with pytest.raises(RehearsalMemoryError, match="is missing"):
        read_memory(step1_folder)


def test_model_without_memory_reads_none_but_a_stray_file_is_refused(step1, tmp_path):
    classifier, _ = step1
    folder = tmp_path / "plain"
    classifier.save(folder)
    assert read_memory(folder) is None
    (folder / MEMORY_FILE).write_text('{"text": "x", "label": "Health"}\n')
    with pytest.raises(RehearsalMemoryError, match="records no rehearsal memory"):
        read_memory(folder)


def test_attach_memory_to_a_plain_model(step1, tmp_path):
    classifier, data = step1
    folder = tmp_path / "plain"
    classifier.save(folder)
    attach_memory(folder, data, per_class=3)
    assert read_memory(folder).counts() == {"Defense": 3, "Health": 3}
    assert Classifier.load(folder).labels == classifier.labels


def test_grown_folder_is_a_standard_model_with_history(step1_folder, tmp_path):
    from transformers import pipeline

    out = tmp_path / "step2"
    test = keyword_rows(["Defense", "Health", "Energy"], 6, seed=9)
    report = grow_folder(step1_folder, keyword_rows(["Energy"], 12, seed=4), out, eval_data=test,
                         config=GrowConfig(memory_per_class=8, train=FAST))
    assert [s.step for s in report.scores] == [1, 2] and set(forgetting(report.scores)) == {1}
    loaded = Classifier.load(out)
    assert loaded.labels == ["Defense", "Health", "Energy"]
    assert loaded.meta.class_history[1]["added"] == ["Energy"]
    assert loaded.meta.class_history[1]["eval"]["scores"]["step"] == 2
    assert read_memory(out).counts() == {"Defense": 8, "Health": 8, "Energy": 8}
    pipe = pipeline("text-classification", model=str(out), device="cpu")
    texts = ["oil gas power", "war army troops"]
    expected = [loaded.labels[i] for i in loaded.predict_logits(texts).argmax(axis=1)]
    assert [r["label"] for r in pipe(texts)] == expected
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_edited_memory_stops_grow_folder(step1_folder, tmp_path):
    (step1_folder / MEMORY_FILE).write_text('{"text": "war", "label": "Health"}\n')
    with pytest.raises(RehearsalMemoryError, match="changed after"):
        grow_folder(step1_folder, keyword_rows(["Energy"], 4, seed=4), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_compare_joint_needs_old_and_eval_data(step1_folder, tmp_path):
    with pytest.raises(ConfigError, match="--old-data.*--eval-data"):
        grow_folder(step1_folder, keyword_rows(["Energy"], 4, seed=4), tmp_path / "out", compare_joint=True)


# ----------------------------------------------------------------------------------------------------------- CLI
@pytest.fixture()
def csvs(step1, tmp_path):
    _, data = step1
    paths = {}
    for name, frame in {"old": data.frame,
                        "new": keyword_rows(["Energy", "Education"], 12, seed=4).frame,
                        "test": keyword_rows(["Defense", "Health", "Energy", "Education"], 6, seed=9).frame,
                        "known": keyword_rows(["Health"], 4, seed=5).frame}.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def invoke(*args):
    from textshift.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_grow_reports_the_matrix_and_info_shows_history(step1_folder, csvs, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "grown"
    result = invoke("grow", step1_folder, csvs["new"], "-o", out, "--eval-data", csvs["test"],
                    "--epochs", "1", "--warmup-epochs", "2", "--memory-per-class", "5")
    assert result.exit_code == 0, result.output
    assert "step 2: +2 classes" in result.stdout and "forgetting" in result.stdout and "macro-F1" in result.stdout
    info = invoke("info", out)
    assert info.exit_code == 0
    assert "step 1: +2 classes (Defense, Health)" in info.stdout
    assert "step 2: +2 classes (Education, Energy)" in info.stdout


def test_cli_compare_joint_quiet_json(step1_folder, csvs, tmp_path):
    result = invoke("grow", step1_folder, csvs["new"], "-o", tmp_path / "grown", "--eval-data", csvs["test"],
                    "--old-data", csvs["old"], "--compare-joint", "--epochs", "1", "--warmup-epochs", "1", "-q",
                    "--asymmetric-loss", "--calibrate-holdout", "2")
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "grown" / "textshift.json").read_text())["extra"]["grow"]
    assert settings["asymmetric_loss"] and settings["calibrate_holdout"] == 2 and settings["calibration"]["rows"] > 0
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["added"] == ["Education", "Energy"] and summary["step"] == 2
    assert len(summary["accuracy_matrix"]) == 2 and set(summary["joint"]["step_accuracy"]) == {"1", "2"}


def test_cli_errors_are_one_line_with_a_fix(step1_folder, csvs, tmp_path, run_cli):
    result = run_cli("grow", step1_folder, csvs["known"], "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "already classes of the model" in result.stderr and "textshift transfer" in result.stderr
    result = run_cli("grow", step1_folder, csvs["new"], "-o", tmp_path / "out", "--bias-correction", "maybe")
    assert result.exit_code == 2 and "bias_correction" in result.stderr
    result = run_cli("grow", step1_folder, csvs["new"], "-o", tmp_path / "out", "--calibrate-holdout", "-2")
    assert result.exit_code == 2 and "'calibrate_holdout' setting must be >= 0; got -2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_warns_loudly_without_memory(step1, csvs, tmp_path):
    classifier, _ = step1
    plain = tmp_path / "plain"
    classifier.save(plain)
    result = invoke("grow", plain, csvs["new"], "-o", tmp_path / "out", "--epochs", "1", "--warmup-epochs", "1")
    assert result.exit_code == 0, result.output
    assert "no rehearsal memory" in result.stderr and "--old-data" in result.stderr
    assert result.stderr.count("no rehearsal memory") == 1  # shown once, as it happens


def test_loading_a_model_with_unknown_memory_labels_fails(step1_folder):
    memory = read_memory(step1_folder)
    classifier = Classifier.load(step1_folder)
    bad = Memory(memory.texts[:1], ["Sports"])
    with pytest.raises(ModelError, match="labels the model does not know"):
        grow(classifier, keyword_rows(["Energy"], 4, seed=4), memory=bad)


def test_grow_takes_a_classifier_and_says_how_to_use_a_folder(step1_folder, csvs):
    from textshift.errors import ConfigError

    with pytest.raises(ConfigError, match="Classifier.load\\(folder\\), or call grow_folder"):
        grow(str(step1_folder), csvs["new"])
