"""The Python API as a notebook user calls it: wrong kinds of input get one-line textshift errors, never a raw
TypeError/ValueError from pandas, torch or transformers, and never silently wrong output."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from textshift.data import TextData, iter_text_chunks, read_labeled, read_texts
from textshift.errors import ConfigError, DataError, ModelError, OutputExistsError
from textshift.evaluate import evaluate, evaluate_predictions, plot_confusion
from textshift.memory import Memory
from textshift.model import Classifier
from textshift.predict import predict_texts

LABELS = ["Defense", "Health", "Law and Crime"]
TEXTS = ["army base closing", "new hospital funding", "the court ruled"]


@pytest.fixture(scope="module")
def classifier(tiny_backbone):
    return Classifier.from_backbone(tiny_backbone, labels=LABELS, seed=0)


def _inference_calls(classifier):
    return {"predict_proba": classifier.predict_proba, "predict_logits": classifier.predict_logits,
            "features": classifier.features, "embed": classifier.embed,
            "predict_texts": lambda texts, **kw: predict_texts(classifier, texts, **kw)}


METHODS = ["predict_proba", "predict_logits", "features", "embed", "predict_texts"]


# ---------------------------------------------------------------------------------------------- inference inputs
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, None])
def test_batch_size_below_one_or_not_a_whole_number_is_refused(classifier, method, batch_size):
    with pytest.raises(ConfigError, match=r"batch_size must be a whole number >= 1; got"):
        _inference_calls(classifier)[method](TEXTS, batch_size=batch_size)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("container", [pd.Series, np.array, tuple, iter, lambda texts: (t for t in texts)])
def test_any_sequence_or_iterable_of_strings_is_accepted(classifier, method, container):
    call = _inference_calls(classifier)[method]
    expected = call(list(TEXTS))
    got = call(container(TEXTS))
    if method == "predict_texts":
        pd.testing.assert_frame_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_a_bare_string_is_refused_not_split_into_characters(classifier, method):
    with pytest.raises(DataError, match=r"expected a list of texts, got one string .*wrap it in a list"):
        _inference_calls(classifier)[method]("farm aid")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("make", "message"), [
    (lambda: None, r"expected a list of texts, got None"),
    (lambda: (x for x in [1, 2]), r"texts\[0\] is int 1; expected a string at every position \(2 of 2"),
    (lambda: [None], r"texts\[0\] is None; expected a string"),
    (lambda: [1, 2], r"texts\[0\] is int 1; expected a string"),
    (lambda: ["fine", "also fine", 3.5], r"texts\[2\] is float 3.5; expected a string"),
    (lambda: 5, r"expected a list of texts, got int"),
    (lambda: pd.DataFrame({"text": TEXTS}), r"got a DataFrame .*df\['text'\]"),
    (lambda: {"a": "x"}, r"got a dict"),
    (lambda: b"farm aid", r"got bytes"),
], ids=["None", "generator", "[None]", "[1, 2]", "float", "int", "DataFrame", "dict", "bytes"])
def test_non_text_input_names_the_first_bad_item(classifier, method, make, message):
    with pytest.raises(DataError, match=message):
        _inference_calls(classifier)[method](make())


@pytest.mark.parametrize("method", ["predict_proba", "predict_logits"])
def test_no_texts_give_an_empty_array_with_a_column_per_class(classifier, method):
    out = _inference_calls(classifier)[method]([])
    assert out.shape == (0, len(LABELS))
    assert _inference_calls(classifier)[method](pd.Series([], dtype=object)).shape == (0, len(LABELS))


def test_no_texts_give_empty_features_embeddings_and_frame(classifier):
    hidden = classifier.model.config.hidden_size
    assert classifier.features([]).shape == (0, hidden)
    assert classifier.embed([]).shape == (0, hidden)
    frame = predict_texts(classifier, [])
    assert len(frame) == 0 and list(frame.columns) == ["label", "probability"]


@pytest.mark.parametrize("max_length", [0, -1, 1, 2, "128"])
def test_max_length_without_room_for_text_is_refused(classifier, max_length):
    with pytest.raises(ConfigError, match="max_length"):
        classifier.predict_proba(TEXTS, max_length=max_length)


def test_predict_texts_refuses_top_k_before_predicting(classifier, monkeypatch):
    monkeypatch.setattr(classifier, "predict_proba", lambda *a, **k: pytest.fail("predicted before checking"))
    with pytest.raises(ConfigError, match="top_k must be a whole number >= 1; got 0"):
        predict_texts(classifier, TEXTS, top_k=0)


# ---------------------------------------------------------------------------------------------- TextData
@pytest.mark.parametrize(("texts", "labels", "message"), [
    ("abc", ["x", "y", "z"], r"expected a list of texts, got one string"),
    (["a", "b", "c"], "xyz", r"expected a list of labels, got one string"),
    (["a", "b", "c"], ["x"], r"got 3 texts but 1 labels; expected one label per text"),
    (None, None, r"expected a list of texts, got None"),
    ([], None, r"expected at least one text"),
    (["a", None], ["x", "y"], r"position 1"),
])
def test_from_lists_refuses_what_it_would_split_or_misalign(texts, labels, message):
    with pytest.raises(DataError, match=message):
        TextData.from_lists(texts, labels)


def test_from_lists_accepts_series_and_a_missing_name():
    frame = pd.DataFrame({"text": TEXTS, "label": LABELS})
    data = TextData.from_lists(frame.text, frame.label, name=None)
    assert data.texts == TEXTS and data.labels == LABELS and data.fingerprint.path == "<memory>"


@pytest.mark.parametrize("positions", [[3], [-1], [0, 7, -2], [0.0], [True, False, True], 1])
def test_subset_refuses_positions_that_are_not_rows(positions):
    data = TextData.from_lists(TEXTS, LABELS)
    with pytest.raises(DataError, match="position"):
        data.subset(positions)


def test_subset_keeps_valid_positions_in_order():
    data = TextData.from_lists(TEXTS, LABELS)
    assert data.subset(np.array([2, 0])).texts == [TEXTS[2], TEXTS[0]]
    assert data.subset(range(0)).texts == []


# ---------------------------------------------------------------------------------------------- readers
@pytest.mark.parametrize(("path", "message"), [
    (pd.DataFrame({"text": ["a"], "label": ["b"]}), r"got a DataFrame\. .*TextData\.from_lists\(df\.text\.tolist"),
    (None, r"expected a file path or embedded:NAME; got NoneType"),
    (b"data.csv", r"got bytes"),
    ("", r"got an empty string"),
])
@pytest.mark.parametrize("reader", [read_labeled, read_texts, lambda p: next(iter_text_chunks(p))])
def test_readers_refuse_what_is_not_a_path(reader, path, message):
    with pytest.raises(DataError, match=message):
        reader(path)


@pytest.mark.parametrize("option", ["text_column", "label_column"])
@pytest.mark.parametrize("value", [0, "", ["text"]])
def test_column_names_must_be_strings(option, value):
    with pytest.raises(ConfigError, match=f"{option} must be a column name"):
        read_labeled("embedded:news", **{option: value})


def test_chunked_reader_column_name_must_be_a_string():
    with pytest.raises(ConfigError, match="text_column must be a column name"):
        next(iter_text_chunks("embedded:news", text_column=0))


def test_paths_starting_with_tilde_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    pd.DataFrame({"text": TEXTS, "label": LABELS}).to_csv(tmp_path / "d.csv", index=False)
    assert read_labeled("~/d.csv").texts == TEXTS
    assert read_texts("~/d.csv").texts == TEXTS
    assert next(iter_text_chunks("~/d.csv"))["text"].tolist() == TEXTS


# ---------------------------------------------------------------------------------------------- evaluation
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


# ---------------------------------------------------------------------------------------------- save / load
def test_save_under_a_file_is_an_output_error(classifier, tmp_path):
    (tmp_path / "afile.txt").write_text("mine")
    for target in (tmp_path / "afile.txt" / "sub", tmp_path / "afile.txt" / "sub" / "deeper"):
        with pytest.raises(OutputExistsError, match=r"afile\.txt is a file"):
            classifier.save(target)
    assert (tmp_path / "afile.txt").read_text() == "mine"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_save_where_nothing_can_be_written_is_a_config_error(classifier):
    with pytest.raises(ConfigError, match=r"cannot write in /proc \(.*\); expected a folder you can write to"):
        classifier.save("/proc/textshift-x")


@pytest.mark.parametrize("path", [None, "", 3])
def test_save_needs_a_path(classifier, path):
    with pytest.raises(ConfigError, match="expected a folder path"):
        classifier.save(path)


def test_save_and_load_expand_tilde_and_still_replace_a_model_folder(classifier, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # without expansion the model would land in a folder named '~' here
    assert classifier.save("~/m") == tmp_path / "m"
    assert classifier.save("~/m") == tmp_path / "m"  # an existing textshift model folder is replaced
    assert Classifier.load("~/m").labels == LABELS
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("path", [None, 0, ""])
def test_load_needs_a_path(path):
    with pytest.raises(ModelError, match="expected a model folder path"):
        Classifier.load(path)


# ---------------------------------------------------------------------------------------------- memory
def test_memory_refuses_texts_and_labels_of_different_lengths():
    with pytest.raises(DataError, match="got 3 texts but 1 labels"):
        Memory(["a", "b", "c"], ["Health"])
    with pytest.raises(DataError, match="got 2 texts but 1 labels"):
        Memory().updated(["a", "b"], ["Health"], per_class=5)
    with pytest.raises(DataError, match="expected a list of texts, got one string"):
        Memory("abc", ["x", "y", "z"])


def test_memory_keeps_matching_rows():
    memory = Memory(("a", "b"), pd.Series(["Health", "Defense"]))
    assert memory.texts == ["a", "b"] and memory.labels == ["Health", "Defense"]
