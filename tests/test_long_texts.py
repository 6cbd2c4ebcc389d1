"""Texts longer than the model's length: truncation reported, chunked reading, bounded windows, bad settings."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from textshift.errors import ConfigError
from textshift.windows import LengthReport, LongTexts, window_starts, windows_needed

CHUNKS = LongTexts(mode="chunks", overlap=8, max_windows=64)


@pytest.fixture(scope="module")
def long_docs(tmp_path_factory, small_news):
    """A CSV of 40 'documents', each 6 to 20 headlines of one topic joined (most beyond 32 tokens)."""
    frame = pd.read_csv(small_news)
    rng = np.random.default_rng(0)
    rows = []
    for label, group in frame.groupby("label"):
        texts = group.text.tolist()
        for _ in range(10):
            rows.append({"text": " ".join(rng.choice(texts, rng.integers(6, 20))), "label": label})
    path = tmp_path_factory.mktemp("long") / "docs.csv"
    pd.DataFrame(rows).sample(frac=1, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny_classifier(tiny_backbone):
    from textshift.model import Classifier

    return Classifier.from_backbone(tiny_backbone, labels=["a", "b", "c"], seed=0)


def test_window_starts_cover_the_text_and_spread_when_capped():
    assert window_starts(100, content=30, long_texts=LongTexts()) == [0]
    starts = window_starts(100, content=30, long_texts=LongTexts("chunks", overlap=10))
    assert starts[0] == 0 and starts[-1] == 70 and all(b - a <= 20 for a, b in itertools.pairwise(starts))
    assert len(starts) == windows_needed(100, content=30, overlap=10)
    capped = window_starts(100_000, content=30, long_texts=LongTexts("chunks", overlap=10, max_windows=5))
    assert len(capped) == 5 and capped[0] == 0 and capped[-1] == 100_000 - 30


@pytest.mark.parametrize("values, words", [({"mode": "whole"}, "truncate, chunks"), ({"overlap": -1}, ">= 0"),
                                           ({"max_windows": 0}, ">= 1")])
def test_bad_long_text_settings_are_one_line(values, words):
    with pytest.raises(ConfigError, match=words) as info:
        LongTexts(**values)
    assert "\n" not in str(info.value)


def test_truncation_equals_the_tokenizers_and_is_counted(tiny_classifier):
    import torch

    texts = ["a short title", " ".join(["health care for veterans"] * 30)]
    ours = tiny_classifier.predict_logits(texts, max_length=32, long_texts=LongTexts())
    encoded = tiny_classifier.tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = tiny_classifier.model(**encoded).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    report = tiny_classifier.length_report(texts, max_length=32, long_texts=LongTexts())
    full = len(tiny_classifier.tokenizer(texts[1])["input_ids"])
    assert (report.texts, report.over, report.longest, report.tokens_over) == (2, 1, full, full - 32)
    assert report.tokens_unread == full - 32 and "1 of 2 texts" in report.summary()


def test_chunks_average_the_windows_logits(tiny_classifier):
    import torch

    text = " ".join(["the senate passed a bill on hospital funding and military bases"] * 12)
    logits = tiny_classifier.predict_logits([text, "short"], max_length=32, long_texts=CHUNKS, batch_size=3)
    ids = tiny_classifier.tokenizer(text, add_special_tokens=False)["input_ids"]
    cls, sep = tiny_classifier.tokenizer.cls_token_id, tiny_classifier.tokenizer.sep_token_id
    starts = window_starts(len(ids), content=30, long_texts=CHUNKS)
    windows = torch.tensor([[cls, *ids[s:s + 30], sep] for s in starts])
    with torch.no_grad():
        expected = tiny_classifier.model(input_ids=windows).logits.mean(0).numpy()
    assert len(starts) > 3
    np.testing.assert_allclose(logits[0], expected, atol=1e-5)
    np.testing.assert_allclose(logits[1], tiny_classifier.predict_logits(["short"], max_length=32)[0], atol=1e-5)


def test_a_50000_word_document_reads_at_most_max_windows(tiny_classifier):
    seen = []
    handle = tiny_classifier.model.register_forward_hook(lambda _m, args, kwargs, _o: seen.append(
        tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        document = " ".join(["the committee reported a bill on veterans health care"] * 5000)
        capped = LongTexts("chunks", overlap=8, max_windows=16)
        probs = tiny_classifier.predict_proba([document], max_length=32, long_texts=capped, batch_size=8)
    finally:
        handle.remove()
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1)
    assert sum(rows for rows, _ in seen) == 16 and max(rows for rows, _ in seen) <= 8
    assert max(width for _, width in seen) <= 32
    report = tiny_classifier.length_report([document], max_length=32, long_texts=capped)
    assert report.capped == 1 and report.windows == 16 and report.tokens_unread > 40_000
    assert "window cap" in report.summary()


def test_overlap_not_smaller_than_the_window_is_refused(tiny_classifier):
    with pytest.raises(ConfigError, match="window overlap 30 is not smaller") as info:
        tiny_classifier.predict_proba(["text"], max_length=32, long_texts=LongTexts("chunks", overlap=30))
    assert "\n" not in str(info.value)


def test_chunks_train_save_load_and_plain_pipeline(tiny_backbone, long_docs, tmp_path):
    from transformers import pipeline

    from textshift.data import read_labeled
    from textshift.model import Classifier
    from textshift.training import TrainConfig, train_classifier

    data = read_labeled(long_docs)
    config = TrainConfig(epochs=1, warmup_epochs=1, max_length=32, long_texts="chunks", window_overlap=8,
                         val_fraction=0.0)
    classifier, result = train_classifier(data, backbone=tiny_backbone, config=config)
    assert result.lengths["over"] > len(data) // 2 and result.lengths["windows"] > 2 * len(data)
    folder = classifier.save(tmp_path / "model")
    settings = json.loads((folder / "textshift.json").read_text())["settings"]
    assert (settings["long_texts"], settings["window_overlap"]) == ("chunks", 8)
    loaded = Classifier.load(folder)
    assert loaded.long_texts == LongTexts("chunks", overlap=8, max_windows=64)
    np.testing.assert_allclose(loaded.predict_proba(data.texts[:5], max_length=32),
                               classifier.predict_proba(data.texts[:5], max_length=32), atol=1e-5)
    # plain transformers reads the folder too, truncating: it equals textshift's truncate mode
    pipe = pipeline("text-classification", model=str(folder), device=-1, top_k=None)
    scores = pipe(data.texts[:5], truncation=True, max_length=32)
    theirs = np.array([[next(s["score"] for s in row if s["label"] == label) for label in loaded.labels]
                       for row in scores])
    np.testing.assert_allclose(theirs, loaded.predict_proba(data.texts[:5], max_length=32, long_texts=LongTexts()),
                               atol=1e-4)


def test_evaluate_reports_lengths(tiny_backbone, long_docs):
    from textshift.data import read_labeled
    from textshift.evaluate import evaluate
    from textshift.model import Classifier

    data = read_labeled(long_docs)
    classifier = Classifier.from_backbone(tiny_backbone, labels=data.classes, seed=0)
    classifier.meta.settings = {"max_length": 32}
    report = evaluate(classifier, data)
    assert report.lengths["texts"] == len(data) and report.lengths["over"] > 0
    assert LengthReport(**report.lengths).summary().startswith(f"{report.lengths['over']} of {len(data)}")


def test_cli_chunks_train_info_predict(run_cli, tiny_backbone, long_docs, tmp_path):
    model = tmp_path / "model"
    result = run_cli("train", long_docs, "-o", model, "--backbone", tiny_backbone, "--epochs", "1",
                     "--warmup-epochs", "1", "--max-length", "32", "--long-texts", "chunks", "--window-overlap", "8")
    assert result.exit_code == 0, result
    assert "long texts:" in result.stderr and "windows" in result.stderr
    info = run_cli("info", model)
    assert "long texts: chunks (windows of 32 tokens overlapping by 8" in info.stdout
    predictions = tmp_path / "predictions.csv"
    result = run_cli("predict", model, long_docs, "-o", predictions)
    assert result.exit_code == 0, result
    assert "read in" in result.stderr and len(pd.read_csv(predictions)) == len(pd.read_csv(long_docs))
    result = run_cli("evaluate", model, long_docs, "--quiet")
    assert result.exit_code == 0 and json.loads(result.stdout)["lengths"]["mode"] == "chunks"
    # a 50,000-word document: one prediction from at most --max-windows (64) windows, and the cap is reported
    document = tmp_path / "document.csv"
    pd.DataFrame({"text": [" ".join(["the committee reported a bill on veterans health care"] * 5000)]}).to_csv(
        document, index=False)
    result = run_cli("predict", model, document, "-o", tmp_path / "document-predictions.csv", "--quiet")
    assert result.exit_code == 0, result
    lengths = json.loads(result.stdout)["lengths"]
    assert (lengths["capped"], lengths["windows"]) == (1, 64) and lengths["tokens_unread"] > 40_000
    assert len(pd.read_csv(tmp_path / "document-predictions.csv")) == 1
    result = run_cli("predict", model, document, "-o", tmp_path / "again.csv")
    assert result.exit_code == 0 and "needed more than the window cap" in result.stderr


@pytest.mark.parametrize("command", ["train", "predict"])
def test_cli_empty_text_is_one_line_and_writes_nothing(run_cli, tiny_backbone, long_docs, tmp_path, command):
    data = tmp_path / "with-empty.csv"
    frame = pd.read_csv(long_docs)
    frame.loc[3, "text"] = "   "
    frame.to_csv(data, index=False)
    if command == "train":
        output = tmp_path / "model"
        result = run_cli("train", data, "-o", output, "--backbone", tiny_backbone, "--epochs", "1",
                         "--max-length", "32", "--long-texts", "chunks", "--window-overlap", "8")
    else:
        model = tmp_path / "model"
        from textshift.model import Classifier

        clf = Classifier.from_backbone(tiny_backbone, labels=sorted(frame.label.unique()), seed=0)
        clf.long_texts = CHUNKS
        clf.save(model)
        output = tmp_path / "predictions.csv"
        result = run_cli("predict", model, data, "-o", output)
    assert result.exit_code == 2, result
    assert "empty or whitespace-only" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not output.exists() and not list(tmp_path.glob("predictions*"))


@pytest.mark.parametrize("args, words", [
    (["--long-texts", "whole"], "long_texts must be one of truncate, chunks"),
    (["--long-texts", "chunks", "--window-overlap", "30"], "window overlap 30 is not smaller"),
    (["--long-texts", "chunks", "--max-windows", "0"], "max_windows must be a whole number >= 1"),
    (["--max-length", "4096"], "longer than this model takes"),
])
def test_cli_bad_long_text_options(run_cli, tiny_backbone, long_docs, tmp_path, args, words):
    model = tmp_path / "model"
    result = run_cli("train", long_docs, "-o", model, "--backbone", tiny_backbone, "--epochs", "1",
                     "--max-length", "32", *args)
    assert result.exit_code == 2, result
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not model.exists()
