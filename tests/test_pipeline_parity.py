"""A saved model folder in the plain Hugging Face pipeline gives what `textshift predict` gives, long texts included."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def short_model(tiny_backbone, small_news, tmp_path_factory):
    """A tiny model trained with max_length 32 (not the backbone's 128), saved through the CLI path."""
    from textshift.data import read_labeled
    from textshift.training import TrainConfig, train_classifier

    classifier, _ = train_classifier(read_labeled(small_news), backbone=tiny_backbone,
                                     config=TrainConfig(epochs=1, warmup_epochs=1, max_length=32))
    return classifier.save(tmp_path_factory.mktemp("parity") / "model")


def test_saved_tokenizer_limit_is_the_trained_max_length(short_model):
    config = json.loads((short_model / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 32


def test_pipeline_truncates_a_3000_word_text_as_predict_does(short_model, small_bills, tmp_path, run_cli):
    from transformers import pipeline

    words = " ".join(pd.read_csv(small_bills).text).split()
    texts = [" ".join(words[i:i + 3000]) for i in (0, 1000)]
    assert all(len(text.split()) == 3000 for text in texts)
    data = tmp_path / "long.csv"
    pd.DataFrame({"text": texts}).to_csv(data, index=False)
    result = run_cli("predict", short_model, data, "-o", tmp_path / "p.csv", "-q")
    assert result.exit_code == 0, result
    predicted = pd.read_csv(tmp_path / "p.csv")
    pipe = pipeline("text-classification", model=str(short_model), device="cpu", truncation=True)
    hf = pipe(texts)
    assert [r["label"] for r in hf] == predicted.label.tolist()
    np.testing.assert_allclose([r["score"] for r in hf], predicted.probability, atol=1e-5)
