"""The training loop on a tiny random backbone: it learns, it is reproducible, settings are validated."""

from __future__ import annotations

import numpy as np
import pytest

from textshift.errors import ConfigError, DataError
from textshift.model import Classifier
from textshift.training import LossShaping, TrainConfig, log_class_counts, stratified_holdout, train

TEXTS = ["war army troops missile"] * 20 + ["hospital doctor patients drug"] * 20
LABELS = ["Defense"] * 20 + ["Health"] * 20


def test_learns_a_separable_task(tiny_backbone):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    train(clf, TEXTS, LABELS, config=TrainConfig(epochs=10, batch_size=8, learning_rate=1e-3, warmup_epochs=5))
    probs = clf.predict_proba(["army missile troops", "doctor drug hospital"])
    assert probs[0].argmax() == 0 and probs[1].argmax() == 1


def test_same_seed_same_weights(tiny_backbone):
    runs = []
    for _ in range(2):
        clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=7)
        train(clf, TEXTS, LABELS, config=TrainConfig(epochs=2, seed=7))
        runs.append(clf.predict_logits(["army doctor"]))
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-6)


def test_validation_split_and_early_stopping(tiny_backbone):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    texts, labels = TEXTS * 10, LABELS * 10
    result = train(clf, texts, labels, config=TrainConfig(epochs=4, val_fraction=0.2, min_val_rows=20, patience=1))
    assert result.val_rows == 80 and result.train_rows == 320
    assert "val_macro_f1" in result.val_metrics
    assert result.best_epoch is not None


@pytest.mark.parametrize("options", [{"gradual_unfreeze": True}, {"layer_lr_decay": 0.8}, {"warmup_epochs": 0}])
def test_options_run(tiny_backbone, options):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    result = train(clf, TEXTS, LABELS, config=TrainConfig(epochs=2, **options))
    assert len(result.history) == 2


def test_rejects_labels_outside_the_model(tiny_backbone):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    with pytest.raises(DataError, match="not classes of the model"):
        train(clf, ["x"], ["Sports"])


@pytest.mark.parametrize("field,value", [("batch_size", 0), ("learning_rate", 2.0), ("layer_lr_decay", 1.5),
                                         ("val_fraction", 0.7), ("min_val_rows", 0)])
def test_config_validation(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_stratified_holdout_keeps_every_class_in_train():
    labels = ["a"] * 10 + ["b"] * 3 + ["c"]
    train_pos, held = stratified_holdout(labels, 0.3, 0)
    assert set(np.asarray(labels)[train_pos]) == {"a", "b", "c"}
    assert len(set(train_pos) & set(held)) == 0 and len(train_pos) + len(held) == len(labels)


def test_default_holds_out_only_a_validation_set_large_enough_to_choose_epochs():
    """1,000 labelled rows train whole (a 100-row hold-out cost 0.07 macro-F1 there); 10,000 keep 1,000 aside."""
    config = TrainConfig()
    assert not config.holds_out(1000) and not config.holds_out(9999) and config.holds_out(10_000)


def test_same_run_compares_the_validation_split_by_its_effect():
    fifty, hundred = TrainConfig(min_val_rows=50), TrainConfig(min_val_rows=100)
    assert hundred.holds_out(1000) and not hundred.holds_out(999) and fifty.holds_out(500)
    assert fifty.same_run(hundred, [200, 1000, 3304])  # neither splits 200; both split 1000 and 3304
    assert not fifty.same_run(hundred, [200, 500])  # only the 50-row minimum splits 500
    assert not TrainConfig(val_fraction=0.2).same_run(fifty, [3304])  # same decision, different split
    assert TrainConfig(val_fraction=0.0).same_run(fifty, [200])
    assert not TrainConfig(learning_rate=5e-5).same_run(fifty, [200])


def test_row_classes_leave_the_excluded_classes_untouched(tiny_backbone):
    """A class left out of every row's cross-entropy gets no gradient: its head row ends as it started."""
    from textshift.model import head_linear

    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health", "Energy"], seed=3)
    before = head_linear(clf.model).weight.detach().clone()
    allowed = np.ones((len(TEXTS), 3), dtype=bool)
    allowed[:, 2] = False  # no row is scored against Energy
    train(clf, TEXTS, LABELS, config=TrainConfig(epochs=2, batch_size=8, weight_decay=0.0),
          loss=LossShaping(row_classes=allowed))
    after = head_linear(clf.model).weight.detach()
    assert torch_equal(after[2], before[2])
    assert not torch_equal(after[:2], before[:2])  # the scored classes did learn
    unmasked = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health", "Energy"], seed=3)
    train(unmasked, TEXTS, LABELS, config=TrainConfig(epochs=2, batch_size=8, weight_decay=0.0))
    assert not torch_equal(head_linear(unmasked.model).weight.detach()[2], before[2])  # it would have moved


def test_logit_adjust_shifts_the_model_against_the_frequent_class(tiny_backbone):
    """The balanced softmax adds log(rows) in the loss only: the frequent class is favoured less at prediction."""
    texts, labels = TEXTS[:20] + TEXTS[20:25], LABELS[:20] + LABELS[20:25]  # 20 Defense, 5 Health
    margins = []
    for adjust in (0.0, 2.0):
        clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=3)
        train(clf, texts, labels, config=TrainConfig(epochs=2, batch_size=8, seed=3, logit_adjust=adjust))
        logits = clf.predict_logits(TEXTS)
        margins.append(float((logits[:, 0] - logits[:, 1]).mean()))
    plain, adjusted = margins
    assert adjusted < plain - 0.5


