"""The edit log: decisions, undo, duplicate sets, paging, identity checks and export."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pandas as pd
import pytest
from review_helpers import SCRIPT_TEXT, fake_items, make_store

from textshift.data import TextData, read_labeled
from textshift.errors import ConfigError, DataError, OutputExistsError
from textshift.review import open_store
from textshift.review.export import UnsafeExportPathError, changes_path, export_cleaned, safe_export_path
from textshift.review.store import EditLogMismatchError, ReviewStore, default_store_path


def test_store_lives_beside_the_data_and_uses_wal(review_store, review_csv):
    _, store = review_store
    assert store.path == review_csv.parent / "bills.csv.textshift-review.sqlite"
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert default_store_path("embedded:bills-train").name == "embedded-bills-train.textshift-review.sqlite"


def test_decisions_are_logged_and_undone_in_order(review_store):
    _, store = review_store
    store.apply(2, "relabel", label="Health")
    store.apply(2, "ambiguous")
    store.apply(4, "delete")
    assert store.item(2)["status"] == "ambiguous" and store.item(2)["current_label"] == "Health"
    assert store.item(4)["status"] == "deleted"
    assert store.undo() == [{"row": 4, "status": "unreviewed", "current_label": "Education", "edit": 4,
                             "undoes": 3, "batch": 4}]
    assert store.undo() == [{"row": 2, "status": "relabeled", "current_label": "Health", "edit": 5, "undoes": 2,
                             "batch": 5}]
    assert store.undo()[0]["status"] == "unreviewed" and store.item(2)["current_label"] == "Health"
    assert store.item(2)["label"] == "Health"  # row 2 was Health all along: CLASSES[2 % 3]
    assert store.undo() == []
    log = store.edits()
    assert log["action"].tolist() == ["relabel", "ambiguous", "delete", "undo", "undo", "undo"]
    assert log["undoes"].dropna().astype(int).tolist() == [3, 2, 1]
    assert {"row", "old_label", "new_label", "time"} <= set(log.columns)


def test_relabel_checks_the_class_and_row(review_store):
    _, store = review_store
    with pytest.raises(ConfigError, match="among the dataset's classes"):
        store.apply(1, "relabel", label="Sports")
    with pytest.raises(ConfigError, match="action must be one of"):
        store.apply(1, "destroy")
    with pytest.raises(DataError, match="item 400 not found"):
        store.apply(400, "keep")
    assert store.edits().empty


def test_keep_one_of_a_duplicate_set_is_one_undoable_batch(review_store):
    _, store = review_store
    detail = store.item(5)
    assert [d["row"] for d in detail["duplicates"]] == [5, 6]
    results = store.keep_one(5, 6)
    assert {(r["row"], r["status"]) for r in results} == {(6, "kept"), (5, "deleted")}
    assert store.undo() and store.item(5)["status"] == store.item(6)["status"] == "unreviewed"
    with pytest.raises(DataError, match="not in duplicate group"):
        store.keep_one(5, 7)


def test_query_pages_filters_and_counts(review_store):
    _, store = review_store
    total, page = store.query(limit=5)
    assert total == store.summary()["suspicious"] == 21 and len(page) == 5
    assert page[0]["row"] == 0 and page[0]["text"] == SCRIPT_TEXT
    scores = [item["score"] for item in store.query(limit=500)[1]]
    assert scores == sorted(scores, reverse=True)
    everything, _ = store.query(view="all")
    assert everything == 40
    health, page = store.query(label="Health", limit=500)
    assert health and all(item["label"] == "Health" for item in page)
    assert store.query(issue="conflict")[0] == 2
    assert store.query(search="DUPLICATE program")[0] == 2
    assert store.query(search="%")[0] == 0  # the search is a plain substring, not a LIKE pattern
    low, page = store.query(view="all", max_score=0.5, limit=500)
    assert all(item["score"] <= 0.5 for item in page)
    store.apply(0, "keep")
    assert store.summary()["reviewed"] == 1
    assert store.query(status="unreviewed")[0] == 20 and store.query(status="kept")[0] == 1
    with pytest.raises(ConfigError, match="issue must be one of"):
        store.query(issue="bad; DROP TABLE items")


def test_an_edit_log_of_another_dataset_is_refused(review_store, review_csv, tmp_path):
    _, store = review_store
    store.apply(1, "keep")
    other = tmp_path / "other.csv"
    frame = pd.read_csv(review_csv)
    frame.loc[3, "text"] = "changed text"
    frame.to_csv(other, index=False)
    with pytest.raises(EditLogMismatchError, match="belongs to another dataset .*--store NEW_PATH"):
        ReviewStore.open(store.path, data=read_labeled(other, label_column="topic"))
    with pytest.raises(EditLogMismatchError):
        open_store(other, store=store.path, label_column="topic")
    with pytest.raises(ConfigError, match="exists"):
        ReviewStore.create(store.path, data=read_labeled(review_csv, label_column="topic"),
                           items=fake_items(read_labeled(review_csv, label_column="topic")), classes=[])


def test_open_store_reuses_the_log_and_never_rescored(review_store, review_csv):
    _, store = review_store
    store.apply(3, "delete")
    reopened = open_store(review_csv, label_column="topic", model="/nonexistent/model")  # never loaded
    assert reopened.item(3)["status"] == "deleted"
    reopened.close()


def test_export_writes_cleaned_copy_and_changes_and_never_touches_the_data(review_store, review_csv, tmp_path):
    data, store = review_store
    before = hashlib.sha256(review_csv.read_bytes()).hexdigest()
    store.apply(1, "relabel", label="Health")
    store.apply(2, "delete")
    store.apply(3, "ambiguous")
    store.apply(4, "keep")
    store.apply(7, "relabel", label="Defense")
    store.apply(7, "relabel", label=read_labeled(review_csv, label_column="topic").labels[7])  # back to original
    summary = export_cleaned(data, store, tmp_path / "out" / "clean.csv")
    cleaned = pd.read_csv(summary.output)
    assert list(cleaned.columns) == ["id", "text", "topic", "split"]
    assert len(cleaned) == 39 and 102 not in cleaned["id"].tolist()
    assert cleaned.set_index("id").loc[101, "topic"] == "Health"
    assert cleaned.set_index("id").loc[100, "text"] == SCRIPT_TEXT
    changes = pd.read_csv(changes_path(summary.output))
    assert changes_path(summary.output).name == "clean.changes.csv"
    assert changes[["row", "action"]].values.tolist() == [[1, "relabel"], [2, "delete"], [3, "ambiguous"]]
    assert changes.loc[0, "old_label"] == "Education" and changes.loc[0, "new_label"] == "Health"
    assert (summary.relabeled, summary.deleted, summary.ambiguous, summary.rows) == (1, 1, 1, 39)
    assert hashlib.sha256(review_csv.read_bytes()).hexdigest() == before
    with pytest.raises(OutputExistsError, match="exists"):
        export_cleaned(data, store, summary.output)
    with pytest.raises(OutputExistsError, match="never modifies the original"):
        export_cleaned(data, store, review_csv, overwrite=True)
    assert not [p for p in summary.output.parent.iterdir() if ".tmp" in p.name]


def test_export_of_unlabelled_data(tmp_path):
    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["one", "two", "three"]}).to_csv(path, index=False)
    data = read_labeled(path, require_labels=False)
    store = ReviewStore.create(default_store_path(path), data=data, items=fake_items(data), classes=[])
    store.apply(1, "delete")
    store.apply(0, "keep")
    summary = export_cleaned(data, store, tmp_path / "clean.csv")
    assert pd.read_csv(summary.output)["text"].tolist() == ["one", "three"]
    assert pd.read_csv(summary.changes)["action"].tolist() == ["delete"]
    store.close()


@pytest.mark.parametrize("name", ["../escape.csv", "/tmp/abs.csv", "sub/clean.csv", "..", ".hidden.csv",
                                  "clean.txt", "", "c:clean.csv", "..\\up.csv"])
def test_export_names_cannot_escape_the_folder(tmp_path, name):
    with pytest.raises(UnsafeExportPathError):
        safe_export_path(tmp_path, name)


def test_export_name_through_a_symlink_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "exports"
    folder.mkdir()
    os.symlink(outside / "target.csv", folder / "link.csv")
    with pytest.raises(UnsafeExportPathError, match="leads outside"):
        safe_export_path(folder, "link.csv")
    assert safe_export_path(folder, "clean.csv") == (folder / "clean.csv").resolve()


def test_acknowledged_edits_survive_a_lost_connection(review_csv):
    data, store = make_store(review_csv)
    store.apply(8, "relabel", label="Defense")
    # No close, no checkpoint: a second connection (another process after a crash) sees the commit.
    with ReviewStore.open(store.path, data=data) as other:
        assert other.item(8)["status"] == "relabeled"
    store.close()


def test_store_of_wrong_length_report_is_refused(review_csv, tmp_path):
    data = read_labeled(review_csv, label_column="topic")
    with pytest.raises(DataError, match="report has 3 items but the data has 40"):
        ReviewStore.create(tmp_path / "s.sqlite", data=data, items=fake_items(data).head(3), classes=[])
    short = TextData.from_lists(["a", "b"], ["x", "y"])
    assert fake_items(short)["row"].tolist() == [0, 1]


@pytest.mark.parametrize("positions", [list(range(9, -1, -1)), list(range(30, 40))])
def test_export_of_a_subset_follows_the_items_positions(review_csv, tmp_path, positions):
    """A TextData.subset keeps the file's row numbers as its index; the edit log numbers items by position."""
    subset = read_labeled(review_csv, label_column="topic").subset(positions)
    store = ReviewStore.create(tmp_path / "subset.sqlite", data=subset, items=fake_items(subset),
                               classes=sorted(set(subset.labels)), label_column="topic")
    deleted, relabeled = store.item(0)["text"], store.item(1)["text"]
    new_label = next(name for name in sorted(set(subset.labels)) if name != store.item(1)["label"])
    store.apply(0, "delete")
    store.apply(1, "relabel", label=new_label)
    summary = export_cleaned(subset, store, tmp_path / "clean.csv")
    expected = subset.frame.reset_index(drop=True)
    expected.loc[1, "label"] = new_label
    expected = expected.drop(index=0)
    cleaned = pd.read_csv(summary.output)
    assert cleaned["text"].tolist() == expected["text"].tolist() and deleted not in cleaned["text"].tolist()
    assert cleaned["topic"].tolist() == expected["label"].tolist()
    assert cleaned.set_index("text").loc[relabeled, "topic"] == new_label
    assert pd.read_csv(summary.changes)["text"].tolist() == [deleted, relabeled]
    store.close()


