"""What the terminal shows: user text printed as written, per-epoch progress, quiet output that stays pipeable."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

FAST = ["--epochs", "2", "--warmup-epochs", "1"]
# Labels and texts a person may well have: Rich reads the brackets as markup (a stray closing tag crashes the
# print with a MarkupError) and ":fire:" as an emoji code, unless what the user wrote is escaped.
MARKUP_LABELS = {"Defense": "[red]Agri[/] [/bold]", "Health": "[bold]Health", "Law and Crime": "Law :fire:",
                 "Sports and Recreation": "Sports [/]"}
MARKUP_TEXT = "[/i] a [link=x]closing[/link] tag [/bold] in the text"


@pytest.fixture(scope="module")
def markup_data(small_news, tmp_path_factory):
    """The small news sample with labels (and one text) that look like Rich markup, in a file whose name does."""
    frame = pd.read_csv(small_news)
    frame["label"] = frame.label.map(MARKUP_LABELS)
    frame.loc[0, "text"] = MARKUP_TEXT
    path = tmp_path_factory.mktemp("markup") / "[bold red]news.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def markup_model(markup_data, tiny_backbone, tmp_path_factory):
    from textshift.data import read_labeled
    from textshift.training import TrainConfig, train_classifier

    classifier, _ = train_classifier(read_labeled(markup_data), backbone=tiny_backbone,
                                     config=TrainConfig(epochs=1, warmup_epochs=1))
    return classifier.save(tmp_path_factory.mktemp("markup-model") / "[bold]model")


def _assert_literal(result, *expected: str) -> None:
    assert result.exit_code == 0, result
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    for text in expected:
        assert text in result.stdout, (text, result.stdout)


def test_train_prints_paths_and_warnings_as_written(markup_data, tiny_backbone, tmp_path, run_cli):
    out = tmp_path / "[bold]out"
    result = run_cli("train", markup_data, "-o", out, "--backbone", tiny_backbone, *FAST)
    _assert_literal(result, f"saved {out}")


def test_evaluate_info_and_predict_show_labels_as_written(markup_model, markup_data, tmp_path, run_cli):
    result = run_cli("evaluate", markup_model, markup_data, "--confusion", tmp_path / "cm.png")
    _assert_literal(result, *MARKUP_LABELS.values(), str(markup_data.name))
    result = run_cli("info", markup_model)
    _assert_literal(result, str(markup_model), *MARKUP_LABELS.values())
    result = run_cli("predict", markup_model, markup_data, "-o", tmp_path / "[b]p.csv")
    _assert_literal(result, str(tmp_path / "[b]p.csv"))
    assert any(label in result.stdout for label in MARKUP_LABELS.values())


def test_inspect_table_shows_labels_and_texts_as_written(markup_data, tiny_backbone, tmp_path, run_cli):
    out = tmp_path / "[i]report"
    result = run_cli("inspect", markup_data, "-o", out, "--backbone", tiny_backbone, "--top", "240")
    _assert_literal(result, str(out), "most likely label errors")
    assert sum(label in result.stdout for label in MARKUP_LABELS.values()) >= 2
    items = pd.read_csv(out / "items.csv")
    if items.loc[items.row == 0, "label_issue"].item():  # shown in the table only when flagged
        assert MARKUP_TEXT[:20] in result.stdout


def test_compare_prints_names_and_answer_as_written(markup_model, markup_data, tmp_path, run_cli):
    result = run_cli("compare", markup_model, markup_data, "-o", tmp_path / "cmp", "--sizes", "40", "--seeds", "1",
                     "--baselines", "none", "--epochs", "1")
    _assert_literal(result, "[bold red]news", str(tmp_path / "cmp" / "report.html"))


def test_error_line_shows_user_text_as_written(markup_data, tmp_path, run_cli):
    result = run_cli("train", markup_data, "-o", tmp_path / "m", "--label-column", "[/bold]")
    assert result.exit_code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'[/bold]'" in lines[0]
    result = run_cli("info", tmp_path / "[red]missing")
    assert result.exit_code == 2 and str(tmp_path / "[red]missing") in result.stderr, result


# Progress ----------------------------------------------------------------------------------------------------
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)\s+loss (\d+\.\d{4})")


@pytest.fixture()
def progress_on(monkeypatch):
    """Progress as on a terminal (stderr is captured here, so it is forced on)."""
    monkeypatch.setenv("TEXTSHIFT_PROGRESS", "1")


def test_train_shows_every_epoch_with_loss_and_validation(progress_on, small_news, tiny_backbone, tmp_path,
                                                          run_cli):
    result = run_cli("train", small_news, "-o", tmp_path / "m", "--backbone", tiny_backbone, "--epochs", "3",
                     "--warmup-epochs", "1", "--val-data", small_news)
    assert result.exit_code == 0, result
    epochs = EPOCH_LINE.findall(result.stderr)
    assert [(epoch, total) for epoch, total, _ in epochs] == [("1", "3"), ("2", "3"), ("3", "3")], result.stderr
    history = json.loads((tmp_path / "m" / "textshift.json").read_text())["metrics"]["history"]
    assert [float(loss) for *_, loss in epochs] == [round(h["train_loss"], 4) for h in history if h["epoch"] > 0]
    assert result.stderr.count("validation macro-F1") == 4 and "head warm-up" in result.stderr  # warm-up + 3


def test_quiet_prints_nothing_but_the_json(progress_on, small_news, tiny_backbone, news_model, small_bills, tmp_path,
                                           run_cli):
    for argv in (["train", small_news, "-o", tmp_path / "m", "--backbone", tiny_backbone, *FAST],
                 ["transfer", news_model, small_bills, "-o", tmp_path / "t", "--epochs", "1"]):
        result = run_cli(*argv, "-q")
        assert result.exit_code == 0, result
        assert "epoch" not in result.stderr and "loss" not in result.stderr and "training" not in result.stderr
        assert len(result.stdout.strip().splitlines()) == 1 and json.loads(result.stdout)["model"]


def test_transfer_and_grow_show_every_epoch(progress_on, news_model, small_bills, tmp_path, run_cli):
    result = run_cli("transfer", news_model, small_bills, "-o", tmp_path / "t", "--epochs", "2")
    assert result.exit_code == 0, result
    assert [e[:2] for e in EPOCH_LINE.findall(result.stderr)] == [("1", "2"), ("2", "2")], result.stderr
    result = run_cli("grow", news_model, small_bills, "-o", tmp_path / "g", "--epochs", "2", "--warmup-epochs", "1")
    assert result.exit_code == 0, result
    assert [e[:2] for e in EPOCH_LINE.findall(result.stderr)] == [("1", "2"), ("2", "2")], result.stderr


def test_training_reports_progress_to_a_callback_and_prints_nothing(tiny_backbone, small_news, capfd):
    from textshift.data import read_labeled
    from textshift.training import TrainConfig, TrainProgress, train_classifier

    events: list[TrainProgress] = []
    capfd.readouterr()
    train_classifier(read_labeled(small_news), backbone=tiny_backbone, progress=events.append,
                     config=TrainConfig(epochs=2, warmup_epochs=1, batch_size=64))
    printed = capfd.readouterr()
    assert "training" not in printed.err + printed.out and "loss" not in printed.err + printed.out
    done = [e for e in events if e.done and e.phase == "fine-tune"]
    assert [(e.epoch, e.epochs, e.step) for e in done] == [(1, 2, 4), (2, 2, 4)]  # 216 rows in batches of 64
    assert all(e.loss > 0 for e in done) and events[0].phase == "head warm-up"
    assert [e.step for e in events if e.epoch == 1 and not e.done] == [0, 1, 2, 3, 4]


def test_compare_names_the_run_of_each_progress_event(news_model, small_bills, tmp_path):
    from textshift.compare import CompareConfig, compare
    from textshift.training import TrainConfig

    events = []
    compare(news_model, small_bills, out_dir=tmp_path / "cmp", progress=events.append,
            config=CompareConfig(sizes=[40], seeds=1, strategies=["scratch", "finetune"], baselines=[],
                                 train=TrainConfig(epochs=1, warmup_epochs=1)))
    runs = {e.run for e in events if e.done and e.phase == "fine-tune"}
    assert {"scratch, 40 rows, seed 0", "finetune, 40 rows, seed 0"} <= runs
