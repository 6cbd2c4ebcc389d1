"""Scoring a model on labelled data: accuracy, macro-F1, a per-class table and a confusion matrix.

Computing (:func:`evaluate_predictions`, :func:`evaluate`) is kept apart from drawing
(:func:`plot_confusion`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from textshift.data import TextData
from textshift.errors import ConfigError, DataError, OutputExistsError
from textshift.model import Classifier
from textshift.outputs import CONFUSION_PNG, check_output, is_confusion_png
from textshift.validation import as_list


@dataclass
class EvalReport:
    """Scores of predictions against true labels.

    Attributes
    ----------
    accuracy, macro_f1 : float
        Over all rows; rows whose label the model does not know count as errors.
    per_class : pandas.DataFrame
        Columns ``label, precision, recall, f1, support``; one row per label seen in the data or the model.
    confusion : numpy.ndarray
        Shape (n_labels, n_labels); rows are true labels, columns predicted, in ``labels`` order.
    labels : list of str
    unseen_labels : list of str
        Labels in the data that the model cannot predict.
    rows : int
    """

    accuracy: float
    macro_f1: float
    per_class: pd.DataFrame
    confusion: np.ndarray
    labels: list[str]
    unseen_labels: list[str] = field(default_factory=list)
    rows: int = 0

    def summary(self) -> dict:
        return {"accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4), "rows": self.rows,
                "unseen_labels": self.unseen_labels}

    def most_confused(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` largest off-diagonal cells: ``true, predicted, count``."""
        cells = [(self.labels[i], self.labels[j], int(self.confusion[i, j]))
                 for i in range(len(self.labels)) for j in range(len(self.labels))
                 if i != j and self.confusion[i, j] > 0]
        cells.sort(key=lambda c: -c[2])
        return pd.DataFrame(cells[:n], columns=["true", "predicted", "count"])


def evaluate_predictions(true: list[str], predicted: list[str], *, model_labels: list[str] | None = None
                         ) -> EvalReport:
    """Score predicted labels against true ones (two sequences of the same length)."""
    true, predicted = as_list(true, what="true labels"), as_list(predicted, what="predicted labels")
    if len(true) != len(predicted):
        raise DataError(f"got {len(true)} true labels but {len(predicted)} predicted ones; expected one prediction "
                        "per true label. Pass two lists of the same length")
    model_labels = list(model_labels) if model_labels is not None else sorted(set(predicted))
    unseen = sorted(set(true) - set(model_labels))
    labels = list(model_labels) + unseen
    present = sorted(set(true) | set(predicted), key=labels.index)
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=present,
                                                                     zero_division=0)
    per_class = pd.DataFrame({"label": present, "precision": precision.round(4), "recall": recall.round(4),
                              "f1": f1.round(4), "support": support})
    per_class = per_class.sort_values(["support", "label"], ascending=[False, True]).reset_index(drop=True)
    return EvalReport(
        accuracy=float(accuracy_score(true, predicted)),
        macro_f1=float(f1_score(true, predicted, labels=sorted(set(true)), average="macro", zero_division=0)),
        per_class=per_class,
        confusion=confusion_matrix(true, predicted, labels=labels),
        labels=labels, unseen_labels=unseen, rows=len(true))


def evaluate(classifier: Classifier, data: TextData, *, batch_size: int = 64) -> EvalReport:
    """Predict ``data`` and score against its labels. Macro-F1 averages over the classes present in ``data``."""
    if not isinstance(data, TextData):
        raise DataError(f"expected labelled data as a TextData; got {type(data).__name__}. Use read_labeled(path) "
                        "or TextData.from_lists(texts, labels)")
    max_length = classifier.meta.settings.get("max_length", 128)
    probs = classifier.predict_proba(data.texts, batch_size=batch_size, max_length=max_length)
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    return evaluate_predictions(data.labels, predicted, model_labels=classifier.labels)


def plot_confusion(report: EvalReport, path: str | os.PathLike, *, normalize: bool = True,
                   title: str = "Confusion matrix", overwrite: bool = False) -> Path:
    """Draw the confusion matrix (rows normalised to recall by default) as a PNG; written atomically.

    Parameters
    ----------
    report : EvalReport
    path : str or path-like
        A ``.png`` file in an existing folder (``~`` is expanded).
    normalize : bool
        Divide each row by its total, so the diagonal shows recall.
    title : str
    overwrite : bool
        Replace ``path`` if it exists; otherwise an existing file raises
        :class:`~textshift.errors.OutputExistsError`.

    Returns
    -------
    pathlib.Path
        The written file. A path not ending in ``.png`` or in a missing folder raises
        :class:`~textshift.errors.ConfigError`.
    """
    path = check_png_path(path, overwrite=overwrite)
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    keep = [i for i, label in enumerate(report.labels)
            if report.confusion[i].sum() > 0 or report.confusion[:, i].sum() > 0]
    matrix = report.confusion[np.ix_(keep, keep)].astype(float)
    labels = [report.labels[i] for i in keep]
    if normalize:
        matrix = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    size = max(6.0, 0.38 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f})")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or type(exc).__name__}; expected a folder you can "
                          "write to. Choose another path") from exc
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def check_png_path(path: str | os.PathLike, *, overwrite: bool, option: str = "overwrite=True") -> Path:
    """Check where :func:`plot_confusion` may write: a .png in an existing, writable folder; an existing confusion
    matrix only with ``overwrite`` (``option`` says how the caller's user asks for that), any other existing file
    never. Returns the path, ``~`` expanded."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"expected a .png file path for the confusion matrix; got {path!r:.60}. Pass e.g. "
                          "'confusion.png'")
    png = Path(text).expanduser()
    if png.suffix.lower() != ".png":
        raise ConfigError(f"the confusion matrix is written as PNG, so {png.name} must end in .png; got "
                          f"'{png.suffix or 'no extension'}'. Pass a path ending in .png")
    if png.is_dir():
        raise OutputExistsError(f"{png} is a folder; expected a .png file path. Choose another path")
    if png.exists() and not overwrite and is_confusion_png(png):
        raise OutputExistsError(f"{png} already exists; expected a new file. Pass {option} to replace it, or "
                                "choose another path")
    if not png.parent.is_dir():
        raise ConfigError(f"cannot write {png}: the folder {png.parent} does not exist; expected an existing "
                          "folder. Create it first or choose another path")
    return check_output(png, CONFUSION_PNG, overwrite=overwrite, option="--confusion")