def test_each_export_format_gets_its_own_changes_file(review_store, tmp_path):
    data, store = review_store
    store.apply(2, "delete")
    assert changes_path(tmp_path / "x.csv").name == "x.changes.csv"
    assert changes_path(tmp_path / "x.csv.gz").name == "x.csv.gz.changes.csv"
    assert changes_path(tmp_path / "x.parquet").name == "x.parquet.changes.csv"
    gz = export_cleaned(data, store, tmp_path / "x.csv.gz")
    parquet = export_cleaned(data, store, tmp_path / "x.parquet")  # must not need overwrite=True
    assert gz.changes != parquet.changes and gz.changes.exists() and parquet.changes.exists()


def test_export_never_writes_over_the_embedded_package_file(tmp_path):
    from textshift.data import embedded_path
    from textshift.review.export import ProtectedOutputError

    data = read_labeled("embedded:bills-test")
    store = ReviewStore.create(tmp_path / "emb.sqlite", data=data, items=fake_items(data), classes=data.classes)
    before = hashlib.sha256(embedded_path("bills-test").read_bytes()).hexdigest()
    with pytest.raises(ProtectedOutputError, match="is the data"):
        export_cleaned(data, store, embedded_path("bills-test"))
    assert hashlib.sha256(embedded_path("bills-test").read_bytes()).hexdigest() == before
    store.close()


