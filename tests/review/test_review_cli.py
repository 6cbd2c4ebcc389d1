"""`textshift review --export` through the real entry point, and its one-line errors."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from review_helpers import make_store

from textshift.errors import DataError
from textshift.review import open_store
from textshift.review.store import default_store_path


def test_export_from_the_command_line(run_cli, review_csv, tmp_path):
    _, store = make_store(review_csv)
    store.apply(3, "delete")
    store.apply(4, "relabel", label="Defense")
    store.close()
    out = tmp_path / "clean.csv"
    result = run_cli("review", review_csv, "--label-column", "topic", "--export", out)
    assert result.exit_code == 0, result
    assert "39 rows" in result.stdout and "1 relabeled, 1 deleted" in result.stdout
    cleaned = pd.read_csv(out)
    assert len(cleaned) == 39 and cleaned.set_index("id").loc[104, "topic"] == "Defense"
    again = run_cli("review", review_csv, "--label-column", "topic", "--export", out)
    assert again.exit_code == 2 and "exists" in again.stderr and "--overwrite" in again.stderr
    quiet = run_cli("review", review_csv, "--label-column", "topic", "--export", out, "--overwrite", "-q")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["deleted"] == 1
    onto = run_cli("review", review_csv, "--label-column", "topic", "--export", review_csv, "--overwrite")
    assert onto.exit_code == 2 and "never modifies the original" in onto.stderr


def test_before_after_scores_on_the_same_test_rows(run_cli, review_csv, tiny_backbone, tmp_path):
    _, store = make_store(review_csv)
    store.apply(1, "relabel", label="Health")
    store.apply(2, "delete")
    store.apply(35, "relabel", label="Defense")  # a test row: scored with its reviewed label, never trained on
    store.close()
    result = run_cli("review", review_csv, "--label-column", "topic", "--export", tmp_path / "c.csv",
                     "--before-after", "--backbone", tiny_backbone, "-q")
    assert result.exit_code == 0, result
    scores = json.loads(result.stdout)["before_after"]
    assert [s["training"] for s in scores] == ["before", "after"]
    assert [s["train_rows"] for s in scores] == [30, 29] and {s["test_rows"] for s in scores} == {10}
    assert all(0 <= s["macro_f1"] <= 1 for s in scores)
    table = run_cli("review", review_csv, "--label-column", "topic", "--export", tmp_path / "c.csv", "--overwrite",
                    "--before-after", "--backbone", tiny_backbone)
    assert table.exit_code == 0 and "before and after review" in table.stdout


def test_export_needs_an_edit_log(run_cli, review_csv, tmp_path):
    result = run_cli("review", review_csv, "--label-column", "topic", "--export", tmp_path / "x.csv")
    assert result.exit_code == 2 and "no edit log" in result.stderr


def test_edit_log_of_another_dataset_is_refused_in_one_line(run_cli, review_csv, tmp_path):
    _, store = make_store(review_csv)
    store.close()
    other = tmp_path / "other.csv"
    frame = pd.read_csv(review_csv)
    frame.loc[0, "topic"] = "Health"
    frame.to_csv(other, index=False)
    shutil.copy(store.path, default_store_path(other))
    result = run_cli("review", other, "--label-column", "topic", "--export", tmp_path / "x.csv")
    assert result.exit_code == 2
    assert "belongs to another dataset" in result.stderr and len(result.stderr.strip().splitlines()) <= 3


def test_a_report_of_other_data_is_refused(review_csv, tiny_backbone, tmp_path):
    from textshift.inspect import InspectConfig, inspect_data
    from textshift.review import load_data

    other = tmp_path / "other.csv"
    pd.read_csv(review_csv).head(20).to_csv(other, index=False)
    report = inspect_data(load_data(other, label_column="topic"), backbone=tiny_backbone,
                          config=InspectConfig(folds=2, duplicate_threshold=1.0)).save(tmp_path / "report")
    with pytest.raises(DataError, match="report .* was made for"):
        open_store(review_csv, label_column="topic", report=report)
    store = open_store(other, label_column="topic", report=report)
    assert store.summary()["items"] == 20
    store.close()
