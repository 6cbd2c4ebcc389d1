"""Transfer strategies on a tiny backbone: label matching, head carry-over, and the errors users hit."""

from __future__ import annotations

import numpy as np
import pytest

from textshift.data import TextData
from textshift.errors import ConfigError, DataError
from textshift.model import Classifier, head_linear
from textshift.training import TrainConfig
from textshift.transfer import STRATEGIES, TransferConfig, prepare_model, transfer

FAST = TrainConfig(epochs=1, warmup_epochs=1)
SOURCE_TEXTS = ["army war troops"] * 6 + ["hospital doctor nurse"] * 6 + ["football game score"] * 6
SOURCE_LABELS = ["Defense"] * 6 + ["Health"] * 6 + ["Sports"] * 6
TARGET = TextData.from_lists(["defense appropriations act"] * 4 + ["medicare drug benefit"] * 4
                             + ["school lunch program"] * 4,
                             ["Defense"] * 4 + ["Health"] * 4 + ["Education"] * 4)


@pytest.fixture(scope="module")
def source(tiny_backbone):
    from textshift.training import train

    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health", "Sports"], seed=0)
    train(clf, SOURCE_TEXTS, SOURCE_LABELS, config=FAST)
    clf.meta.training_data = [TextData.from_lists(SOURCE_TEXTS, SOURCE_LABELS).fingerprint.to_dict()]
    return clf


def test_finetune_matches_labels_by_name(source):
    model = prepare_model(source, TARGET, TransferConfig(strategy="finetune", train=FAST))
    assert model.labels == ["Defense", "Education", "Health"]
    old, new = head_linear(source.model).weight, head_linear(model.model).weight
    assert np.allclose(new[0].detach(), old[0].detach())  # Defense carried over
    assert np.allclose(new[2].detach(), old[1].detach())  # Health carried over
    assert source.labels == ["Defense", "Health", "Sports"], "source must not change"


def test_keep_source_classes(source):
    model = prepare_model(source, TARGET, TransferConfig(strategy="finetune", keep_source_classes=True))
    assert set(model.labels) == {"Defense", "Health", "Sports", "Education"}


def test_encoder_gets_fresh_head(source):
    model = prepare_model(source, TARGET, TransferConfig(strategy="encoder"))
    assert model.labels == TARGET.classes
    assert not np.allclose(head_linear(model.model).weight[0].detach(), head_linear(source.model).weight[0].detach())


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "joint"])
def test_every_strategy_runs_and_keeps_the_tokenizer(source, strategy, tiny_backbone):
    model, result = transfer(source, TARGET, strategy=strategy, config=TransferConfig(train=FAST))
    assert model.tokenizer is source.tokenizer or strategy == "scratch"
    assert model.meta.strategy == strategy
    probs = model.predict_proba(["national defense bill"])
    assert probs.shape == (1, len(model.labels))
    if strategy == "zero-shot":
        assert model.labels == ["Defense", "Health"]


def test_joint_uses_source_rows(source):
    source_data = TextData.from_lists(SOURCE_TEXTS, SOURCE_LABELS)
    model, result = transfer(source, TARGET, strategy="joint", source_data=source_data,
                             config=TransferConfig(train=FAST))
    assert model.labels == TARGET.classes
    assert model.meta.extra["joint"]["source_rows"] == 18
    assert result.train_rows == 18 + 12


def test_joint_without_source_data_says_how_to_fix(tiny_backbone):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    with pytest.raises(DataError, match="--source-data"):
        transfer(clf, TARGET, strategy="joint", config=TransferConfig(train=FAST))


def test_no_common_class_suggests_encoder(source):
    target = TextData.from_lists(["a", "b", "c", "d"], ["X", "X", "Y", "Y"])
    with pytest.raises(DataError, match="--strategy encoder"):
        transfer(source, target, strategy="finetune")
    model, _ = transfer(source, target, strategy="encoder", config=TransferConfig(train=FAST))
    assert model.labels == ["X", "Y"]


def test_unknown_strategy():
    with pytest.raises(ConfigError, match="unknown strategy"):
        TransferConfig(strategy="magic")


def test_adapt_changes_the_encoder(source):
    from textshift.adapt import AdaptConfig

    model, _ = transfer(source, TARGET, strategy="adapt",
                        config=TransferConfig(train=TrainConfig(epochs=1, warmup_epochs=0, learning_rate=1e-9),
                                              adapt=AdaptConfig(epochs=2, learning_rate=1e-3)))
    assert model.meta.extra["adapt"]["texts"] == 3
    before = source.model.bert.encoder.layer[0].attention.self.query.weight
    after = model.model.bert.encoder.layer[0].attention.self.query.weight
    assert not np.allclose(before.detach(), after.detach())


def test_adapt_without_texts_is_a_data_error(source):
    from textshift.adapt import adapt_language_model
    from textshift.errors import DataError

    with pytest.raises(DataError, match="no texts to adapt"):
        adapt_language_model(source, [])


def test_paths_are_read_and_the_source_folder_is_recorded(source, tmp_path):
    folder = tmp_path / "news"
    source.save(folder)
    data = tmp_path / "target.csv"
    TARGET.frame[["text", "label"]].to_csv(data, index=False)
    model, _ = transfer(str(folder), data, config=TransferConfig(strategy="finetune", train=FAST))
    assert model.meta.source_model == str(folder.resolve())
    with pytest.raises(DataError, match="got one string. Wrap it in a list"):
        transfer(source, TARGET, config=TransferConfig(strategy="adapt", train=FAST), unlabeled_texts="bills text")
    with pytest.raises(ConfigError, match="source must be a Classifier or a model folder path; got a int"):
        transfer(3, TARGET)
