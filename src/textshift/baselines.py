"""Reference baselines every comparison runs beside the transfer strategies (scikit-learn).

``tfidf-svm``  word and bigram TF-IDF with a linear SVM — the classic strong text baseline.
``frozen-lr``  logistic regression on frozen mean-pooled encoder embeddings (the backbone, not fine-tuned).

Both follow one signature: ``fit_predict(train_texts, train_labels, test_texts, *, encoder=None, seed=0)``
returns the predicted labels for ``test_texts``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from textshift.model import Classifier


def tfidf_svm(train_texts: list[str], train_labels: list[str], test_texts: list[str], *,
              encoder: Classifier | None = None, seed: int = 0) -> list[str]:
    """TF-IDF (1-2 grams, sublinear tf) + linear SVM (C=1, balanced class weights)."""
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                          LinearSVC(C=1.0, class_weight="balanced", random_state=seed))
    model.fit(train_texts, train_labels)
    return model.predict(test_texts).tolist()


class EmbeddingCache:
    """Embeds each distinct text once per encoder (baselines reuse embeddings across sizes and seeds)."""

    def __init__(self, encoder: Classifier):
        self.encoder = encoder
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.encoder.embed(missing), strict=True):
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)


def frozen_lr(train_texts: list[str], train_labels: list[str], test_texts: list[str], *,
              encoder: Classifier | EmbeddingCache | None = None, seed: int = 0) -> list[str]:
    """Logistic regression (C=10, balanced) on L2-normalised frozen embeddings."""
    if encoder is None:
        raise ValueError("frozen-lr needs an encoder")
    embed = encoder if isinstance(encoder, EmbeddingCache) else encoder.embed
    model = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced", random_state=seed)
    model.fit(embed(list(train_texts)), train_labels)
    return model.predict(embed(list(test_texts))).tolist()


BASELINES: dict[str, Callable[..., list[str]]] = {"tfidf-svm": tfidf_svm, "frozen-lr": frozen_lr}
