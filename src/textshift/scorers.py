"""Out-of-fold estimates of ``p(class | text)`` and how `inspect` combines them.

Each candidate (:data:`MEMBERS`) predicts every item from models that never saw it (the folds of ``splits``):

* ``tfidf-lr``: logistic regression on TF-IDF words and word pairs (:func:`word_features`),
* ``frozen-lr``: logistic regression on the frozen encoder's whole-text embeddings,
* ``frozen-svm``: an RBF-kernel SVM on the same embeddings,
* ``neighbors``: a similarity-weighted vote of each item's nearest other items,
* ``tfidf-nb``: complement naive Bayes on the TF-IDF features.

:func:`stack_estimates` combines them by how well each predicts the given labels out of fold: a log-linear pool
whose weights minimise the log-loss, fitted with nested folds, averaged with the plain mean of the members
(``FITTED_SHARE`` of the pool). :mod:`textshift.inspection` turns the result into a report.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np

from textshift.errors import ConfigError

logger = logging.getLogger(__name__)

# Candidate estimates of the default scorer, combined by how well each predicts the given labels out of fold.
MEMBERS = ("tfidf-lr", "frozen-lr", "frozen-svm", "neighbors", "tfidf-nb")
# Share of the fitted pool in the final estimate; the rest is the plain mean of the members. Weights fitted on the
# given labels follow them, wrong ones included; the plain mean hedges against that (see docs/cleaning.md).
FITTED_SHARE = 0.5


# ---------------------------------------------------------------------------------------------- probabilities
def _fit_predict(make_model, features, label_ids: np.ndarray, n_classes: int,
                 splits: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    probabilities = np.zeros((len(label_ids), n_classes))
    for train_rows, held_rows in splits:
        present = np.unique(label_ids[train_rows])
        if len(present) == 1:  # a fold with one class cannot train a classifier: it predicts that class
            probabilities[np.ix_(held_rows, present)] = 1.0
            continue
        model = make_model().fit(features[train_rows], label_ids[train_rows])
        probabilities[np.ix_(held_rows, model.classes_)] = model.predict_proba(features[held_rows])
    return probabilities


def logistic_oof(embeddings: np.ndarray, label_ids: np.ndarray, *, n_classes: int,
                 splits: list[tuple[np.ndarray, np.ndarray]], regularization: float = 1.0) -> np.ndarray:
    """Out-of-fold probabilities of logistic regression on embeddings, shape (n, n_classes)."""
    from sklearn.linear_model import LogisticRegression

    return _fit_predict(lambda: LogisticRegression(C=regularization, max_iter=1000), embeddings, label_ids,
                        n_classes, splits)


def svm_oof(embeddings: np.ndarray, label_ids: np.ndarray, *, n_classes: int,
            splits: list[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> np.ndarray | None:
    """Out-of-fold probabilities of an RBF-kernel SVM (Platt-scaled) on embeddings, shape (n, n_classes).

    Returns None when the installed scikit-learn no longer has libsvm's own probability estimates and some
    class is too small for the cross-validated calibration that replaces them.
    """
    from sklearn.svm import SVC

    if "probability" in SVC().get_params():  # libsvm's Platt scaling, deprecated in scikit-learn 1.9
        def make_model():
            return SVC(C=10.0, probability=True, random_state=seed)
    else:  # pragma: no cover - scikit-learn >= 1.11
        from sklearn.calibration import CalibratedClassifierCV

        if any(np.bincount(label_ids[train_rows])[np.unique(label_ids[train_rows])].min() < 3
               for train_rows, _ in splits):
            return None

        def make_model():
            return CalibratedClassifierCV(SVC(C=10.0, random_state=seed), method="sigmoid", cv=3, ensemble=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return _fit_predict(make_model, embeddings, label_ids, n_classes, splits)


def neighbor_vote(neighbor_indices: np.ndarray, neighbor_similarities: np.ndarray, label_ids: np.ndarray, *,
                  n_classes: int, temperature: float = 20.0, floor: float = 1e-3) -> np.ndarray:
    """Leave-one-out probabilities from the labels of each item's nearest neighbours.

    Each neighbour votes for its label with weight ``exp(temperature * (similarity - 1))``, so near-duplicates
    count most; ``floor`` keeps every class possible. Shape (n, n_classes), rows sum to 1.
    """
    n = len(label_ids)
    votes = np.full((n, n_classes), floor)
    if neighbor_indices.size:
        weights = np.exp(temperature * (neighbor_similarities.astype(np.float64) - 1.0))
        rows = np.arange(n)
        for column in range(neighbor_indices.shape[1]):
            np.add.at(votes, (rows, label_ids[neighbor_indices[:, column]]), weights[:, column])
    return votes / votes.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- adaptive scorer
@dataclass
class Candidate:
    """One candidate estimate of ``p(class | text)``: out-of-fold probabilities (n, n_classes) and fit seconds."""

    name: str
    probabilities: np.ndarray
    seconds: float


def word_features(texts: list[str], *, max_features: int = 100_000):
    """Sublinear TF-IDF of words and word pairs (sparse, float32), or None when no text has a word.

    Fitting the vocabulary on all texts uses no labels, so it does not leak them across folds. Pairs seen once
    are dropped and the vocabulary is capped at ``max_features`` (the most frequent): logistic regression keeps
    ``2 * 10`` copies of its weights (L-BFGS history), so 20 classes × 100,000 features cost about 320 MB, where
    the uncapped 1.5 million features of 20 Newsgroups would cost 4.8 GB.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    settings = {"ngram_range": (1, 2), "sublinear_tf": True, "dtype": np.float32, "max_features": max_features}
    try:
        return TfidfVectorizer(min_df=2, **settings).fit_transform(texts)
    except ValueError:  # fewer than two texts share a word: keep every word
        try:
            return TfidfVectorizer(**settings).fit_transform(texts)
        except ValueError:  # no word of two or more letters in any text
            return None


