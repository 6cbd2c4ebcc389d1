"""The recommendation: candidates scored comparably on held-out rows of the sample, with the evidence shown."""

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


def test_probe_selection_needs_clear_evidence_against_scratch():
    truth = ["a", "b", "c", "d"] * 6
    noisy = list(np.random.default_rng(1).choice(list("abcd"), size=24))
    nearly = noisy[:]
    nearly[0] = truth[0] if noisy[0] != truth[0] else nearly[0]
    candidates = ["scratch", "finetune"]
    scores = {"scratch": 0.30, "finetune": 0.31}
    predictions = {"scratch": noisy, "finetune": nearly}
    chosen, reason = pick(candidates, scores, predictions, truth, seed=0, selection="probe")
    assert chosen == "scratch" and reason["best"] == "finetune" and reason["share_better"] < selection.LEVEL
    line = describe(reason, chosen)
    assert "so 90% was needed and 'scratch' is recommended" in line and f"{RESAMPLES:,} resamples" in line
    chosen, reason = pick(candidates, {"scratch": 0.3, "finetune": 0.9}, {"scratch": noisy, "finetune": truth},
                          truth, seed=0, selection="probe")
    assert chosen == "finetune" and reason["share_better"] >= selection.LEVEL
    assert describe(reason, chosen).startswith("'finetune' 0.900 vs 'scratch' 0.300 on 24 held-out rows")


def test_comparable_selections_let_the_highest_score_win_and_keep_the_evidence():
    truth = ["a", "b", "c", "d"] * 6
    noisy = list(np.random.default_rng(1).choice(list("abcd"), size=24))
    nearly = noisy[:]
    nearly[0] = truth[0] if noisy[0] != truth[0] else nearly[0]
    for name in ("short", "holdout"):  # finetune ahead by one row: it wins, with weak evidence shown
        chosen, reason = pick(["scratch", "finetune"], {"scratch": 0.30, "finetune": 0.31},
                              {"scratch": noisy, "finetune": nearly}, truth, seed=0, selection=name)
        assert chosen == "finetune" and reason["against"] == "scratch" and reason["gap"] == pytest.approx(0.01)
        assert 0 < reason["share_better"] < 0.9 and f"({name} selection)" in describe(reason, chosen)
    chosen, reason = pick(["scratch", "finetune", "encoder"], {"scratch": 0.6, "finetune": 0.4, "encoder": 0.5},
                          {"scratch": truth, "finetune": noisy, "encoder": nearly}, truth, seed=0)
    assert chosen == "scratch" and reason["against"] == "encoder" and reason["share_better"] == 1.0
    # ties go to the earlier candidate; one candidate has no evidence to show
    assert pick(["finetune", "encoder"], {"finetune": 0.2, "encoder": 0.2}, {"finetune": truth, "encoder": truth},
                truth, seed=0)[0] == "finetune"
    alone, reason = pick(["finetune"], {"finetune": 0.2}, {"finetune": truth}, truth, seed=0)
    assert alone == "finetune" and describe(reason, alone) == ""


