"""The recommendation asks for evidence before choosing transfer over scratch."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from textshift import selection
from textshift.selection import RESAMPLES, _macro_f1, describe, pick, share_better


def test_bootstrap_macro_f1_is_sklearns_over_the_true_classes():
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 5, size=(30, 40)), rng.integers(0, 6, size=(30, 40))
    mine = _macro_f1(true, predicted, 6)
    for row in range(30):
        present = sorted(set(true[row]))
        assert mine[row] == pytest.approx(f1_score(true[row], predicted[row], labels=present, average="macro",
                                                   zero_division=0))


def test_share_better_is_paired_and_counts_ties_as_not_better():
    truth = ["a", "b", "c"] * 10
    assert share_better(truth, truth, ["a"] * 30, seed=0) == 1.0
    assert share_better(truth, ["a"] * 30, truth, seed=0) == 0.0
    assert share_better(truth, truth, truth, seed=0) == 0.0
    one_more = truth[:-1] + ["a"]  # one row wrong: better than it in the resamples that draw that row
    assert 0.5 < share_better(truth, truth, one_more, seed=0) < 1.0
    assert share_better([], [], [], seed=0) == 0.0


def test_transfer_needs_clear_evidence_against_scratch():
    truth = ["a", "b", "c", "d"] * 6
    noisy = list(np.random.default_rng(1).choice(list("abcd"), size=24))
    nearly = noisy[:]
    nearly[0] = truth[0] if noisy[0] != truth[0] else nearly[0]
    candidates = ["scratch", "finetune"]
    scores = {"scratch": 0.30, "finetune": 0.31}
    chosen, reason = pick(candidates, scores, {"scratch": noisy, "finetune": nearly}, truth, seed=0)
    assert chosen == "scratch" and reason["best"] == "finetune" and reason["share_better"] < selection.LEVEL
    assert "beat 'scratch' in only" in describe(reason, chosen) and f"{RESAMPLES:,} resamples" in describe(reason,
                                                                                                         chosen)
    chosen, reason = pick(candidates, {"scratch": 0.3, "finetune": 0.9}, {"scratch": noisy, "finetune": truth},
                          truth, seed=0)
    assert chosen == "finetune" and reason["share_better"] >= selection.LEVEL and describe(reason, chosen) == ""
    # without scratch among the candidates the highest score wins; ties go to the earlier candidate
    assert pick(["finetune", "encoder"], {"finetune": 0.2, "encoder": 0.2}, {}, truth, seed=0)[0] == "finetune"
    assert pick(candidates, {"scratch": 0.5, "finetune": 0.4}, {}, truth, seed=0)[0] == "scratch"


def test_compare_stores_held_out_predictions_and_redoes_choices_of_an_older_rule(news_model, small_bills,
                                                                                 tmp_path):
    from textshift.compare import CompareConfig, compare
    from textshift.training import TrainConfig

    config = CompareConfig(sizes=[40], seeds=1, strategies=["scratch", "finetune"], baselines=[],
                           train=TrainConfig(epochs=1, warmup_epochs=1))
    first = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=config)
    db = sqlite3.connect(tmp_path / "cmp" / "runs.sqlite")
    held = dict(db.execute("SELECT strategy, predicted FROM held_out").fetchall())
    [settings] = db.execute("SELECT settings FROM runs WHERE strategy='recommended'").fetchone()
    reason = json.loads(settings)["choice"]
    assert reason["rule"] == selection.RULE and reason["held_out_rows"] >= 5
    assert set(held) == {"inner:scratch", "inner:finetune"}
    assert len(json.loads(held["inner:scratch"])) == len(json.loads(held["inner:finetune"])) == reason["held_out_rows"]
    # a store written before the rule: no held-out predictions, no reason; the choice is made again
    with db:
        db.execute("DELETE FROM held_out")
        db.execute("UPDATE runs SET settings='{}', chosen='finetune' WHERE strategy='recommended'")
    again = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=config)
    assert db.execute("SELECT COUNT(*) FROM held_out").fetchone()[0] == 2
    pd.testing.assert_frame_equal(again.runs[again.runs.strategy == "recommended"][["k", "seed", "chosen"]],
                                  first.runs[first.runs.strategy == "recommended"][["k", "seed", "chosen"]])
    db.close()


def test_folds_hold_every_row_out_once_and_spread_each_class():
    from textshift.training import stratified_folds

    labels = np.array([0] * 9 + [1] * 5 + [2])
    folds = stratified_folds(labels, 4, seed=3)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held) == list(range(15)) and len(folds) == 4
    for fit, rows in folds:
        assert set(fit).isdisjoint(rows) and len(fit) + len(rows) == 15
        assert 2 <= sum(labels[i] == 0 for i in rows) <= 3  # 9 rows of class 0 spread over 4 folds
    assert stratified_folds(labels, 4, seed=3)[0][1].tolist() == folds[0][1].tolist()  # seeded
    assert len(stratified_folds(np.array([0, 1]), 4, seed=0)) == 2  # no more folds than rows


def test_probe_survives_a_fold_without_any_class_the_source_knows(news_model):
    from textshift.data import TextData
    from textshift.model import Classifier
    from textshift.selection import probe
    from textshift.training import TrainConfig

    texts = ["Army base closes", "New budget rules", "Tax credit for farms", "Farm subsidy bill", "Crop insurance",
             "Dairy prices law", "Grain export rules", "Rural water act"]
    sample = TextData.from_lists(texts, ["Defense"] + ["Brand New Topic"] * 7)
    predicted, seconds = probe("finetune", sample, 0, TrainConfig(epochs=1, warmup_epochs=1),
                               Classifier.load(news_model))
    assert len(predicted) == 8 and seconds >= 0
    assert predicted[0] == ""  # the only 'Defense' row: its fold trained on no class the source knows
    assert set(predicted) <= {"", "Defense", "Brand New Topic"} and "Brand New Topic" in predicted  # others predicted
