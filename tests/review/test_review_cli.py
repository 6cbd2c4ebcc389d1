"""`textshift review --export` through the real entry point, and its one-line errors."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pandas as pd
import pytest
from review_helpers import CLASSES, fake_items, make_store

from textshift.data import embedded_path, read_labeled
from textshift.errors import ConfigError, DataError
from textshift.review import before_after, export_cleaned, open_store
from textshift.review.export import changes_path
from textshift.review.store import EditLogMismatchError, ReviewStore, default_store_path


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
    from textshift.inspection import InspectConfig, inspect_data
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


# ---------------------------------------------------------------- the edit log records the label column (issue 20)
def inspect_report(run_cli, data, backbone, out, *extra):
    result = run_cli("inspect", data, "-o", out, "--backbone", backbone, "--folds", "2", "--duplicate-threshold",
                     "1", *extra)
    assert result.exit_code == 0, result
    return result


def test_review_of_a_report_writes_the_edit_into_its_label_column(run_cli, review_csv, tiny_backbone, tmp_path):
    """inspect --label-column topic, then the printed `review DATA --report R` without it: the edit is exported."""
    report = tmp_path / "report"
    printed = inspect_report(run_cli, review_csv, tiny_backbone, report, "--label-column", "topic")
    assert "--label-column topic" in " ".join(printed.stdout.split())
    store = open_store(review_csv, report=report)  # what `textshift review DATA --report R` opens
    assert store.label_column == "topic"
    store.apply(4, "relabel", label="Defense")  # row 4 is Education
    store.apply(7, "delete")
    store.close()
    original = pd.read_csv(review_csv)
    result = run_cli("review", review_csv, "--export", tmp_path / "clean.csv", "-q")
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["relabeled"] == 1
    cleaned = pd.read_csv(tmp_path / "clean.csv")
    assert list(cleaned.columns) == list(original.columns)
    assert cleaned.set_index("id").loc[104, "topic"] == "Defense" and 107 not in set(cleaned["id"])
    expected = original.drop(index=7).set_index("id")
    expected.loc[104, "topic"] = "Defense"
    pd.testing.assert_frame_equal(cleaned.set_index("id"), expected)
    named = run_cli("review", review_csv, "--label-column", "topic", "--export", tmp_path / "named.csv")
    assert named.exit_code == 0, named
    assert list(pd.read_csv(tmp_path / "named.csv").columns) == ["id", "text", "topic", "split"]


def test_a_label_column_that_disagrees_with_the_log_or_report_is_refused(run_cli, review_csv, tiny_backbone,
                                                                        tmp_path):
    report = tmp_path / "report"
    inspect_report(run_cli, review_csv, tiny_backbone, report, "--label-column", "topic")
    with pytest.raises(ConfigError, match="disagrees with the inspect report"):
        open_store(review_csv, report=report, label_column="split")
    _, store = make_store(review_csv)
    store.apply(4, "relabel", label="Defense")
    store.close()
    for command in (("--export", tmp_path / "x.csv"), ("--export", tmp_path / "x.csv", "--before-after")):
        result = run_cli("review", review_csv, "--label-column", "split", *command)
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "disagrees with the edit log" in result.stderr and "'topic'" in result.stderr
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(EditLogMismatchError, match="labels of DATA differ"):
        before_after(read_labeled(review_csv, label_column="split"), ReviewStore.open(store.path),
                     backbone=tiny_backbone)


def test_an_old_log_without_its_label_column_refuses_to_export_then_records_it(run_cli, review_csv, tmp_path):
    """Logs written by earlier versions from data read without --label-column: has_labels 0, label_column 'label'."""
    _, store = make_store(review_csv)
    store.apply(4, "relabel", label="Defense")
    store.close()
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'has_labels'")
        db.execute("UPDATE meta SET value = 'label' WHERE key = 'label_column'")
    db.close()
    out = tmp_path / "clean.csv"
    refused = run_cli("review", review_csv, "--export", out)
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "cannot write 1 relabel" in refused.stderr and "--label-column" in refused.stderr
    assert not out.exists() and not changes_path(out).exists()
    result = run_cli("review", review_csv, "--label-column", "topic", "--export", out)
    assert result.exit_code == 0, result
    assert pd.read_csv(out).set_index("id").loc[104, "topic"] == "Defense"
    with ReviewStore.open(store.path) as reopened:
        assert reopened.label_column == "topic"


def test_export_keeps_a_column_named_label_beside_the_labels(run_cli, tmp_path):
    path = tmp_path / "notes.csv"
    pd.DataFrame({"text": [f"A bill about item {i}" for i in range(12)], "label": [f"note {i}" for i in range(12)],
                  "topic": ["Health", "Defense", "Education"] * 4}).to_csv(path, index=False)
    _, store = make_store(path)
    store.apply(0, "relabel", label="Defense")
    store.close()
    result = run_cli("review", path, "--export", tmp_path / "clean.csv")
    assert result.exit_code == 0, result
    cleaned = pd.read_csv(tmp_path / "clean.csv")
    assert list(cleaned.columns) == ["text", "label", "topic"]
    assert cleaned["label"].tolist() == [f"note {i}" for i in range(12)]
    assert cleaned["topic"].tolist() == ["Defense", *pd.read_csv(path)["topic"].tolist()[1:]]


def test_export_of_an_embedded_split_and_of_a_subset(tmp_path, review_csv):
    from textshift.review.export import file_columns

    bills = read_labeled("embedded:bills-train")
    assert file_columns(bills) == ("text", "topic")
    store = ReviewStore.create(tmp_path / "bills.sqlite", data=bills, items=fake_items(bills),
                               classes=bills.classes, text_column="text", label_column="topic")
    new = next(c for c in bills.classes if c != bills.labels[3])
    store.apply(3, "relabel", label=new)
    store.apply(5, "delete")
    summary = export_cleaned(bills, store, tmp_path / "bills-clean.csv")
    store.close()
    raw = pd.read_csv(embedded_path("bills"), dtype=str, keep_default_na=False)
    raw = raw[raw["split"] == "train"].reset_index(drop=True)
    cleaned = pd.read_csv(tmp_path / "bills-clean.csv", dtype=str, keep_default_na=False)
    assert summary.rows == 2999 and list(cleaned.columns) == list(raw.columns)
    assert cleaned.loc[3, "topic"] == new and cleaned.loc[3, "topic_code"] == raw.loc[3, "topic_code"]
    assert cleaned.loc[5:, "id"].tolist() == raw.loc[6:, "id"].tolist()

    every_other = read_labeled(review_csv, label_column="topic").subset(list(range(0, 40, 2)))
    assert file_columns(every_other, label_column="topic") == ("text", "topic")
    subset_store = ReviewStore.create(tmp_path / "subset.sqlite", data=every_other, items=fake_items(every_other),
                                      classes=CLASSES, text_column="text", label_column="topic")
    subset_store.apply(2, "relabel", label="Defense")  # item 2 is file row 4 (id 104, Education)
    export_cleaned(every_other, subset_store, tmp_path / "subset.csv")
    subset_store.close()
    cleaned = pd.read_csv(tmp_path / "subset.csv").set_index("id")
    assert list(cleaned.index) == list(range(100, 140, 2)) and cleaned.loc[104, "topic"] == "Defense"
    assert cleaned.drop(index=104)["topic"].tolist() == pd.read_csv(review_csv).set_index("id").loc[
        list(range(100, 140, 2))].drop(index=104)["topic"].tolist()
