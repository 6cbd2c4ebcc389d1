"""Class statistics of a classifier's feature vectors, and the linear head they define (streaming LDA).

For every class the model keeps the mean of its feature vectors (the head's input, :meth:`Classifier.features`)
and the row count, plus one within-class scatter matrix shared by all classes. These are exact for however many
rows a class had, a few kilobytes a class, and can be updated exactly when rows or classes are added
(:meth:`FeatureStats.merged`). They define linear discriminant analysis::

    Sigma = shrink(scatter / (rows - classes))
    W_c   = Sigma^-1 mu_c
    b_c   = -1/2 mu_c' Sigma^-1 mu_c          (equal class priors: macro-F1 counts every class the same)

which is a linear layer, so it is folded into the model's own head (:func:`fold_into_head`): the folder still
loads in ``transformers.pipeline`` and predicts at the speed of any model of its size.

Statistics are only valid for the encoder weights they were computed with. They are saved as
``feature_stats.safetensors`` next to the model with a sha256 fingerprint of those weights (the head excluded,
since folding rewrites it) and their own sha256 in ``textshift.json`` (``extra.stats``);
:func:`read_stats` refuses a file that does not match its model with a one-line error.

Example
-------
>>> import numpy as np
>>> from textshift.stats_head import FeatureStats
>>> rng = np.random.default_rng(0)
>>> first = FeatureStats.from_features(rng.normal(size=(40, 8)), ["a"] * 20 + ["b"] * 20, encoder="x")
>>> both = first.merged(FeatureStats.from_features(rng.normal(size=(10, 8)) + 3, ["c"] * 10, encoder="x"))
>>> both.classes, both.counts.tolist()
(['a', 'b', 'c'], [20, 20, 10])
>>> weight, bias = both.linear_head(["a", "b", "c"], shrinkage=0.1)
>>> weight.shape, bias.shape
((3, 8), (3,))
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from textshift.errors import ModelError
from textshift.model import META_FILE, Classifier, head_linear, read_recorded_file, recorded_extra

STATS_FILE = "feature_stats.safetensors"
STATS_FORMAT = 1


class FeatureStatsError(ModelError):
    """A model folder's feature statistics are missing, edited, or belong to other encoder weights or classes."""