def tfidf_logistic_oof(features, label_ids: np.ndarray, *, n_classes: int,
                       splits: list[tuple[np.ndarray, np.ndarray]], regularization: float = 1.0) -> np.ndarray:
    """Out-of-fold probabilities of logistic regression on TF-IDF features, shape (n, n_classes)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():  # a few hundred L-BFGS steps rank as well as full convergence
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _fit_predict(lambda: LogisticRegression(C=regularization, max_iter=300), features, label_ids,
                            n_classes, splits)


def candidate_estimates(texts: list[str], label_ids: np.ndarray, *, n_classes: int,
                        splits: list[tuple[np.ndarray, np.ndarray]], embeddings: np.ndarray,
                        neighbor_indices: np.ndarray, neighbor_similarities: np.ndarray,
                        members: tuple[str, ...] = MEMBERS, regularization: float = 1.0, svm_max_rows: int = 5_000,
                        seed: int = 0) -> list[Candidate]:
    """The out-of-fold candidate estimates named in ``members`` (see :data:`MEMBERS`), in that order.

    ``frozen-svm`` is left out above ``svm_max_rows`` items (its cost grows with n²) or when the installed
    scikit-learn cannot calibrate it; the word members are left out when no text has a word.
    """
    unknown = sorted(set(members) - set(MEMBERS))
    if unknown:
        raise ConfigError(f"unknown scorer members {', '.join(unknown)}; expected some of {', '.join(MEMBERS)}")
    words = None
    if {"tfidf-lr", "tfidf-nb"} & set(members):
        words = word_features(texts)
        if words is None:
            logger.warning("the texts have no words of two or more letters; the word scorers are left out")
    out: list[Candidate] = []
    for name in members:
        mark = time.perf_counter()
        if name == "tfidf-lr":
            if words is None:
                continue
            probabilities = tfidf_logistic_oof(words, label_ids, n_classes=n_classes, splits=splits,
                                               regularization=regularization)
        elif name == "frozen-lr":
            probabilities = logistic_oof(embeddings, label_ids, n_classes=n_classes, splits=splits,
                                         regularization=regularization)
        elif name == "frozen-svm":
            if len(label_ids) > svm_max_rows:
                continue
            probabilities = svm_oof(embeddings, label_ids, n_classes=n_classes, splits=splits, seed=seed)
            if probabilities is None:
                continue
        elif name == "neighbors":
            probabilities = neighbor_vote(neighbor_indices, neighbor_similarities, label_ids, n_classes=n_classes)
        else:  # tfidf-nb
            if words is None:
                continue
            from sklearn.naive_bayes import ComplementNB

            probabilities = _fit_predict(lambda: ComplementNB(alpha=0.3), words, label_ids, n_classes, splits)
        out.append(Candidate(name, probabilities, round(time.perf_counter() - mark, 2)))
    return out


def _pool(logs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Log-linear pool: softmax over classes of the weighted sum of the members' log-probabilities."""
    scores = logs @ weights
    scores -= scores.max(axis=1, keepdims=True)
    pooled = np.exp(scores)
    return pooled / pooled.sum(axis=1, keepdims=True)


def _fit_pool_weights(logs: np.ndarray, label_ids: np.ndarray) -> np.ndarray:
    """Non-negative weights minimising the log-loss of the pool on the given labels (a convex problem)."""
    from scipy.optimize import minimize

    rows = np.arange(len(label_ids))
    given = logs[rows, label_ids]  # (n, members)

    def objective(weights: np.ndarray) -> tuple[float, np.ndarray]:
        scores = logs @ weights
        scores -= scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores).sum(axis=1))
        pooled = np.exp(scores - log_norm[:, None])
        loss = float(np.mean(log_norm - scores[rows, label_ids]))
        gradient = (np.einsum("nk,nkm->nm", pooled, logs) - given).mean(axis=0)
        return loss, gradient

    members = logs.shape[2]
    fitted = minimize(objective, np.full(members, 1.0 / members), jac=True, method="L-BFGS-B",
                      bounds=[(0.0, None)] * members)
    return fitted.x


