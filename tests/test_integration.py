"""End to end on the real default backbone (all-MiniLM-L6-v2, offline) and real data. Marked slow."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_real_backbone_train_predict_matches_pipeline(tmp_path, run_cli):
    from transformers import pipeline

    from textshift.data import read_labeled

    news = read_labeled("embedded:news").frame
    topics = ["Defense", "Health", "Law and Crime", "International Affairs", "Sports and Recreation"]
    rows = pd.concat([news[news.label == t].head(80) for t in topics])
    data = tmp_path / "news.csv"
    rows[["text", "label"]].to_csv(data, index=False)
    model = tmp_path / "model"
    result = run_cli("train", data, "-o", model, "--epochs", "2", "-q")
    assert result.exit_code == 0, result
    result = run_cli("evaluate", model, data, "-q")
    assert result.exit_code == 0 and '"accuracy"' in result.stdout
    import json

    assert json.loads(result.stdout)["accuracy"] > 0.8  # in-sample, 5 topics: a trained model must fit it

    out = tmp_path / "bills_pred.csv"
    assert run_cli("predict", model, "embedded:bills-test", "-o", out).exit_code == 0
    ours = pd.read_csv(out)
    bills = read_labeled("embedded:bills-test")
    assert len(ours) == 1449
    pipe = pipeline("text-classification", model=str(model), device="cpu")
    theirs = [r["label"] for r in pipe(bills.texts, batch_size=64, truncation=True, max_length=128)]
    assert theirs == ours.label.tolist()
