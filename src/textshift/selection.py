"""Choosing the recommended strategy from the sample alone, and asking for evidence before choosing transfer.

``compare`` scores every candidate strategy on rows of each labelled sample that it did not train on (the test
rows are never looked at) and recommends one. With the default ``probe`` selection every row of the sample is
held out once (4 folds; only the head is trained, on frozen features of the other folds); with ``holdout`` a
stratified quarter of the sample is held out and each candidate is fully trained on the rest.

"Highest score wins" on a quarter of a small sample recommended a useless source: with a news model trained on
shuffled labels and 100 bills, ``finetune`` scored 0.069 and ``scratch`` 0.058 on the 25 held-out rows, both
about chance for 20 classes, and ``finetune`` was chosen, 0.046 macro-F1 below ``scratch`` on the test bills
(``bench/selection_check.py``). So a strategy other than ``scratch`` is recommended only when it beats
``scratch`` clearly: in at least ``LEVEL`` of ``RESAMPLES`` bootstrap resamples of the held-out rows (each
resample scores both strategies' predictions of the same rows: the comparison is paired). Otherwise
``scratch``, the model that does not depend on the source, is recommended, and the reason is stored with the
choice. Without ``scratch`` among the candidates, the highest score wins.

>>> import numpy as np
>>> truth = ["a", "b"] * 10
>>> share_better(truth, truth, ["a"] * 20, seed=0) > 0.99   # always right against always "a"
True
"""

from __future__ import annotations

import time

import numpy as np

from textshift.data import TextData
from textshift.errors import DataError
from textshift.model import Classifier, labels_from

RULE = "evidence-v1"  # stored with each recommendation: a change of rule recomputes stored choices
RESAMPLES = 1000
LEVEL = 0.9
FOLDS = 4
REFERENCE = "scratch"


def share_better(truth: list[str], candidate: list[str], reference: list[str], *, seed: int,
                 resamples: int = RESAMPLES) -> float:
    """Share of bootstrap resamples of the rows in which ``candidate``'s macro-F1 beats ``reference``'s.

    Macro-F1 of a resample averages the F1 of the classes present in its true labels. Ties count as not better.
    """
    if not truth:
        return 0.0
    classes = {label: i for i, label in enumerate(sorted(set(truth) | set(candidate) | set(reference)))}
    t = np.array([classes[label] for label in truth])
    rows = np.random.default_rng(seed).integers(0, len(t), size=(resamples, len(t)))
    scores = [_macro_f1(t[rows], np.array([classes[label] for label in predicted])[rows], len(classes))
              for predicted in (candidate, reference)]
    return float(np.mean(scores[0] > scores[1]))


def _macro_f1(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of every row of ``true``/``predicted`` (resamples × rows of class ids), over each row's true
    classes."""
    resamples = true.shape[0]
    offsets = np.arange(resamples)[:, None] * n_classes

    def counts(ids: np.ndarray) -> np.ndarray:
        return np.bincount(ids.ravel(), minlength=resamples * n_classes).reshape(resamples, n_classes)

    hits = counts((offsets + true)[true == predicted])
    in_truth, in_predicted = counts(offsets + true), counts(offsets + predicted)
    f1 = 2 * hits / np.maximum(in_truth + in_predicted, 1)
    present = in_truth > 0
    return (f1 * present).sum(axis=1) / present.sum(axis=1)


def pick(candidates: list[str], scores: dict[str, float], predictions: dict[str, list[str]], truth: list[str], *,
         seed: int) -> tuple[str, dict]:
    """The recommended candidate and why: ``(choice, {"rule", "best", "share_better", "held_out_rows"})``.

    The highest score wins (ties go to the earlier candidate), except that a candidate other than ``scratch``
    must beat ``scratch`` in at least ``LEVEL`` of the bootstrap resamples of the held-out rows.
    """
    best = max(candidates, key=lambda c: (scores[c], -candidates.index(c)))
    reason = {"rule": RULE, "best": best, "held_out_rows": len(truth)}
    if best == REFERENCE or REFERENCE not in candidates:
        return best, reason
    share = share_better(truth, predictions[best], predictions[REFERENCE], seed=seed)
    reason["share_better"] = round(share, 3)
    return (best if share >= LEVEL else REFERENCE), reason


def describe(reason: dict, chosen: str) -> str:
    """One sentence on a choice that the evidence rule changed (empty when it did not)."""
    if chosen == reason.get("best"):
        return ""
    return (f"'{reason['best']}' scored highest on the {reason['held_out_rows']} held-out rows but beat "
            f"'{chosen}' in only {reason['share_better']:.0%} of {RESAMPLES:,} resamples of them (needed: "
            f"{LEVEL:.0%}), so '{chosen}', which does not depend on the source, is recommended")


def probe(candidate: str, sample: TextData, seed: int, train, source: Classifier, *, folds: int = FOLDS
          ) -> tuple[list[str], float]:
    """Every row of ``sample`` predicted by the candidate's starting model with only its head trained, on frozen
    features of the other folds' rows: ``(predicted labels, seconds)``.

    The encoder is not trained, so the features are computed once; each fold then prepares the starting model
    from its own training rows (new classes' head rows start from their mean feature there, never from the
    held-out rows) and trains the head alone. A class missing from a fold's training rows cannot be predicted
    for its held-out rows, for every candidate alike.
    """
    from textshift.model import head_linear
    from textshift.training import stratified_folds, warm_up_head
    from textshift.transfer import TransferConfig, prepare_model

    started = time.perf_counter()
    # adapt and joint start from the fine-tuned source's head; their probe is finetune's.
    config = TransferConfig(strategy="finetune" if candidate in ("adapt", "joint") else candidate, train=train)
    class_ids = np.unique(sample.labels, return_inverse=True)[1]
    features = None  # the same for every fold: the starting models differ only in their heads
    predicted = [""] * len(sample)
    for fit_rows, held_rows in stratified_folds(class_ids, folds, seed):
        fit = sample.subset(fit_rows)
        try:
            model = prepare_model(source, fit, config)
        except DataError:  # e.g. finetune on a fold without any class the source knows: it cannot predict these
            continue  # rows (left "", counted wrong)
        if features is None:
            features = model.features(sample.texts, max_length=train.max_length)
        label_ids = np.array([model.label2id[label] for label in fit.labels])
        warm_up_head(model, features[fit_rows], label_ids, epochs=max(train.warmup_epochs, 10),
                     learning_rate=train.head_learning_rate, batch_size=train.batch_size, seed=seed)
        linear = head_linear(model.model)
        weight = linear.weight.detach().cpu().float().numpy()
        bias = linear.bias.detach().cpu().float().numpy() if linear.bias is not None else 0.0
        for row, label in zip(held_rows, labels_from(features[held_rows] @ weight.T + bias, model.labels),
                              strict=True):
            predicted[row] = label
    return predicted, time.perf_counter() - started
