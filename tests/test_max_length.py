"""A model trained with --max-length 256 predicts with 256 tokens everywhere: the library, `predict`, `evaluate`,
compare's scoring and the plain Hugging Face pipeline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def long_backbone(tiny_backbone, tmp_path_factory) -> str:
    """The tiny random BERT with room for 512 positions (the shared one stops at 128)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert-512")
    tokenizer = BertTokenizerFast.from_pretrained(tiny_backbone, model_max_length=512)
    tokenizer.save_pretrained(folder)
    config = BertConfig.from_pretrained(tiny_backbone, max_position_embeddings=512)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def _long_texts(frame: pd.DataFrame, *, per_label: int, words: int) -> pd.DataFrame:
    """``per_label`` texts of ``words`` words for each label, made of that label's headlines."""
    rows = []
    for label, group in frame.groupby("label", sort=True):
        pool = " ".join(group.text).split()
        for i in range(per_label):  # the label's words from the i-th offset on, cycled when they run out
            rows.append({"text": " ".join(pool[(i * 53 + j) % len(pool)] for j in range(words)), "label": label})
    return pd.DataFrame(rows)


def test_every_path_predicts_with_the_trained_max_length(long_backbone, small_news, run_cli, tmp_path):
    from transformers import pipeline

    from textshift.compare import _evaluate
    from textshift.data import read_labeled
    from textshift.evaluate import evaluate_predictions
    from textshift.model import Classifier, labels_from

    news = pd.read_csv(small_news)
    pd.concat([news.head(80), _long_texts(news.iloc[80:], per_label=4, words=180)]).to_csv(tmp_path / "train.csv",
                                                                                           index=False)
    _long_texts(news.iloc[:80], per_label=3, words=200).to_csv(tmp_path / "test.csv", index=False)
    model = tmp_path / "model"
    result = run_cli("train", tmp_path / "train.csv", "--backbone", long_backbone, "-o", model, "--max-length", "256",
                     "--epochs", "1", "--warmup-epochs", "1", "--memory-per-class", "0", "-q")
    assert result.exit_code == 0, result
    classifier = Classifier.load(model)
    test = read_labeled(tmp_path / "test.csv")
    assert classifier.max_length == 256
    tokens = [len(ids) for ids in classifier.tokenizer(test.texts)["input_ids"]]
    assert min(tokens) > 128, "every test text must be cut differently at 128 and 256 tokens"

    # The default is the model's 256: cutting at 128 reads these texts differently (the tiny random model's
    # probabilities are near uniform, so they differ little; its embeddings differ plainly).
    probs = classifier.predict_proba(test.texts)
    np.testing.assert_array_equal(probs, classifier.predict_proba(test.texts, max_length=256))
    assert np.abs(probs - classifier.predict_proba(test.texts, max_length=128)).max() > 1e-7
    embeddings = classifier.embed(test.texts)
    np.testing.assert_array_equal(embeddings, classifier.embed(test.texts, max_length=256))
    assert not np.allclose(embeddings, classifier.embed(test.texts, max_length=128), atol=1e-3)
    predicted = classifier.predict(test.texts)
    assert predicted == labels_from(probs, classifier.labels)

    result = run_cli("predict", model, tmp_path / "test.csv", "-o", tmp_path / "p.csv", "-q")
    assert result.exit_code == 0, result
    frame = pd.read_csv(tmp_path / "p.csv")
    assert frame.label.tolist() == predicted
    np.testing.assert_allclose(frame.probability, probs.max(axis=1), atol=1e-4)

    expected = evaluate_predictions(test.labels, predicted, model_labels=classifier.labels)
    result = run_cli("evaluate", model, tmp_path / "test.csv", "--confusion", tmp_path / "c.png", "-q")
    assert result.exit_code == 0, result
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["lengths"]["max_length"] == 256
    assert summary["accuracy"] == pytest.approx(expected.accuracy)
    assert summary["macro_f1"] == pytest.approx(expected.macro_f1)

    scores, _ = _evaluate(classifier, test)
    assert scores == {"accuracy": pytest.approx(expected.accuracy), "macro_f1": pytest.approx(expected.macro_f1)}

    pipe = pipeline("text-classification", model=str(model), device="cpu", truncation=True)
    hf = pipe(test.texts)
    assert [row["label"] for row in hf] == predicted
    np.testing.assert_allclose([row["score"] for row in hf], probs.max(axis=1), atol=1e-5)
