"""textshift.inspection: out-of-fold scores, label issues, duplicates and leaks, reports, and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from textshift.data import Fingerprint, TextData, read_labeled
from textshift.errors import ConfigError, DataError, ModelError, OutputExistsError
from textshift.inspection import (
    InspectConfig,
    find_duplicates,
    inspect_data,
    label_errors,
    load_report,
    misclassified,
    most_unsure,
    nearest_neighbors,
    similar_pairs,
    top_losses,
)
from textshift.scorers import neighbor_vote

# Duplicates by embedding are meaningless with a random tiny encoder: only exact ones are searched.
TINY = dict(duplicate_threshold=1.0, folds=3)
WORDS = {"sport": "match team goal coach league season player stadium",
         "health": "hospital doctor patient vaccine clinic nurse medicine disease",
         "crime": "police court judge prison theft arrest trial jury"}


def synthetic(n_per_class: int = 30, flips: int = 6, seed: int = 0) -> tuple[TextData, np.ndarray]:
    """Texts whose words give their class away, with ``flips`` labels changed to another class."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words in WORDS.items():
        vocabulary = words.split()
        for i in range(n_per_class):
            texts.append(" ".join(rng.choice(vocabulary, 5)) + f" item {label[0]}{i}")
            labels.append(label)
    flipped = rng.choice(len(texts), flips, replace=False)
    classes = sorted(WORDS)
    for row in flipped:
        labels[row] = rng.choice([c for c in classes if c != labels[row]])
    return TextData.from_lists(texts, labels, name="synthetic.csv"), flipped


@pytest.fixture(scope="module")
def flipped_result(tiny_backbone):
    data, flipped = synthetic()
    return inspect_data(data, backbone=tiny_backbone, config=InspectConfig(**TINY)), flipped