def encoder_fingerprint(classifier: Classifier) -> str:
    """sha256 of every weight of the model except its final head layer (what the feature vectors depend on)."""
    head = head_linear(classifier.model)
    skip = {id(head.weight)} | ({id(head.bias)} if head.bias is not None else set())
    digest = hashlib.sha256()
    for name, tensor in sorted(classifier.model.state_dict(keep_vars=True).items()):
        if id(tensor) in skip:
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@dataclass
class FeatureStats:
    """Per-class means and counts, and a shared within-class scatter, of feature vectors.

    Attributes
    ----------
    classes : list of str
        One entry per class, in the order they were added.
    counts : ndarray of int64, shape (n_classes,)
    means : ndarray of float64, shape (n_classes, dim)
    scatter : ndarray of float64, shape (dim, dim)
        Sum over rows of (x - mean of its class)(x - mean of its class)'.
    encoder : str
        :func:`encoder_fingerprint` of the weights the features came from.
    """

    classes: list[str]
    counts: np.ndarray
    means: np.ndarray
    scatter: np.ndarray
    encoder: str

    @classmethod
    def from_features(cls, features: np.ndarray, labels: list[str], *, encoder: str) -> FeatureStats:
        """Statistics of ``features`` (shape (n, dim)) grouped by ``labels``; classes in first-seen order."""
        features = np.asarray(features, dtype=np.float64)
        labels_array = np.asarray(labels)
        if features.ndim != 2 or len(features) != len(labels_array) or not len(features):
            raise ValueError(f"expected features of shape (n, dim) with one label per row and n > 0; got "
                             f"{features.shape} and {len(labels_array)} labels")
        classes = list(dict.fromkeys(labels_array.tolist()))
        counts, means = [], []
        scatter = np.zeros((features.shape[1], features.shape[1]))
        for label in classes:
            rows = features[labels_array == label]
            mean = rows.mean(axis=0)
            centred = rows - mean
            scatter += centred.T @ centred
            counts.append(len(rows))
            means.append(mean)
        return cls(classes=classes, counts=np.asarray(counts, dtype=np.int64), means=np.stack(means),
                   scatter=scatter, encoder=encoder)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def merged(self, other: FeatureStats) -> FeatureStats:
        """These statistics and ``other``'s together, exactly as if computed from all rows at once.

        A class in both is pooled (its mean weighted by counts, the scatter gains the between-part term);
        new classes are appended in ``other``'s order. Both must come from the same encoder weights.
        """
        if other.encoder != self.encoder or other.dim != self.dim:
            raise FeatureStatsError(f"cannot merge statistics of different encoder weights ({self.encoder[:12]}… "
                                    f"and {other.encoder[:12]}…); expected features of the same model. Recompute "
                                    "them with the current model")
        classes, counts = list(self.classes), list(self.counts)
        means, scatter = list(self.means), self.scatter + other.scatter
        index = {label: i for i, label in enumerate(classes)}
        for label, count, mean in zip(other.classes, other.counts, other.means, strict=True):
            if label in index:
                i = index[label]
                total = counts[i] + count
                gap = means[i] - mean
                scatter = scatter + np.outer(gap, gap) * (counts[i] * count / total)
                means[i] = (means[i] * counts[i] + mean * count) / total
                counts[i] = total
            else:
                index[label] = len(classes)
                classes.append(label)
                counts.append(int(count))
                means.append(mean)
        return FeatureStats(classes=classes, counts=np.asarray(counts, dtype=np.int64), means=np.stack(means),
                            scatter=scatter, encoder=self.encoder)

    def reordered(self, classes: list[str]) -> FeatureStats:
        """The same statistics with classes in the order of ``classes`` (which must all have statistics)."""
        order = [self.classes.index(label) for label in classes]
        return FeatureStats(classes=list(classes), counts=self.counts[order], means=self.means[order],
                            scatter=self.scatter, encoder=self.encoder)

    def covariance(self, *, shrinkage: float) -> np.ndarray:
        """The shared covariance, shrunk towards its mean variance: (1 - s) Sigma + s tr(Sigma)/dim I."""
        dof = max(int(self.counts.sum()) - len(self.classes), 1)
        sigma = self.scatter / dof
        return (1 - shrinkage) * sigma + shrinkage * np.trace(sigma) / self.dim * np.eye(self.dim)

    def linear_head(self, classes: list[str], *, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
        """LDA weights (n, dim) and biases (n,) for ``classes`` (all must have statistics), equal priors."""
        missing = [label for label in classes if label not in self.classes]
        if missing:
            raise FeatureStatsError(f"no statistics for classes {missing[:5]}; expected statistics of every class "
                                    "of the model. Pass --old-data with examples of them")
        means = self.means[[self.classes.index(label) for label in classes]]
        precision_means = np.linalg.solve(self.covariance(shrinkage=shrinkage), means.T).T
        bias = -0.5 * np.einsum("cd,cd->c", means, precision_means)
        return precision_means, bias

    # -------------------------------------------------------------------------------------------- files
    def to_bytes(self) -> bytes:
        from safetensors.numpy import save

        # One metadata entry: safetensors writes several in no fixed order, and the same statistics must give
        # the same bytes.
        header = json.dumps({"format": STATS_FORMAT, "classes": self.classes, "encoder": self.encoder},
                            ensure_ascii=False, sort_keys=True)
        return save({"counts": self.counts, "means": self.means, "scatter": self.scatter},
                    metadata={"textshift_stats": header})

    @classmethod
    def from_bytes(cls, payload: bytes, *, source: str = STATS_FILE) -> FeatureStats:
        from safetensors.numpy import load

        try:
            tensors = load(payload)
            # load() drops the metadata: read it from the JSON header (8-byte length, then the header)
            header_size = int.from_bytes(payload[:8], "little")
            metadata = json.loads(json.loads(payload[8:8 + header_size])["__metadata__"]["textshift_stats"])
            classes = metadata["classes"]
            stats = cls(classes=[str(c) for c in classes], counts=tensors["counts"].astype(np.int64),
                        means=tensors["means"].astype(np.float64), scatter=tensors["scatter"].astype(np.float64),
                        encoder=metadata["encoder"])
        except Exception as exc:  # noqa: BLE001 - any malformed file is the same error for the user
            raise FeatureStatsError(f"{source} is not a feature-statistics file textshift wrote "
                                    f"({type(exc).__name__}); expected counts, means and scatter tensors. "
                                    "Restore the folder, or pass --old-data OLD_TRAINING_DATA to recompute them"
                                    ) from exc
        n, dim = len(stats.classes), stats.means.shape[-1] if stats.means.ndim == 2 else -1
        if stats.counts.shape != (n,) or stats.means.shape != (n, dim) or stats.scatter.shape != (dim, dim):
            raise FeatureStatsError(f"{source} holds tensors of inconsistent shapes for {n} classes; expected the "
                                    "file textshift wrote. Pass --old-data OLD_TRAINING_DATA to recompute them")
        return stats

    def record(self, payload: bytes) -> dict:
        """The ``extra.stats`` entry of ``textshift.json`` for this payload."""
        return {"file": STATS_FILE, "sha256": hashlib.sha256(payload).hexdigest(), "encoder": self.encoder,
                "classes": len(self.classes), "rows": int(self.counts.sum())}


def compute_stats(classifier: Classifier, texts: list[str], labels: list[str], *, max_length: int | None = None,
                  encoder: str | None = None) -> FeatureStats:
    """Statistics of ``classifier``'s feature vectors of ``texts``, grouped by ``labels`` (one forward pass)."""
    features = classifier.features(texts, max_length=max_length)
    return FeatureStats.from_features(features, labels, encoder=encoder or encoder_fingerprint(classifier))


def fold_into_head(classifier: Classifier, stats: FeatureStats, *, shrinkage: float,
                   classes: list[str] | None = None) -> None:
    """Set the head rows of ``classes`` (default: every class with statistics) to the LDA weights, in place."""
    classes = [label for label in classifier.labels if label in stats.classes] if classes is None else classes
    weight, bias = stats.linear_head(classes, shrinkage=shrinkage)
    linear = head_linear(classifier.model)
    if linear.bias is None:
        raise ModelError(f"the head of {type(classifier.model).__name__} has no bias; expected a linear layer with "
                         "one, which the statistics head needs. Use a BERT/RoBERTa/DistilBERT-style backbone")
    rows = [classifier.label2id[label] for label in classes]
    with torch.no_grad():
        linear.weight[rows] = torch.as_tensor(weight, dtype=linear.weight.dtype, device=linear.weight.device)
        linear.bias[rows] = torch.as_tensor(bias, dtype=linear.bias.dtype, device=linear.bias.device)


def read_stats(folder: str | os.PathLike, classifier: Classifier | None = None) -> FeatureStats | None:
    """The feature statistics of a model folder, checked against ``textshift.json`` and (when given) the model.

    Returns None when the folder records none. Raises :class:`FeatureStatsError` when the recorded file is
    missing or edited, when a file is present that ``textshift.json`` does not record, or when the statistics
    were computed with other encoder weights or for other classes than ``classifier``'s.
    """
    folder = Path(folder)
    record = recorded_extra(folder, "stats")
    path = folder / STATS_FILE
    fix = "Restore the folder, or pass --old-data OLD_TRAINING_DATA to recompute the statistics"
    payload = read_recorded_file(
        path, record, error=FeatureStatsError,
        stray=f"{path} exists but {META_FILE} records no feature statistics; expected statistics written by "
              f"textshift with their sha256. {fix}",
        missing=f"the feature statistics {path} are missing ({META_FILE} records them); expected the file textshift "
                f"wrote. {fix}",
        changed=lambda _sha256: f"the feature statistics {path} were changed after textshift wrote them (sha256 "
                                f"differs from {META_FILE}); expected the file as saved. {fix}")
    if payload is None:
        return None
    stats = FeatureStats.from_bytes(payload, source=str(path))
    if classifier is not None:
        check_stats(stats, classifier, source=str(path))
    return stats


def check_stats(stats: FeatureStats, classifier: Classifier, *, source: str = STATS_FILE,
                fingerprint: str | None = None) -> None:
    """Raise :class:`FeatureStatsError` unless ``stats`` match ``classifier``'s encoder weights and classes."""
    fix = "Pass --old-data OLD_TRAINING_DATA to recompute the statistics with this model"
    fingerprint = fingerprint or encoder_fingerprint(classifier)
    if stats.encoder != fingerprint:
        raise FeatureStatsError(f"{source} was computed with other encoder weights (fingerprint "
                                f"{stats.encoder[:12]}…, the model's is {fingerprint[:12]}…); expected statistics "
                                f"of this model. {fix}")
    if sorted(stats.classes) != sorted(classifier.labels):
        differ = sorted(set(stats.classes) ^ set(classifier.labels))
        raise FeatureStatsError(f"{source} has statistics of {len(stats.classes)} classes but the model has "
                                f"{len(classifier.labels)} ({', '.join(differ[:4])} differ); expected one entry per "
                                f"class of the model. {fix}")
