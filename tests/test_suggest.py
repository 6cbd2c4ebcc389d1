"""textshift suggest: strategies, determinism, no near-copies in a batch, the cache, bad input, the loop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from textshift.data import TextData, read_labeled
from textshift.errors import ForeignOutputError, OutputExistsError
from textshift.suggest import STRATEGIES, label_loop, pool_outputs, suggest, uncertainty

CLASSES = ["Defense", "Education", "Health", "Law and Crime"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_backbone):
    from textshift.model import Classifier

    folder = tmp_path_factory.mktemp("suggest") / "model"
    Classifier.from_backbone(tiny_backbone, labels=CLASSES, seed=0).save(folder)
    return folder


@pytest.fixture(scope="module")
def classifier(model_dir):
    from textshift.model import Classifier

    return Classifier.load(model_dir)


@pytest.fixture()
def pool_csv(tmp_path, small_bills):
    frame = pd.read_csv(small_bills)[["text"]].head(120)
    frame.loc[len(frame)] = frame.loc[3, "text"]  # an exact copy
    frame.loc[len(frame)] = "  " + frame.loc[7, "text"].upper() + " "  # the same text, other case and spacing
    path = tmp_path / "pool.csv"
    frame.to_csv(path, index=False)
    return path


def test_pool_outputs_match_the_model_and_are_cached(classifier, tmp_path, small_bills):
    texts = read_labeled(small_bills).texts[:40]
    features, logits = pool_outputs(classifier, texts, cache_dir=tmp_path)
    np.testing.assert_allclose(logits, classifier.predict_logits(texts), atol=1e-5)
    assert features.shape == (40, 32) and len(list(tmp_path.glob("*.safetensors"))) == 1
    again = pool_outputs(classifier, texts, cache_dir=tmp_path)
    np.testing.assert_array_equal(again[0], features)
    other = pool_outputs(classifier, texts[:39], cache_dir=tmp_path)  # another pool, another cache file
    assert other[0].shape[0] == 39 and len(list(tmp_path.glob("*.safetensors"))) == 2


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_deterministic_and_never_takes_two_copies(classifier, pool_csv, tmp_path, strategy):
    from textshift.data import read_texts

    pool = read_texts(pool_csv)
    first = suggest(classifier, pool, n=20, strategy=strategy, seed=5, cache_dir=tmp_path)
    second = suggest(classifier, pool, n=20, strategy=strategy, seed=5, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first.table, second.table)
    table = first.table
    assert len(table) == 20 and list(table["rank"]) == list(range(1, 21))
    normalised = table["text"].str.split().str.join(" ").str.casefold()
    assert normalised.is_unique
    assert set(table["guess"]) <= set(CLASSES) and table["probability"].between(0, 1).all()
    assert table["reason"].str.len().gt(0).all()
    distinct = pool.frame["text"].str.split().str.join(" ").str.casefold().nunique()
    assert first.candidates == distinct < len(pool)  # copies count once
    assert first.strategy == ("coverage" if strategy == "auto" else strategy)


def test_near_duplicates_are_never_both_in_a_batch(classifier, tmp_path):
    base = [f"A bill to fund program number {i} for schools in every state" for i in range(30)]
    near = [text + " now" for text in base]  # one word more: Jaccard 11/12
    pool = TextData.from_lists(base + near + [f"Unrelated defense text {i} about the army and navy bases"
                                              for i in range(5)])
    chosen = suggest(classifier, pool, n=30, strategy="margin", seed=0, cache_dir=tmp_path)
    stems = chosen.table["text"].str.replace(" now", "", regex=False)
    assert stems.is_unique and chosen.duplicates_skipped > 0


def test_margin_and_entropy_rank_by_uncertainty(classifier, tmp_path, small_bills):
    pool = read_labeled(small_bills).subset(range(100))
    for strategy, column, ascending in (("margin", "margin", True), ("entropy", "entropy", False)):
        table = suggest(classifier, pool, n=10, strategy=strategy, cache_dir=tmp_path).table
        everything = suggest(classifier, pool, n=90, strategy="random", cache_dir=tmp_path).table
        best = table[column].to_numpy()
        rest = everything[~everything["row"].isin(table["row"])][column].to_numpy()
        assert (best.max() <= rest.min() + 1e-4) if ascending else (best.min() >= rest.max() - 1e-4)


def test_labeled_rows_are_excluded(classifier, tmp_path, small_bills):
    data = read_labeled(small_bills).subset(range(60))
    labeled = data.subset(range(10))
    chosen = suggest(classifier, data, n=40, strategy="kmeans", labeled=labeled, cache_dir=tmp_path)
    assert not set(chosen.table["text"]) & set(labeled.texts) and chosen.labeled_rows == 10


def test_uncertainty():
    margin, entropy = uncertainty(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(margin, [0.0, 1.0])
    np.testing.assert_allclose(entropy, [np.log(2), 0.0], atol=1e-9)


# ------------------------------------------------------------------------------------------------ bad input (CLI)
def one_line_error(result, *fragments):
    assert result.exit_code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or (len(lines) == 2 and lines[0].startswith("ranking")), result.stderr
    assert lines[-1].startswith("error:") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_bad_input_gets_one_line(model_dir, tmp_path, small_bills, run_cli, monkeypatch):
    monkeypatch.setenv("TEXTSHIFT_CACHE", str(tmp_path / "cache"))
    run = run_cli
    bills = pd.read_csv(small_bills)
    (tmp_path / "empty.csv").write_text("text\n")
    bills[["text"]].head(30).to_csv(tmp_path / "pool.csv", index=False)
    bills[["text", "label"]].head(30).to_csv(tmp_path / "all.csv", index=False)
    bills[["text", "label"]].iloc[25:35].to_csv(tmp_path / "outside.csv", index=False)
    unknown = bills[["text", "label"]].head(3).assign(label="Space travel")
    unknown.to_csv(tmp_path / "unknown.csv", index=False)
    clash = pd.concat([bills[["text", "label"]].head(2), bills[["text", "label"]].head(1).assign(label="Health")
                       if bills.label.iat[0] != "Health" else bills[["text", "label"]].head(1).assign(label="Defense")])
    clash.to_csv(tmp_path / "clash.csv", index=False)
    out = tmp_path / "out.csv"
    one_line_error(run("suggest", model_dir, tmp_path / "empty.csv", "-o", out), "no data rows")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "-n", 31, "-o", out),
                   "-n 31 is more than the 30", "Pass -n 30")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "--labeled", tmp_path / "all.csv", "-o", out),
                   "labelled already")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "--labeled", tmp_path / "outside.csv", "-o", out),
                   "not in the pool")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "--labeled", tmp_path / "unknown.csv", "-o", out),
                   "unknown to the model", "--new-labels")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "--labeled", tmp_path / "clash.csv", "-o", out),
                   "one label per text")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "-n", 0, "-o", out), "-n")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "--strategy", "best", "-o", out),
                   "unknown strategy")
    assert not out.exists()
    ok = run("suggest", model_dir, tmp_path / "pool.csv", "--labeled", tmp_path / "unknown.csv", "--new-labels",
             "-n", 5, "-o", out, "--quiet")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["chosen"] == 5 and len(pd.read_csv(out)) == 5
    before = out.read_bytes()
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "-n", 5, "-o", out), "exists")
    assert out.read_bytes() == before  # never overwritten without --overwrite
    mine = tmp_path / "mine.csv"
    mine.write_text("text,label\nmy precious row,Health\n")
    one_line_error(run("suggest", model_dir, tmp_path / "pool.csv", "-n", 5, "-o", mine, "--overwrite"),
                   "is not a suggestions CSV")
    assert mine.read_text() == "text,label\nmy precious row,Health\n"  # a user's file, whatever --overwrite says
    again = run("suggest", model_dir, tmp_path / "pool.csv", "-n", 4, "-o", out, "--overwrite", "--quiet")
    assert again.exit_code == 0 and len(pd.read_csv(out)) == 4  # an earlier suggestions file is replaced


def test_label_store_accepts_a_new_class_and_exports(tmp_path, model_dir):
    from textshift.review.label import export_labels, open_label_store, read_suggestions

    pd.DataFrame({"rank": [1, 2, 3], "row": [4, 9, 2], "text": ["army base", "school lunch", "clinic"],
                  "guess": ["Defense", "Education", "Health"], "probability": [0.4, 0.3, 0.5],
                  "reason": ["a", "b", "c"]}).to_csv(tmp_path / "to_label.csv", index=False)
    data = read_suggestions(tmp_path / "to_label.csv")
    with open_label_store(data, classes=CLASSES) as store:
        store.apply(0, "relabel", label="Defense")
        store.apply(1, "relabel", label="  School meals ")
        store.apply(2, "ambiguous")
        assert "School meals" in store.classes
        store.undo()  # the skip
        summary = export_labels(store, tmp_path / "labelled.csv")
    assert summary["rows"] == 2
    labelled = read_labeled(tmp_path / "labelled.csv")
    assert labelled.labels == ["Defense", "School meals"] and labelled.texts == ["army base", "school lunch"]
    with open_label_store(data) as reopened:  # the log survives a reopen, with the new class
        assert reopened.summary()["decided"] == 2 and "School meals" in reopened.classes
        with pytest.raises(OutputExistsError):
            export_labels(reopened, tmp_path / "labelled.csv")
        export_labels(reopened, tmp_path / "labelled.csv", overwrite=True)  # an earlier export of these labels
        mine = tmp_path / "mine.csv"
        mine.write_text("text,label\nmy own text,Health\n")
        with pytest.raises(ForeignOutputError):
            export_labels(reopened, mine, overwrite=True)
        assert mine.read_text() == "text,label\nmy own text,Health\n"


@pytest.mark.slow
def test_label_loop_records_every_round(model_dir, small_bills, tmp_path):
    from textshift.training import TrainConfig

    data = read_labeled(small_bills)
    pool, test = data.subset(range(120)), data.subset(range(120, 200))
    rounds = []
    done = label_loop(model_dir, pool, pool.labels, rounds=[8, 16], strategy="kmeans", warm_start=8, seed=1,
                      test=test, train_config=TrainConfig(epochs=1, warmup_epochs=0, seed=1),
                      on_round=rounds.append, cache_dir=tmp_path)
    assert [r.labels for r in done] == [8, 16] and [r.strategy for r in done] == ["random", "kmeans"]
    assert rounds == done and all(0 <= r.macro_f1 <= 1 for r in done)
    assert len(set(done[0].chosen) | set(done[1].chosen)) == 16
    resumed = label_loop(model_dir, pool, pool.labels, rounds=[8, 16, 24], strategy="kmeans", warm_start=8, seed=1,
                         test=test, train_config=TrainConfig(epochs=1, warmup_epochs=0, seed=1),
                         labeled_rows=done[0].chosen + done[1].chosen, cache_dir=tmp_path)
    assert [r.labels for r in resumed] == [24]