def test_nearest_neighbors_match_brute_force_in_small_chunks():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(53, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    indices, sims = nearest_neighbors(vectors, k=4, chunk_size=7)
    full = vectors @ vectors.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1)[:, :4]
    assert indices.shape == (53, 4) and (indices != np.arange(53)[:, None]).all()
    np.testing.assert_allclose(sims, np.take_along_axis(full, expected, axis=1), rtol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_find_duplicates_exact_ignores_case_and_spaces_and_near_uses_threshold():
    texts = ["A bill on farms", "a  bill on FARMS ", "Something else", "Another thing"]
    neighbors = np.array([[1, 2], [0, 2], [3, 0], [2, 0]])
    sims = np.array([[1.0, 0.2], [1.0, 0.2], [0.97, 0.1], [0.97, 0.1]], dtype=np.float32)
    pairs = find_duplicates(texts, neighbor_indices=neighbors, neighbor_similarities=sims, threshold=0.95)
    assert pairs[["row_a", "row_b", "kind"]].values.tolist() == [[0, 1, "exact"], [2, 3, "near"]]
    assert find_duplicates(texts, neighbor_indices=neighbors, neighbor_similarities=sims,
                           threshold=0.99)["kind"].tolist() == ["exact"]


def test_neighbor_vote_follows_similar_labels():
    neighbors = np.array([[1, 2], [0, 2], [0, 1]])
    sims = np.array([[0.99, 0.1], [0.99, 0.1], [0.5, 0.5]])
    votes = neighbor_vote(neighbors, sims, np.array([0, 1, 1]), n_classes=2)
    np.testing.assert_allclose(votes.sum(axis=1), 1.0)
    assert votes[0].argmax() == 1 and votes[1].argmax() == 0


def test_one_row_per_item_with_every_score(flipped_result):
    result, _ = flipped_result
    items = result.items
    assert len(items) == 90 and items["row"].tolist() == list(range(90))
    expected = {"row", "text", "label", "predicted", "predicted_probability", "given_probability", "loss", "margin",
                "misclassified", "label_issue", "label_quality", "suggested_label", "unsure", "duplicate_group",
                "conflicting_duplicate", "split_leak", "nearest_row", "nearest_similarity", "similar_rows",
                "issues", "suspicious", "score"}
    assert expected <= set(items.columns)
    assert items["given_probability"].between(0, 1).all() and (items["margin"] >= 0).all()
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert (items["misclassified"] == (items["predicted"] != items["label"])).all()
    flagged = items[items["label_issue"]]
    assert (flagged["suggested_label"] != flagged["label"]).all() and (flagged["suggested_label"] != "").all()
    assert (items.loc[~items["label_issue"], "suggested_label"] == "").all()
    assert result.summary["counts"]["label_error"] == int(items["label_issue"].sum())
    assert (items["suspicious"] == (items["issues"] != "")).all()


def test_flipped_labels_rank_first(flipped_result):
    result, flipped = flipped_result
    ranked = result.items.sort_values("label_quality")["row"]
    assert len(set(ranked.head(12)) & set(flipped.tolist())) >= 5
    errors = label_errors(result)
    assert len(set(errors["row"]) & set(flipped.tolist())) >= 3
    assert errors["label_quality"].is_monotonic_increasing
    assert top_losses(result, 5)["loss"].is_monotonic_decreasing
    assert most_unsure(result, 5)["margin"].is_monotonic_increasing
    assert misclassified(result)["misclassified"].all()
    assert result.confusion.values.sum() == 90 and list(result.confusion.index) == result.classes
    assert {"true", "predicted", "count"} <= set(result.most_confused.columns)


def test_conflicting_duplicates_and_split_leaks(tiny_backbone):
    frame = pd.DataFrame({"text": ["Farm bill", "farm  BILL", "Health act", "Tax credit", "Tax credit", "Road fund"],
                          "label": ["Agriculture", "Health", "Health", "Taxes", "Taxes", "Roads"],
                          "split": ["train", "train", "train", "train", "test", "test"]})
    data = TextData(frame, Fingerprint("x.csv", 6, "0" * 64))
    result = inspect_data(data, backbone=tiny_backbone, config=InspectConfig(duplicate_threshold=1.0, folds=2))
    items = result.items.set_index("row")
    assert items.loc[0, "conflicting_duplicate"] and items.loc[1, "conflicting_duplicate"]
    assert not items.loc[0, "split_leak"] and items.loc[3, "split_leak"] and items.loc[4, "split_leak"]
    assert items.loc[0, "duplicate_group"] == items.loc[1, "duplicate_group"] == 0
    assert items.loc[2, "duplicate_group"] == -1 and items.loc[2, "duplicate_kind"] == ""
    assert similar_pairs(result, only="conflicts")[["row_a", "row_b"]].values.tolist() == [[0, 1]]
    assert similar_pairs(result, only="leaks")[["row_a", "row_b"]].values.tolist() == [[3, 4]]
    assert "conflict" in items.loc[0, "issues"] and "leak" in items.loc[3, "issues"]


def test_unlabelled_data_gives_duplicates_only(tiny_backbone):
    data = TextData.from_lists(["one text", "One text", "two texts here", "three"])
    result = inspect_data(data, backbone=tiny_backbone, config=InspectConfig(duplicate_threshold=1.0, folds=2))
    assert "label" not in result.items and result.probabilities is None
    assert result.items["issues"].tolist() == ["duplicate", "duplicate", "", ""]
    assert result.summary["notes"] and "--model" in result.summary["notes"][0]
    with pytest.raises(DataError, match="need labels"):
        label_errors(result)
    with pytest.raises(DataError, match="need predictions"):
        most_unsure(result)


def test_unlabelled_data_with_a_model_finds_unsure_items(tiny_backbone, tmp_path):
    from textshift.model import Classifier

    folder = Classifier.from_backbone(tiny_backbone, labels=["a", "b"], seed=0).save(tmp_path / "model")
    data = TextData.from_lists([f"text number {i}" for i in range(40)])
    result = inspect_data(data, model=folder, config=InspectConfig(duplicate_threshold=1.0, unsure_fraction=0.1))
    assert result.items["unsure"].sum() == 4
    assert set(result.items["predicted"]) <= {"a", "b"}
    assert most_unsure(result, 4)["unsure"].all()


def test_model_whose_labels_do_not_match_is_refused(tiny_backbone, tmp_path):
    from textshift.model import Classifier

    folder = Classifier.from_backbone(tiny_backbone, labels=["Sports", "Weather"], seed=0).save(tmp_path / "m")
    data, _ = synthetic(n_per_class=4, flips=0)
    with pytest.raises(ModelError, match="not classes of the model .*matching --model"):
        inspect_data(data, model=folder)


@pytest.mark.parametrize(("setting", "value"), [("folds", 1), ("scorer", "magic"), ("duplicate_threshold", 0),
                                                ("unsure_fraction", 1.0), ("neighbors", 0)])
def test_config_is_validated(setting, value):
    with pytest.raises(ConfigError, match=f"'{setting}' setting must be"):
        InspectConfig(**{setting: value})


def test_report_round_trips_and_refuses_foreign_folders(flipped_result, tmp_path):
    result, _ = flipped_result
    folder = result.save(tmp_path / "report")
    loaded = load_report(folder)
    pd.testing.assert_frame_equal(loaded.items, result.items, check_dtype=False)
    assert loaded.classes == result.classes and loaded.config == result.config
    assert loaded.summary["counts"] == result.summary["counts"]
    with pytest.raises(OutputExistsError, match=r"already exists \(an inspect report\).*--overwrite"):
        result.save(folder)
    (folder / "stale.csv").write_text("from an earlier report")
    inode = folder.stat().st_ino
    result.save(folder, overwrite=True)  # a report folder can be rewritten on request: one swap, not file by file
    assert folder.stat().st_ino != inode and not (folder / "stale.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder or lock left
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="is not an inspect report"):
        result.save(other)
    assert (other / "todo.txt").read_text() == "mine"
    with pytest.raises(DataError, match="not a complete inspect report"):
        load_report(other)
    with pytest.raises(OutputExistsError, match="is not an inspect report"):
        result.save(other, overwrite=True)  # not a report: refused whatever overwrite says
    assert [p.name for p in other.iterdir()] == ["todo.txt"]


def test_fine_tune_scorer_runs_k_models(tiny_backbone):
    data, _ = synthetic(n_per_class=6, flips=1)
    config = InspectConfig(scorer="fine-tune", folds=2, duplicate_threshold=1.0,
                           fine_tune={"epochs": 1, "warmup_epochs": 1, "batch_size": 8})
    result = inspect_data(data, backbone=tiny_backbone, config=config)
    assert result.probabilities.shape == (18, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_cli_inspect_writes_a_report(run_cli, tiny_backbone, small_news, tmp_path):
    out = tmp_path / "report"
    result = run_cli("inspect", small_news, "-o", out, "--backbone", tiny_backbone, "--folds", "3",
                     "--duplicate-threshold", "1")
    assert result.exit_code == 0, result
    assert "likely label errors" in result.stdout and "textshift review" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"items.csv", "pairs.csv", "confusion.csv", "summary.json"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["rows"] == 240 and summary["config"]["folds"] == 3
    again = run_cli("inspect", small_news, "-o", out, "--backbone", tiny_backbone, "--folds", "3", "-q")
    assert again.exit_code == 2 and "already exists (an inspect report)" in again.stderr  # before any scoring
    quiet = run_cli("inspect", small_news, "-o", out, "--backbone", tiny_backbone, "--folds", "3", "-q",
                    "--overwrite")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["rows"] == 240


def test_cli_inspect_errors_are_one_line(run_cli, tiny_backbone, small_news, tmp_path):
    bad = run_cli("inspect", small_news, "-o", tmp_path / "r", "--backbone", tiny_backbone, "--label-column", "nope")
    assert bad.exit_code == 2 and "label column 'nope' not found" in bad.stderr
    folds = run_cli("inspect", small_news, "-o", tmp_path / "r", "--folds", "1")
    assert folds.exit_code == 2 and "'folds' setting must be" in folds.stderr


@pytest.mark.slow
def test_default_inspect_finds_flipped_bills(tmp_path):
    """The real encoder on 400 real bill titles with 20 labels flipped: most flips rank first."""
    bills = read_labeled("embedded:bills-train").frame
    frame = bills.groupby("label").head(40).reset_index(drop=True)
    rng = np.random.default_rng(0)
    classes = sorted(frame["label"].unique())
    flipped = rng.choice(len(frame), 20, replace=False)
    for row in flipped:
        frame.loc[row, "label"] = rng.choice([c for c in classes if c != frame.loc[row, "label"]])
    data = TextData.from_lists(frame["text"].tolist(), frame["label"].tolist(), name="bills-flipped.csv")
    result = inspect_data(data)
    top = set(label_errors(result)["row"].head(40))
    assert len(top & set(flipped.tolist())) >= 14
    assert result.summary["out_of_fold_accuracy"] > 0.5


def test_word_scorers_step_aside_when_no_text_has_a_word():
    from textshift.scorers import candidate_estimates

    label_ids = np.array([0, 1, 0, 1])
    splits = [(np.array([0, 1]), np.array([2, 3])), (np.array([2, 3]), np.array([0, 1]))]
    embeddings = np.eye(4, 3, dtype=np.float32)
    neighbors, similarities = np.array([[1], [0], [3], [2]]), np.ones((4, 1), dtype=np.float32)
    candidates = candidate_estimates(["a b", "c d", "e", "f g"], label_ids, n_classes=2, splits=splits,
                                     embeddings=embeddings, neighbor_indices=neighbors,
                                     neighbor_similarities=similarities, members=("tfidf-lr", "neighbors", "tfidf-nb"))
    assert [c.name for c in candidates] == ["neighbors"]
    np.testing.assert_allclose(candidates[0].probabilities.sum(axis=1), 1.0)


def test_summary_reports_the_scorer_weights_and_how_much_was_read(flipped_result):
    from textshift.scorers import MEMBERS

    result, _ = flipped_result
    scorer = result.summary["scorer"]
    assert set(scorer["weights"]) <= set(MEMBERS) and {"tfidf-lr", "frozen-lr"} <= set(scorer["members"])
    assert abs(sum(scorer["weights"].values()) - 1) < 1e-3 and scorer["choice"]
    # the words give the class away and the tiny encoder is random: the stack leans on the word members
    words = scorer["weights"]["tfidf-lr"] + scorer["weights"].get("tfidf-nb", 0)
    assert words > scorer["weights"]["frozen-lr"]
    assert result.items["read_fraction"].eq(1.0).all() and result.summary["text_read"]["texts_cut"] == 0


def test_stack_weights_the_member_that_predicts_the_labels():
    from textshift.scorers import Candidate, stack_estimates

    rng = np.random.default_rng(0)
    label_ids = rng.integers(0, 4, 400)
    informative = np.full((400, 4), 0.1)
    informative[np.arange(400), label_ids] = 0.7
    noise = rng.dirichlet(np.ones(4), 400)
    splits = [(np.arange(400)[np.arange(400) % 4 != f], np.arange(400)[np.arange(400) % 4 == f]) for f in range(4)]
    pooled, report = stack_estimates([Candidate("noise", noise, 0.0), Candidate("good", informative, 0.0)],
                                     label_ids, splits=splits)
    assert report["weights"]["good"] > 0.9 and report["choice"].split(": ")[-1].startswith("good")
    assert report["pool_log_loss"] <= report["members"]["good"]["log_loss"] + 0.02
    assert report["fitted_share"] == 0.5 and report["log_loss"] > report["pool_log_loss"]  # the hedge costs log-loss
    np.testing.assert_allclose(pooled.sum(axis=1), 1.0)
    assert (pooled.argmax(axis=1) == label_ids).mean() > 0.95


def test_long_texts_are_embedded_whole_in_windows(tiny_backbone):
    from textshift.inspection import embed_whole
    from textshift.model import Classifier

    classifier = Classifier.from_backbone(tiny_backbone, labels=["a", "b"], seed=0)
    short = ["a short text"]
    embeddings, read = embed_whole(classifier, short, max_length=16)
    np.testing.assert_allclose(embeddings, classifier.embed(short, max_length=16), atol=1e-5)
    assert read.tolist() == [1.0]
    long_text = " ".join(["word"] * 200)
    embeddings, read = embed_whole(classifier, [long_text, ""], max_length=16, max_windows=4)
    tokens = len(classifier.tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert 0 < read[0] <= 4 * 14 / tokens and read[1] == 1.0  # 4 windows of 16 - 2 special tokens, at most
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    _, read_all = embed_whole(classifier, [long_text], max_length=16, max_windows=100)
    assert read_all.tolist() == [1.0]


# ---------------------------------------------------------------- labels in another column (issue 20)
@pytest.fixture()
def topic_csv(small_news, tmp_path):
    """60 headlines whose labels are in a column named ``topic`` (as the embedded export writes them)."""
    path = tmp_path / "news_topic.csv"
    pd.read_csv(small_news).head(60).rename(columns={"label": "topic"}).to_csv(path, index=False)
    return path


def test_inspect_stops_like_train_when_labels_are_in_another_column(run_cli, tiny_backbone, topic_csv, tmp_path):
    out = tmp_path / "report"
    result = run_cli("inspect", topic_csv, "-o", out, "--backbone", tiny_backbone)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "Pass --label-column topic" in result.stderr and "--no-labels" in result.stderr
    assert not out.exists()
    train = run_cli("train", topic_csv, "-o", tmp_path / "model", "--backbone", tiny_backbone)
    assert train.exit_code == 2 and "Pass --label-column topic" in train.stderr
    both = run_cli("inspect", topic_csv, "-o", out, "--no-labels", "--label-column", "topic")
    assert both.exit_code == 2 and "both given" in both.stderr


def test_no_labels_inspects_the_texts_alone(run_cli, tiny_backbone, topic_csv, small_news, tmp_path):
    result = run_cli("inspect", topic_csv, "-o", tmp_path / "texts", "--backbone", tiny_backbone, "--no-labels",
                     "--duplicate-threshold", "1")
    assert result.exit_code == 0, result
    summary = json.loads((tmp_path / "texts" / "summary.json").read_text())
    assert summary["summary"]["has_labels"] is False and summary["data"]["label_column"] is None
    labelled = run_cli("inspect", small_news, "-o", tmp_path / "plain", "--backbone", tiny_backbone, "--no-labels",
                       "--duplicate-threshold", "1", "-q")  # a `label` column is left out too
    assert labelled.exit_code == 0 and json.loads(labelled.stdout)["has_labels"] is False
    plain = tmp_path / "plain.csv"  # no column that looks like labels: inspected without labels, as before
    pd.read_csv(small_news)[["text"]].head(30).assign(source="wire").to_csv(plain, index=False)
    texts = run_cli("inspect", plain, "-o", tmp_path / "plain-report", "--backbone", tiny_backbone,
                    "--duplicate-threshold", "1")
    assert texts.exit_code == 0 and "no labels" in texts.stdout


def test_report_records_the_columns_and_prints_a_review_command_with_them(run_cli, tiny_backbone, topic_csv,
                                                                         tmp_path):
    out = tmp_path / "report"
    result = run_cli("inspect", topic_csv, "-o", out, "--backbone", tiny_backbone, "--label-column", "topic",
                     "--folds", "2", "--duplicate-threshold", "1")
    assert result.exit_code == 0, result
    data = json.loads((out / "summary.json").read_text())["data"]
    assert (data["text_column"], data["label_column"]) == ("text", "topic")
    assert f"textshift review {topic_csv} --report {out} --label-column topic" in " ".join(result.stdout.split())
    assert load_report(out).data["label_column"] == "topic"


def test_stack_refuses_a_fitted_share_outside_0_to_1():
    from textshift.errors import ConfigError
    from textshift.scorers import Candidate, stack_estimates

    probabilities = np.full((8, 2), 0.5)
    splits = [(np.arange(4, 8), np.arange(4)), (np.arange(4), np.arange(4, 8))]
    with pytest.raises(ConfigError, match=r"fitted_share must be in \[0, 1\]; got 1.5") as info:
        stack_estimates([Candidate("a", probabilities, 0.0), Candidate("b", probabilities, 0.0)],
                        np.array([0, 1] * 4), splits=splits, fitted_share=1.5)
    assert "\n" not in str(info.value)