def test_row_numbers_are_checked_before_sqlite_sees_them(review_store):
    _, store = review_store
    with pytest.raises(DataError, match="not found"):
        store.item(10**30)
    with pytest.raises(DataError, match="not found"):
        store.apply(10**30, "delete")
    with pytest.raises(ConfigError, match="whole number"):
        store.apply(True, "delete")
    with pytest.raises(ConfigError, match="whole number"):
        store.item(1.5)
    with pytest.raises(DataError, match="not found"):
        store.keep_one(10**30, 5)
    with pytest.raises(DataError, match="group -1 not found"):
        store.keep_one(-1, 0)  # -1 means "in no group": it must not delete every other such item
    assert store.query(offset=10**30) == (21, [])
    assert len(store.edits()) == 0


def test_error_messages_cut_long_input(review_store):
    _, store = review_store
    with pytest.raises(ConfigError) as error:
        store.apply(0, "relabel", label="x" * 100_000)
    assert len(str(error.value)) < 300 and "100,002 characters" in str(error.value)


@pytest.mark.parametrize("name", ["x" * 250 + ".csv", "a\nb.csv", "tab\t.csv", "bidi\u202e.csv"])
def test_export_names_must_be_short_and_printable(tmp_path, name):
    with pytest.raises(UnsafeExportPathError):
        safe_export_path(tmp_path, name)


def test_items_with_labels_need_data_with_the_same_labels(review_csv, tmp_path):
    """The root of a lost edit: a log scored with labels, opened on data read without them."""
    labelled = read_labeled(review_csv, label_column="topic")
    items = fake_items(labelled)
    unlabelled = read_labeled(review_csv, require_labels=False)
    with pytest.raises(DataError, match="read without a label column"):
        ReviewStore.create(tmp_path / "a.sqlite", data=unlabelled, items=items, classes=labelled.classes)
    other = read_labeled(review_csv, label_column="split")
    with pytest.raises(DataError, match="labels differ from column 'split'"):
        ReviewStore.create(tmp_path / "b.sqlite", data=other, items=items, classes=labelled.classes,
                           label_column="split")
    assert not (tmp_path / "a.sqlite").exists() and not (tmp_path / "b.sqlite").exists()
    with ReviewStore.create(tmp_path / "c.sqlite", data=labelled, items=items, classes=labelled.classes,
                            label_column="topic") as store:
        assert (store.text_column, store.label_column) == ("text", "topic")
