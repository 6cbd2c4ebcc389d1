"""compare: stratified sampling, resumable runs in SQLite, recommendation without test rows, the report."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pandas as pd
import pytest

from textshift.compare import CompareConfig, compare, plain_answer, sample_stratified, summarize
from textshift.errors import ConfigError, DataError

FAST = {"epochs": 1, "warmup_epochs": 1}


def test_sample_is_stratified_and_deterministic():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 5
    first = sample_stratified(labels, 17, seed=3)
    assert len(first) == 17 and list(first) == list(sample_stratified(labels, 17, seed=3))
    counts = Counter(labels[i] for i in first)
    assert counts["a"] == 10 and counts["b"] == 6 and counts["c"] == 1
    assert list(first) != list(sample_stratified(labels, 17, seed=4))


def test_sample_larger_than_data():
    with pytest.raises(DataError, match="larger than"):
        sample_stratified(["a", "b"], 5, seed=0)


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown strategy"):
        CompareConfig(strategies=["scratch", "nope"])
    with pytest.raises(ConfigError, match="sizes"):
        CompareConfig(sizes=[])


def _runs(scores: dict[int, list[tuple[float, float]]]) -> pd.DataFrame:
    """Runs of scratch and finetune: ``{k: [(scratch, finetune) macro-F1 for each seed]}``."""
    rows = [{"strategy": strategy, "k": k, "seed": seed, "macro_f1": value}
            for k, pairs in scores.items() for seed, pair in enumerate(pairs)
            for strategy, value in zip(("scratch", "finetune"), pair, strict=True)]
    return pd.DataFrame(rows)


def test_plain_answer_from_one_seed_says_it_cannot_tell():
    text = plain_answer(_runs({100: [(0.40, 0.52)], 300: [(0.600, 0.628)]}), target_name="bills",
                        source_name="news")
    assert "100 rows +0.120, 300 rows +0.028" in text
    assert "one seed" in text and "cannot tell" in text and "--seeds 3" in text
    assert "helps" not in text


def test_plain_answer_with_seeds_claims_only_what_the_interval_shows():
    # 50 rows: a clear gain; 1000 rows: +0.02 on average but one seed of three loses, so within the noise.
    text = plain_answer(_runs({50: [(0.10, 0.40), (0.12, 0.41), (0.11, 0.43)],
                               1000: [(0.70, 0.75), (0.70, 0.69), (0.70, 0.72)]}),
                        target_name="bills", source_name="news")
    assert "50 rows +0.303 (95% interval" in text and "3 seeds" in text
    assert "it helps up to 50 rows; from 1000 rows on the difference is within the noise" in text
    assert "one seed" not in text


def test_plain_answer_says_when_transfer_hurts_everywhere():
    text = plain_answer(_runs({50: [(0.5, 0.40), (0.52, 0.41), (0.5, 0.41)], 200: [(0.6, 0.55), (0.61, 0.55),
                                                                                  (0.6, 0.56)]}),
                        target_name="bills", source_name="news")
    assert "does not help here: it loses at every size tried" in text and "helps at" not in text


def test_plain_answer_a_gain_at_every_size():
    text = plain_answer(_runs({50: [(0.1, 0.4), (0.12, 0.41), (0.1, 0.42)], 500: [(0.6, 0.65), (0.61, 0.66),
                                                                                 (0.6, 0.66)]}))
    assert "it helps at every size tried, up to the largest (500 rows)" in text


def _config(**kw):
    from textshift.training import TrainConfig

    return CompareConfig(**{"sizes": [20, 40], "seeds": 2, "strategies": ["scratch", "finetune"],
                            "train": TrainConfig(**FAST), **kw})


def test_compare_end_to_end(news_model, small_bills, tmp_path):
    result = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=_config())
    runs = result.runs
    for strategy in ("scratch", "finetune", "tfidf-svm", "frozen-lr", "recommended"):
        assert len(runs[runs.strategy == strategy]) == 4, strategy
    assert set(runs[runs.strategy == "recommended"].chosen) <= {"scratch", "finetune"}
    assert len(runs[runs.strategy.str.startswith("inner:")]) == 8
    rec = runs[runs.strategy == "recommended"].set_index(["k", "seed"])
    for (k, seed), row in rec.iterrows():
        chosen = runs[(runs.strategy == row.chosen) & (runs.k == k) & (runs.seed == seed)].iloc[0]
        assert chosen.macro_f1 == row.macro_f1
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "learning-curves" in html and result.answer.split(" (")[0][:30] in html
    assert (tmp_path / "cmp" / "recommended-model" / "model.safetensors").exists()
    assert set(summarize(runs).columns) >= {"strategy", "k", "macro_f1", "ci95"}
    # a second call finds every run in runs.sqlite and trains nothing
    started = time.perf_counter()
    again = compare(news_model, small_bills, out_dir=tmp_path / "cmp", config=_config())
    assert time.perf_counter() - started < 20
    pd.testing.assert_frame_equal(again.summary, result.summary)


def test_unseen_test_labels_are_reported_not_crashed(news_model, small_bills, tmp_path):
    frame = pd.read_csv(small_bills)
    test = tmp_path / "test.csv"
    frame.head(30).assign(label="Brand New Topic").to_csv(test, index=False)
    result = compare(news_model, small_bills, test=str(test), out_dir=tmp_path / "c",
                     config=_config(sizes=[20], seeds=1, baselines=[]))
    runs = result.runs[~result.runs.strategy.str.startswith("inner:")]
    assert len(runs) == 3 and (runs.macro_f1 == 0).all()


def test_killed_compare_resumes_to_the_same_table(news_model, small_bills, tmp_path):
    args = [sys.executable, "-m", "textshift", "compare", str(news_model), str(small_bills), "--sizes", "20,40",
            "--seeds", "1", "--epochs", "1", "--baselines", "tfidf-svm", "-q"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    full = subprocess.run(args + ["-o", str(tmp_path / "full")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert full.returncode == 0, full.stderr[-2000:]
    proc = subprocess.Popen(args + ["-o", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = tmp_path / "killed" / "runs.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    if con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 3:
                        break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as con:
        partial = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    total = len(pd.read_csv(tmp_path / "full" / "runs.csv"))
    assert 3 <= partial < total
    resumed = subprocess.run(args + ["-o", str(tmp_path / "killed")], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    cols = ["strategy", "k", "seed", "accuracy", "macro_f1", "chosen"]
    a = pd.read_csv(tmp_path / "full" / "runs.csv")[cols].sort_values(cols[:3]).reset_index(drop=True)
    b = pd.read_csv(tmp_path / "killed" / "runs.csv")[cols].sort_values(cols[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_cli_compare_errors(news_model, small_bills, tmp_path, run_cli):
    result = run_cli("compare", news_model, small_bills, "--sizes", "20,5000", "-o", tmp_path / "c")
    assert result.exit_code == 2 and "larger than" in result.stderr
    other = tmp_path / "other.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "label": ["X", "X", "Y", "Y"]}).to_csv(other, index=False)
    result = run_cli("compare", news_model, other, "--sizes", "2", "-o", tmp_path / "c2")
    assert result.exit_code == 2 and "--strategies scratch,encoder" in result.stderr
    result = run_cli("compare", tmp_path / "missing-model", small_bills, "-o", tmp_path / "c3")
    assert result.exit_code == 2 and "not found" in result.stderr
    result = run_cli("compare", news_model, small_bills, "--sizes", "a,b", "-o", tmp_path / "c4")
    assert result.exit_code == 2 and "comma-separated" in result.stderr


def test_class_with_a_single_example_is_sampled_and_trained(news_model, small_bills, tmp_path):
    frame = pd.read_csv(small_bills)
    rare = pd.DataFrame({"text": ["a bill on fisheries"], "label": ["Fisheries"], "split": ["train"]})
    data = tmp_path / "rare.csv"
    pd.concat([frame, rare]).to_csv(data, index=False)
    result = compare(news_model, data, out_dir=tmp_path / "c", config=_config(sizes=[30], seeds=1, baselines=[]))
    assert len(result.runs[result.runs.strategy == "finetune"]) == 1


def test_library_compare_with_bad_sizes_writes_nothing(news_model, small_bills, tmp_path):
    with pytest.raises(DataError, match="larger than"):
        compare(news_model, small_bills, out_dir=tmp_path / "c", config=_config(sizes=[20, 5000]))
    assert not (tmp_path / "c").exists()


def test_runs_under_settings_that_train_alike_are_reused(news_model, small_bills, tmp_path):
    """A changed minimum validation size reruns only the sizes whose split it changes."""
    from textshift.training import TrainConfig

    def run(min_val_rows: int) -> tuple[list, pd.DataFrame]:
        trained = []
        config = _config(seeds=1, baselines=["tfidf-svm"], train=TrainConfig(**FAST, min_val_rows=min_val_rows))
        result = compare(news_model, small_bills, out_dir=tmp_path / "c", config=config,
                         on_run=lambda row: trained.append((row["strategy"], row["k"])))
        return trained, result.runs

    # The sets trained: the samples of 20 and 40 rows, and the short selection's 75% of each (about 15 and 30).
    first, runs = run(5)  # 10% of 40 rows is 4, of 30 rows 3: below 5, so no set is split
    assert ("finetune", 20) in first and ("finetune", 40) in first and ("inner:finetune", 40) in first
    again, same = run(6)  # the same decisions: nothing is trained again
    assert again == []
    cols = ["strategy", "k", "seed", "macro_f1", "chosen"]
    pd.testing.assert_frame_equal(runs[cols].reset_index(drop=True), same[cols].reset_index(drop=True))
    changed, _ = run(4)  # now the 40 rows are split (their 30 are not, nor 20 or its 15): only k = 40 reruns
    assert changed and {k for _, k in changed} == {40}


def test_rows_stored_before_settings_named_the_selection_are_adopted_by_their_key(tmp_path):
    from textshift.compare import RunStore
    from textshift.training import TrainConfig

    store = RunStore(tmp_path / "runs.sqlite")
    earlier = CompareConfig(train=TrainConfig(min_val_rows=50))
    legacy = {"train": earlier.train.to_dict(), "sample_rows": 200}  # what older versions stored
    store.put("finetune", 200, 0, earlier.run_key(), accuracy=0.7, macro_f1=0.6, train_seconds=1.0, settings=legacy)
    store.put("scratch", 200, 0, "other-select", accuracy=0.5, macro_f1=0.4, train_seconds=1.0, settings=legacy)
    now = CompareConfig()
    assert store.adopt(200, 0, now.run_key(), lambda row: now.same_run(row, [500])) == 0  # splits 500 otherwise
    assert store.adopt(200, 0, now.run_key(), lambda row: now.same_run(row, [200])) == 1
    assert store.get("finetune", 200, 0, now.run_key())["macro_f1"] == 0.6
    assert store.get("scratch", 200, 0, now.run_key()) is None  # its key does not match its stored settings
    assert store.get("finetune", 200, 0, earlier.run_key()) is not None  # the original stays
    for garbage in ("not json", "[1, 2]", '{"train": "x"}', '{"train": {"epochs": "many"}, "selection": "probe"}'):
        with sqlite3.connect(tmp_path / "runs.sqlite") as db:
            db.execute("UPDATE runs SET settings=? WHERE strategy='scratch'", (garbage,))
        assert store.adopt(200, 0, now.run_key(), lambda row: now.same_run(row, [200])) == 0, garbage


# ------------------------------------------------------------------------------------------------ inputs
def _small(**kw):
    return _config(**{"sizes": [20], "seeds": 1, "strategies": ["finetune"], "baselines": [], **kw})


def _shuffled_labels(small_bills, path):
    frame = pd.read_csv(small_bills)
    frame.assign(label=frame.label.sample(frac=1, random_state=1).to_numpy()).to_csv(path, index=False)
    return path


def _trained(**kw) -> list:
    trained = []
    compare(**kw, on_run=lambda row: trained.append(row["strategy"]))
    return trained


def test_stored_runs_are_tied_to_their_inputs(news_model, small_bills, tmp_path):
    """Other target rows, test rows or source weights are refused, not shown the stored numbers."""
    import torch

    from textshift.model import Classifier

    out = tmp_path / "c"
    first = compare(news_model, small_bills, out_dir=out, config=_small())
    other = _shuffled_labels(small_bills, tmp_path / "other.csv")
    with pytest.raises(ConfigError, match=r"holds runs of other inputs \(target: bills_small.csv .* other.csv"):
        compare(news_model, other, out_dir=out, config=_small())
    with pytest.raises(ConfigError, match=r"test: held-out 0.3 of bills_small.csv .* other.csv .*--overwrite"):
        compare(news_model, small_bills, test=other, out_dir=out, config=_small())
    changed = Classifier.load(news_model)
    with torch.no_grad():
        next(changed.model.parameters()).add_(0.01)
    with pytest.raises(ConfigError, match=r"source: news-model \(\w+\) there, news-model \(\w+\) now"):
        compare(changed, small_bills, out_dir=out, config=_small())
    assert _trained(source=news_model, target=small_bills, out_dir=out, config=_small()) == []  # same inputs
    # --overwrite starts over with the new inputs; the old ones are then the other inputs
    retrained = _trained(source=news_model, target=other, out_dir=out, config=_small(), overwrite=True)
    assert retrained == ["finetune", "recommended"]
    with pytest.raises(ConfigError, match="holds runs of other inputs"):
        compare(news_model, small_bills, out_dir=out, config=_small())
    assert first.runs.strategy.tolist() == ["finetune", "recommended"]


def test_store_without_recorded_inputs_records_them(news_model, small_bills, tmp_path):
    """A store written before inputs were recorded keeps its runs and is tied to the inputs of its next use."""
    out = tmp_path / "c"
    compare(news_model, small_bills, out_dir=out, config=_small())
    with sqlite3.connect(out / "runs.sqlite") as db:
        db.execute("DROP TABLE inputs")  # what older versions wrote
    assert _trained(source=news_model, target=small_bills, out_dir=out, config=_small()) == []
    with sqlite3.connect(out / "runs.sqlite") as db:
        assert {row[0] for row in db.execute("SELECT name FROM inputs")} == {"target", "test", "source"}
    with pytest.raises(ConfigError, match="holds runs of other inputs"):
        compare(news_model, _shuffled_labels(small_bills, tmp_path / "other.csv"), out_dir=out, config=_small())


def test_run_key_does_not_depend_on_inputs():
    """Benchmark stores look runs up by ``CompareConfig(...).run_key()``: it stays a hash of the settings alone."""
    from textshift.training import TrainConfig

    assert CompareConfig().run_key() == CompareConfig(sizes=[7], strategies=["zero-shot"]).run_key()
    assert CompareConfig().run_key() != CompareConfig(train=TrainConfig(min_val_rows=50)).run_key()


def test_zero_shot_alone_is_the_recommendation(news_model, small_bills, tmp_path):
    with pytest.raises(ConfigError, match="no strategy given"):
        CompareConfig(strategies=[])
    with pytest.raises(ConfigError, match="no candidate to recommend"):
        CompareConfig(candidates=[])
    assert CompareConfig(strategies=["zero-shot"]).candidates == ["zero-shot"]
    assert CompareConfig(strategies=["zero-shot", "finetune"]).candidates == ["finetune"]
    result = compare(news_model, small_bills, out_dir=tmp_path / "c",
                     config=_small(strategies=["zero-shot"], baselines=["tfidf-svm"]))
    assert result.recommended == "zero-shot"
    assert set(result.runs.strategy) == {"zero-shot", "tfidf-svm", "recommended"}


def test_cli_compare_refuses_outputs_it_cannot_use(news_model, small_bills, tmp_path, run_cli):
    import shutil

    options = ["--sizes", "20", "--seeds", "1", "--strategies", "finetune", "--baselines", "none", "--epochs", "1"]
    a_file = tmp_path / "notes.csv"
    a_file.write_text("keep me\n")
    model_copy = tmp_path / "model-copy"
    shutil.copytree(news_model, model_copy)
    for output, message in ((a_file, "is a file"), (model_copy, "is a textshift model folder"),
                            (news_model, "would replace the source model")):
        result = run_cli("compare", news_model, small_bills, "-o", output, *options)
        assert result.exit_code == 2 and message in result.stderr, result
        assert len(result.stderr.strip().splitlines()) == 1, result
    assert a_file.read_text() == "keep me\n" and not (model_copy / "runs.sqlite").exists()
    assert not (news_model / "runs.sqlite").exists()
    result = run_cli("compare", news_model, small_bills, "-o", tmp_path / "c", *options[:4], "--strategies", "")
    assert result.exit_code == 2 and "no strategy given" in result.stderr and not (tmp_path / "c").exists()
    result = run_cli("compare", news_model, small_bills, "-o", tmp_path / "c", *options, "-q")
    assert result.exit_code == 0, result
    other = _shuffled_labels(small_bills, tmp_path / "other.csv")
    result = run_cli("compare", news_model, other, "-o", tmp_path / "c", *options, "-q")
    assert result.exit_code == 2 and "holds runs of other inputs" in result.stderr, result
    assert len(result.stderr.strip().splitlines()) == 1, result
    result = run_cli("compare", news_model, other, "-o", tmp_path / "c", *options, "-q", "--overwrite")
    assert result.exit_code == 0, result


def test_cli_demo_checks_its_options_before_training(tiny_backbone, tmp_path, run_cli):
    out = tmp_path / "d"
    a_file = tmp_path / "notes.csv"
    a_file.write_text("keep me\n")
    for args, message in ((["-o", out, "--sizes", "abc", "--strategies", "bogus", "--seeds", "0"], "comma-separated"),
                          (["-o", out, "--strategies", "bogus"], "unknown strategy"),
                          (["-o", out, "--seeds", "0"], "seeds must be >= 1"),
                          (["-o", out, "--sizes", "5000"], "larger than"),
                          (["-o", a_file], "is a file")):
        result = run_cli("demo", "--backbone", tiny_backbone, "--epochs", "1", *args)
        assert result.exit_code == 2 and message in result.stderr, result
        assert not out.exists()
    assert a_file.read_text() == "keep me\n"


def test_a_loaded_recommended_model_is_not_overwritten_by_its_own_comparison(news_model, small_bills, tmp_path):
    from textshift.errors import OutputExistsError
    from textshift.model import Classifier

    out = tmp_path / "c"
    compare(news_model, small_bills, out_dir=out, config=_small())
    recommended = out / "recommended-model"
    before = (recommended / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match="would replace the source model"):
        compare(Classifier.load(recommended), small_bills, out_dir=out, config=_small(), overwrite=True)
    assert (recommended / "model.safetensors").read_bytes() == before


def test_a_rerun_with_other_sizes_saves_its_own_recommended_model(news_model, small_bills, tmp_path):
    import json

    out = tmp_path / "c"
    compare(news_model, small_bills, out_dir=out, config=_small(sizes=[20, 40]))
    meta = out / "recommended-model" / "textshift.json"
    assert json.loads(meta.read_text())["extra"]["compare"]["k"] == 40
    result = compare(news_model, small_bills, out_dir=out, config=_small(sizes=[20]))
    assert json.loads(meta.read_text())["extra"]["compare"]["k"] == 20
    assert result.model_dir == out / "recommended-model"
