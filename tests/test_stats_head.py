"""Feature statistics and the LDA head: exact updates, files, the ``head="lda"`` growth mode, refusals."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from test_grow import FAST, keyword_rows

from textshift.grow import GrowConfig, Memory, grow, grow_folder, save_with_memory
from textshift.model import Classifier
from textshift.stats_head import STATS_FILE, FeatureStats, FeatureStatsError, encoder_fingerprint, read_stats
from textshift.training import train_classifier

LDA = GrowConfig(head="lda", seed=3, train=FAST)


def blobs(seed: int, classes: list[str], n: int = 30, dim: int = 6) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    features = np.concatenate([rng.normal(size=(n, dim)) + 2.5 * rng.normal(size=dim) for _ in classes])
    return features, [label for label in classes for _ in range(n)]


# ------------------------------------------------------------------------------------------------ statistics
def test_merged_statistics_equal_those_of_all_rows_at_once():
    first, first_labels = blobs(0, ["a", "b"])
    second, second_labels = blobs(1, ["b", "c"], n=11)  # "b" again: pooled, not replaced
    merged = (FeatureStats.from_features(first, first_labels, encoder="e")
              .merged(FeatureStats.from_features(second, second_labels, encoder="e")))
    at_once = FeatureStats.from_features(np.concatenate([first, second]), first_labels + second_labels, encoder="e")
    assert merged.classes == at_once.classes == ["a", "b", "c"]
    assert merged.counts.tolist() == [30, 41, 11]
    np.testing.assert_allclose(merged.means, at_once.means, rtol=1e-12)
    np.testing.assert_allclose(merged.scatter, at_once.scatter, rtol=1e-10)
    with pytest.raises(FeatureStatsError, match="different encoder weights"):
        merged.merged(FeatureStats.from_features(second, second_labels, encoder="other"))


def test_lda_head_predicts_as_sklearn_lda_with_equal_priors():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    features, labels = blobs(2, ["a", "b", "c"], n=40)
    features[:40] += np.random.default_rng(5).normal(size=(40, 6)) * 2  # overlapping classes: a real test
    weight, bias = FeatureStats.from_features(features, labels, encoder="e").linear_head(["a", "b", "c"],
                                                                                          shrinkage=0.0)
    ours = np.asarray(["a", "b", "c"])[(features @ weight.T + bias).argmax(axis=1)]
    theirs = LinearDiscriminantAnalysis(solver="lsqr", priors=[1 / 3] * 3).fit(features, labels).predict(features)
    assert (ours == theirs).all()


def test_statistics_round_trip_through_safetensors():
    features, labels = blobs(3, ["x", "é"])
    stats = FeatureStats.from_features(features, labels, encoder="abc")
    back = FeatureStats.from_bytes(stats.to_bytes())
    assert back.classes == ["x", "é"] and back.encoder == "abc"
    np.testing.assert_array_equal(back.scatter, stats.scatter)
    with pytest.raises(FeatureStatsError, match="not a feature-statistics file"):
        FeatureStats.from_bytes(b"not safetensors")


# ------------------------------------------------------------------------------------------------ growing
@pytest.fixture(scope="module")
def two_class(tiny_backbone):
    data = keyword_rows(["Defense", "Health"], 24, seed=1)
    classifier, _ = train_classifier(data, backbone=tiny_backbone, config=FAST)
    return classifier, data


def test_lda_growth_keeps_the_encoder_and_saves_exact_statistics(two_class, tmp_path):
    classifier, data = two_class
    new = keyword_rows(["Energy", "Education"], 16, seed=2)
    result = grow(classifier, new, old_data=data, config=LDA)
    grown = result.classifier
    assert grown.labels == ["Defense", "Health", "Education", "Energy"]
    assert encoder_fingerprint(grown) == encoder_fingerprint(classifier)
    assert result.stats.classes == ["Defense", "Health", "Education", "Energy"]
    assert result.stats.counts.tolist() == [24, 24, 16, 16]  # every old row, not the memory
    assert grown.meta.extra["grow"]["stats_from"] == "old data (48 rows)"
    predicted = np.asarray(grown.labels)[grown.predict_logits(new.texts + data.texts).argmax(axis=1)]
    assert (predicted == np.asarray(new.labels + data.labels)).mean() > 0.5  # 4 classes: chance is 0.25

    folder = save_with_memory(grown, tmp_path / "v2", result.memory, stats=result.stats)
    stored = read_stats(folder, Classifier.load(folder))
    np.testing.assert_array_equal(stored.means, result.stats.means)
    from transformers import pipeline  # the plain pipeline sees the folded head: same answer, no extra code

    answer = pipeline("text-classification", model=str(folder))("oil gas power")[0]["label"]
    assert answer == grown.labels[int(grown.predict_logits(["oil gas power"]).argmax())]


def test_growing_twice_from_one_folder_gives_identical_weights_and_statistics(two_class, tmp_path):
    classifier, data = two_class
    source = save_with_memory(classifier, tmp_path / "v1", Memory.sample(data.texts, data.labels, per_class=10))
    new = keyword_rows(["Energy"], 12, seed=4)
    outputs = [tmp_path / "a", tmp_path / "b"]
    for output in outputs:
        grow_folder(source, new, output, config=LDA, old_data=data)
    models = [Classifier.load(output).model.state_dict() for output in outputs]
    assert all(torch.equal(models[0][name], models[1][name]) for name in models[0])
    assert (outputs[0] / STATS_FILE).read_bytes() == (outputs[1] / STATS_FILE).read_bytes()
    # the next step reads the stored statistics (no --old-data needed) and updates them exactly
    third = keyword_rows(["Education"], 10, seed=5)
    report = grow_folder(outputs[0], third, tmp_path / "c", config=LDA)
    stats = read_stats(report.output)
    assert stats.counts.tolist() == [24, 24, 12, 10]
    assert json.loads((report.output / "textshift.json").read_text())["extra"]["grow"]["stats_from"] == "stored"


def test_statistics_that_do_not_match_their_model_are_refused(two_class, tmp_path, run_cli):
    classifier, data = two_class
    new = keyword_rows(["Energy"], 12, seed=4)
    result = grow(classifier, new, old_data=data, config=LDA)
    folder = save_with_memory(result.classifier, tmp_path / "v2", result.memory, stats=result.stats)
    # the statistics and their record copied into the folder of a model with other encoder weights
    other = save_with_memory(classifier, tmp_path / "other", None)
    with torch.no_grad():
        next(result.classifier.model.parameters()).add_(0.01)
    moved = save_with_memory(result.classifier, tmp_path / "moved", None)
    shutil.copy(folder / STATS_FILE, moved / STATS_FILE)
    meta = json.loads((moved / "textshift.json").read_text())
    meta["extra"]["stats"] = json.loads((folder / "textshift.json").read_text())["extra"]["stats"]
    (moved / "textshift.json").write_text(json.dumps(meta))
    with pytest.raises(FeatureStatsError, match="other encoder weights"):
        read_stats(moved, Classifier.load(moved))
    more = tmp_path / "more.csv"
    keyword_rows(["Education"], 8, seed=6).frame.to_csv(more, index=False)
    out = run_cli("grow", str(moved), str(more), "-o", str(tmp_path / "v3"), "--head", "lda", "-q")
    assert out.exit_code == 2 and "other encoder weights" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    # a statistics file edited after saving, and one without a record, are refused too
    (folder / STATS_FILE).write_bytes((folder / STATS_FILE).read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(FeatureStatsError, match="changed after textshift wrote them"):
        read_stats(folder)
    shutil.copy(folder / STATS_FILE, other / STATS_FILE)
    with pytest.raises(FeatureStatsError, match="records no feature statistics"):
        read_stats(other)


def test_lda_growth_without_memory_or_old_data_warns(two_class, caplog):
    classifier, _ = two_class
    with caplog.at_level(logging.WARNING, logger="textshift"):
        result = grow(classifier, keyword_rows(["Energy"], 12, seed=4), config=LDA)
    assert any("keep their trained head rows" in record.getMessage() for record in caplog.records)
    assert result.stats is None  # statistics of some classes only are not saved
    assert result.classifier.labels == ["Defense", "Health", "Energy"]


def test_lda_growth_from_memory_alone_warns_that_it_is_approximate(two_class, caplog):
    classifier, data = two_class
    memory = Memory.sample(data.texts, data.labels, per_class=5, seed=0)
    with caplog.at_level(logging.WARNING, logger="textshift"):
        result = grow(classifier, keyword_rows(["Energy"], 12, seed=4), memory=memory, config=LDA)
    assert any("approximate" in record.getMessage() for record in caplog.records)
    assert result.stats.counts.tolist() == [5, 5, 12]


def test_shrinkage_and_head_settings_are_checked():
    from textshift.errors import ConfigError

    with pytest.raises(ConfigError, match="shrinkage"):
        GrowConfig(head="lda", shrinkage=1.0)
    with pytest.raises(ConfigError, match="one of trained, lda"):
        GrowConfig(head="ncm")