def stack_estimates(candidates: list[Candidate], label_ids: np.ndarray, *,
                    splits: list[tuple[np.ndarray, np.ndarray]], fitted_share: float = FITTED_SHARE
                    ) -> tuple[np.ndarray, dict]:
    """Combine candidate estimates by how well each predicts the given labels out of fold.

    The combination is a log-linear pool, ``p ∝ exp(Σ_m w_m log p_m)`` with ``w_m >= 0`` fitted by minimising the
    log-loss of the given labels; a weight of 0 drops a member, and the size of the weights also calibrates the
    pool (sharper or softer than its members). The weights used for the items of each fold are fitted on the
    other folds only (nested), so no item's own label sets the weights it is scored with.

    The pool is then averaged with the plain mean of the members (``fitted_share`` of the pool): the weights are
    fitted to the given labels, errors included, and lean on the members that agree with them; the plain mean keeps
    every member's vote. On the label-noise benchmark the mix finds random flips better than either half alone and
    confusable errors a little less well than the pool alone (docs/cleaning.md, ``bench/label_noise.py``).

    Returns
    -------
    (probabilities, report) : tuple
        Probabilities of shape (n, n_classes); and a dict with ``weights`` (share of each member, fitted on all
        items, summing to 1), ``sharpness`` (sum of the raw weights), ``members`` (out-of-fold log-loss,
        accuracy and seconds of each member), ``fitted_share``, ``pool_log_loss`` (the nested pool's),
        ``log_loss`` and ``accuracy`` of the final estimate, and ``choice`` (a one-line description).
    """
    if not 0 <= fitted_share <= 1:
        raise ConfigError(f"fitted_share must be in [0, 1]; got {fitted_share}. Pass e.g. 0.5 (half the fitted pool)")
    rows = np.arange(len(label_ids))

    def quality(probabilities: np.ndarray) -> tuple[float, float]:
        given = np.clip(probabilities[rows, label_ids], 1e-12, 1.0)
        return round(float(-np.log(given).mean()), 4), round(float((probabilities.argmax(1) == label_ids).mean()), 4)

    members = {}
    for candidate in candidates:
        log_loss, accuracy = quality(candidate.probabilities)
        members[candidate.name] = {"log_loss": log_loss, "accuracy": accuracy, "seconds": candidate.seconds}
    if len(candidates) == 1:
        only = candidates[0]
        report = {"weights": {only.name: 1.0}, "sharpness": 1.0, "members": members,
                  "log_loss": members[only.name]["log_loss"], "accuracy": members[only.name]["accuracy"],
                  "choice": f"{only.name} alone"}
        return only.probabilities, report
    logs = np.stack([np.log(np.clip(c.probabilities, 1e-6, 1.0)) for c in candidates], axis=-1)
    pooled = np.zeros(logs.shape[:2])
    for train_rows, held_rows in splits:
        pooled[held_rows] = _pool(logs[held_rows], _fit_pool_weights(logs[train_rows], label_ids[train_rows]))
    pool_log_loss, _ = quality(pooled)
    pooled = fitted_share * pooled + (1 - fitted_share) * np.mean([c.probabilities for c in candidates], axis=0)
    weights = _fit_pool_weights(logs, label_ids)
    total = float(weights.sum())
    shares = weights / total if total > 0 else np.full(len(weights), 1.0 / len(weights))
    names = [c.name for c in candidates]
    log_loss, accuracy = quality(pooled)
    ranked = sorted(zip(names, shares, strict=True), key=lambda pair: -pair[1])
    kept = [f"{name} {share:.2f}" for name, share in ranked if share >= 0.005]
    report = {"weights": {name: round(float(share), 4) for name, share in zip(names, shares, strict=True)},
              "sharpness": round(total, 4), "fitted_share": fitted_share, "pool_log_loss": pool_log_loss,
              "members": members, "log_loss": log_loss, "accuracy": accuracy,
              "choice": (f"{ranked[0][0]} alone" if len(kept) == 1 else "stacked: " + ", ".join(kept))
              + f", averaged with the plain mean of all {len(names)} ({fitted_share:.0%} pool)"}
    return pooled, report


def fine_tune_oof(texts: list[str], labels: list[str], classes: list[str], *, backbone: str,
                  splits: list[tuple[np.ndarray, np.ndarray]], settings: dict, seed: int) -> np.ndarray:
    """Out-of-fold probabilities of a classifier fine-tuned from ``backbone`` in every fold."""
    from textshift.model import Classifier
    from textshift.training import TrainConfig, train

    config = TrainConfig(**{"seed": seed, "val_fraction": 0.0} | dict(settings))
    probabilities = np.zeros((len(texts), len(classes)))
    for fold, (train_rows, held_rows) in enumerate(splits, 1):
        logger.info("fine-tuning fold %d of %d", fold, len(splits))
        classifier = Classifier.from_backbone(backbone, labels=classes, seed=seed + fold)
        train(classifier, [texts[i] for i in train_rows], [labels[i] for i in train_rows], config=config)
        probabilities[held_rows] = classifier.predict_proba([texts[i] for i in held_rows],
                                                            max_length=config.max_length)
    return probabilities


# ---------------------------------------------------------------------------------------------- main entry