def test_class_offsets_are_the_logit_adjustment_spelled_out(tiny_backbone):
    """LossShaping(class_offsets=a * log(counts)) trains the same model as TrainConfig(logit_adjust=a)."""
    from textshift.model import head_linear

    texts, labels = TEXTS[:20] + TEXTS[20:25], LABELS[:20] + LABELS[20:25]
    heads = []
    for adjust, offsets in ((2.0, None), (0.0, 2.0 * log_class_counts(labels, ["Defense", "Health"]))):
        clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=3)
        train(clf, texts, labels, config=TrainConfig(epochs=1, batch_size=8, seed=3, logit_adjust=adjust),
              loss=LossShaping(class_offsets=offsets))
        heads.append(head_linear(clf.model).weight.detach().clone())
    assert torch_equal(heads[0], heads[1])
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=3)
    with pytest.raises(ConfigError, match="class_offsets and logit_adjust both"):
        train(clf, texts, labels, config=TrainConfig(epochs=1, logit_adjust=1.0),
              loss=LossShaping(class_offsets=np.zeros(2)))
    with pytest.raises(ConfigError, match="expected \\(2,\\)"):
        train(clf, texts, labels, config=TrainConfig(epochs=1), loss=LossShaping(class_offsets=np.zeros(3)))


def test_settings_added_later_stay_out_of_the_stored_settings_at_their_default():
    assert "logit_adjust" not in TrainConfig().to_dict()
    assert TrainConfig(logit_adjust=1.0).to_dict()["logit_adjust"] == 1.0
    assert TrainConfig(**TrainConfig(logit_adjust=0.5).to_dict()) == TrainConfig(logit_adjust=0.5)
    with pytest.raises(ConfigError, match="logit_adjust"):
        TrainConfig(logit_adjust=-1)


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


@pytest.mark.parametrize("change, message", [("shape", "expected \\(rows, classes\\)"),
                                             ("own", "leaves out row 0's own label 'Defense'"),
                                             ("smoothing", "label_smoothing")])
def test_row_classes_are_validated(tiny_backbone, change, message):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    allowed = np.ones((len(TEXTS), 2), dtype=bool)
    config = TrainConfig(epochs=1)
    if change == "shape":
        allowed = allowed[:, :1]
    elif change == "own":
        allowed[0, 0] = False
    else:
        config = TrainConfig(epochs=1, label_smoothing=0.1)
    with pytest.raises(ConfigError, match=message):
        train(clf, TEXTS, LABELS, config=config, loss=LossShaping(row_classes=allowed))


@pytest.mark.parametrize("kwargs, expect", [
    ({"loss": LossShaping(weights=[0.0] * 40)}, "at least one > 0"),
    ({"loss": LossShaping(weights=[1.0])}, "got 1 row weights for 40 texts"),
    ({"loss": LossShaping(weights=[float("nan")] * 40)}, "must be finite"),
    ({"loss": LossShaping(weights=[-1.0] + [1.0] * 39)}, ">= 0"),
    ({"val_texts": ["army"]}, "val_texts and val_labels go together"),
    ({"val_texts": ["army"], "val_labels": ["Defense", "Health"]}, "got 1 validation texts but 2 labels"),
])
def test_bad_weights_and_validation_rows_are_refused_before_training(tiny_backbone, kwargs, expect):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    with pytest.raises(DataError, match=expect.replace("(", r"\(")):
        train(clf, TEXTS, LABELS, config=TrainConfig(epochs=1), **kwargs)


def test_no_rows_and_nothing_to_train_are_refused(tiny_backbone):
    clf = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"])
    with pytest.raises(DataError, match="no training rows"):
        train(clf, [], [])
    with pytest.raises(ConfigError, match="would save an untrained model"):
        TrainConfig(epochs=0, warmup_epochs=0)


def test_train_classifier_reads_a_path_and_refuses_a_frame(tiny_backbone, small_news):
    import pandas as pd

    from textshift.training import train_classifier

    with pytest.raises(DataError, match="data must be a TextData or a data file path; got a DataFrame"):
        train_classifier(pd.read_csv(small_news), backbone=tiny_backbone)
    classifier, _ = train_classifier(str(small_news), backbone=tiny_backbone,
                                     config=TrainConfig(epochs=1, warmup_epochs=1))
    assert len(classifier.labels) >= 2
