"""textshift.baselines: the scikit-learn baselines every comparison runs."""

from __future__ import annotations

import numpy as np
import pytest

from textshift.baselines import BASELINES, EmbeddingCache, frozen_lr, tfidf_svm
from textshift.model import Classifier

TRAIN = ["army troops", "missile army", "troops base", "hospital drug", "drug patients", "patients hospital"]
LABELS = ["Defense"] * 3 + ["Health"] * 3


def test_tfidf_svm_learns_keywords():
    assert tfidf_svm(TRAIN, LABELS, ["army base", "drug hospital", ""])[:2] == ["Defense", "Health"]
    assert len(tfidf_svm(TRAIN, LABELS, ["a", "b", "c"])) == 3


@pytest.fixture(scope="module")
def encoder(tiny_backbone):
    return Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=0)


def test_embedding_cache_embeds_each_distinct_text_once(encoder):
    cache = EmbeddingCache(encoder)
    vectors = cache(["army", "drug", "army"])
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_allclose(vectors[:2], encoder.embed(["army", "drug"]), rtol=1e-5, atol=1e-6)
    assert len(cache._cache) == 2
    assert cache([]).shape[0] == 0


def test_frozen_lr_gives_the_same_labels_from_the_encoder_or_its_cache(encoder):
    direct = frozen_lr(TRAIN, LABELS, TRAIN, encoder=encoder)
    assert direct == frozen_lr(TRAIN, LABELS, TRAIN, encoder=EmbeddingCache(encoder))
    assert set(direct) <= {"Defense", "Health"} and len(direct) == len(TRAIN)
    with pytest.raises(ValueError, match="needs an encoder"):
        frozen_lr(TRAIN, LABELS, TRAIN)


def test_every_baseline_has_the_shared_signature(encoder):
    for name, fit_predict in BASELINES.items():
        assert len(fit_predict(TRAIN, LABELS, ["army"], encoder=encoder, seed=1)) == 1, name