def test_short_schedule_trains_half_the_epochs_of_the_full_run():
    from textshift.training import TrainConfig

    for rows in (50, 200, 1000, 3000):
        full = TrainConfig().epochs_for(rows)
        assert selection.short_schedule(TrainConfig(), rows).epochs == -(-full // 2)
    assert selection.short_schedule(TrainConfig(epochs=1), 100).epochs == 1
    assert selection.short_schedule(TrainConfig(learning_rate=3e-5), 100).learning_rate == 3e-5


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


def test_compare_shows_the_evidence_and_keeps_full_runs_when_only_the_selection_changes(news_model, small_bills,
                                                                                        tmp_path):
    from dataclasses import replace

    from textshift.compare import CompareConfig, compare
    from textshift.training import TrainConfig

    config = CompareConfig(sizes=[40], seeds=1, strategies=["scratch", "finetune"], baselines=[], selection="probe",
                           train=TrainConfig(epochs=1, warmup_epochs=1))
    first = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=config)
    assert first.choices[0]["selection"] == "probe" and first.choices[0]["held_out_rows"] == 40
    short = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=replace(config, selection="short"))
    columns = ["strategy", "macro_f1", "train_seconds"]
    full = [r.runs[r.runs.strategy.isin(["scratch", "finetune"])][columns].reset_index(drop=True)
            for r in (first, short)]
    pd.testing.assert_frame_equal(full[0], full[1])  # not trained again: only the choosing changed
    [choice] = short.choices
    assert choice["selection"] == "short" and 5 <= choice["held_out_rows"] <= 12  # about a quarter of the 40 rows
    assert choice["chosen"] == max(choice["scores"], key=choice["scores"].get)
    assert {"against", "gap", "share_better"} <= set(choice)
    assert short.evidence.startswith("evidence at 40 rows: ") and "(short selection)" in short.evidence
    assert "\n" not in short.evidence and short.choice_notes == []
    assert "id='evidence'" in (tmp_path / "cmp" / "report.html").read_text()


def test_compare_json_carries_the_evidence(run_cli, news_model, small_bills, tmp_path):
    result = run_cli("compare", str(news_model), str(small_bills), "-o", str(tmp_path / "cmp"), "--sizes", "40",
                     "--seeds", "1", "--baselines", "none", "--epochs", "1", "--quiet")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["evidence"].startswith("evidence at 40 rows: ") and shown["choices"][0]["k"] == 40


def test_pooling_the_seeds_of_a_size_outweighs_one_misleading_sample():
    truth = ["a", "b", "c", "d"] * 5
    wrong = ["a"] * 20
    one_off = truth[:-1] + ["a"]  # scratch one row better than finetune on the first seed only
    first = (truth, {"scratch": truth, "finetune": one_off})
    others = [(truth, {"scratch": wrong, "finetune": truth})] * 2
    assert pick(["scratch", "finetune"], {"scratch": 1.0, "finetune": 0.9}, first[1], truth, seed=0)[0] == "scratch"
    chosen, reason = selection.pick_pooled(["scratch", "finetune"], [first, *others], selection="short")
    assert chosen == "finetune" and reason["seeds"] == 3 and reason["held_out_rows"] == 60
    assert reason["scores"]["finetune"] > reason["scores"]["scratch"]
    assert "60 held-out rows of 3 seeds (short selection)" in describe(reason, chosen)
    assert selection.pick_pooled(["scratch", "finetune"], [first])[1]["seeds"] == 1
    with pytest.raises(ValueError, match="at least one seed"):
        selection.pick_pooled(["scratch"], [])


def test_compare_makes_one_choice_per_size_from_all_its_seeds(news_model, small_bills, tmp_path):
    from textshift.compare import CompareConfig, compare
    from textshift.training import TrainConfig

    config = CompareConfig(sizes=[40], seeds=2, strategies=["scratch", "finetune"], baselines=[],
                           train=TrainConfig(epochs=1, warmup_epochs=1))
    result = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=config)
    db = sqlite3.connect(tmp_path / "cmp" / "runs.sqlite")
    held = [len(json.loads(p)) for (p,) in db.execute("SELECT predicted FROM held_out WHERE strategy='inner:scratch'")]
    db.close()
    assert len(result.choices) == 2 and len(held) == 2
    assert result.choices[0]["chosen"] == result.choices[1]["chosen"] == result.recommended
    assert all(c["seeds"] == 2 and c["held_out_rows"] == sum(held) for c in result.choices)
    assert f"on {sum(held)} held-out rows of 2 seeds" in result.evidence
    # asked again with one seed, the choice is made again from that seed's stored held-out rows alone
    again = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=CompareConfig(
        sizes=[40], seeds=1, strategies=["scratch", "finetune"], baselines=[], train=config.train))
    assert again.choices[0]["seeds"] == 1 and again.choices[0]["held_out_rows"] == held[0]
