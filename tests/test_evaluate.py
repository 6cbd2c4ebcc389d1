"""textshift.evaluate: scores from predictions, evaluating a model on labelled data, the confusion-matrix PNG."""

from __future__ import annotations

import pandas as pd
import pytest

from textshift.errors import ConfigError, DataError, OutputExistsError
from textshift.evaluate import evaluate, evaluate_predictions, plot_confusion
from textshift.model import Classifier

LABELS = ["Defense", "Health", "Law and Crime"]
TEXTS = ["army base closing", "new hospital funding", "the court ruled"]


@pytest.fixture(scope="module")
def classifier(tiny_backbone):
    return Classifier.from_backbone(tiny_backbone, labels=LABELS, seed=0)


@pytest.fixture()
def report():
    return evaluate_predictions(["a", "b", "a"], ["a", "a", "a"], model_labels=["a", "b"])


def test_plot_confusion_refuses_a_path_that_is_not_png(report, tmp_path):
    victim = tmp_path / "victim.csv"
    victim.write_text("text,label\nx,y\n")
    with pytest.raises(ConfigError, match=r"must end in \.png"):
        plot_confusion(report, victim)
    with pytest.raises(ConfigError, match=r"must end in \.png"):
        plot_confusion(report, victim, overwrite=True)
    assert victim.read_text() == "text,label\nx,y\n"


def test_plot_confusion_replaces_an_existing_png_only_with_overwrite(report, tmp_path):
    png = tmp_path / "cm.png"
    png.write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="is not a confusion-matrix PNG"):  # not one it drew: never
        plot_confusion(report, png, overwrite=True)
    assert png.read_bytes() == b"mine"
    png.unlink()
    plot_confusion(report, png)
    earlier = png.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists.*overwrite=True"):
        plot_confusion(report, png)
    assert png.read_bytes() == earlier
    assert plot_confusion(report, png, overwrite=True) == png
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"], "temporary file left behind"


@pytest.mark.parametrize("where", ["missing/cm.png", "folder.png", None])
def test_plot_confusion_refuses_missing_folders_folders_and_non_paths(report, tmp_path, where):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises((ConfigError, OutputExistsError)):
        plot_confusion(report, tmp_path / where if where else None)


def test_cli_evaluate_rewrites_its_default_png_on_every_run(classifier, small_news, tmp_path, run_cli):
    model = classifier.save(tmp_path / "model")
    for _ in range(2):
        result = run_cli("evaluate", model, small_news, "-q")
        assert result.exit_code == 0, result
    assert (model / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_predictions_refuses_lists_of_different_lengths():
    with pytest.raises(DataError, match="got 3 true labels but 2 predicted ones"):
        evaluate_predictions(["a", "b", "a"], ["a", "b"])


def test_evaluate_needs_text_data(classifier):
    with pytest.raises(DataError, match="expected labelled data as a TextData; got DataFrame"):
        evaluate(classifier, pd.DataFrame({"text": TEXTS, "label": LABELS}))
