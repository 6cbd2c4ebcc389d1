"""The rehearsal memory: a small class-balanced sample of a model's training examples, kept in its folder.

``textshift train`` writes one (``--memory-per-class``) and :func:`textshift.grow.grow` rehearses it and updates
it for the next step. It is ``memory.jsonl`` (one ``{"text": ..., "label": ...}`` object per line) next to the
model; its sha256, row count and size per class are recorded in ``textshift.json`` (``extra.memory``), so a file
that was edited by hand or lost is reported instead of being used. Model and memory are saved in one atomic swap.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textshift.data import TextData
from textshift.errors import DataError, ModelError
from textshift.model import (
    META_FILE,
    Classifier,
    output_folder_path,
    prepare_output_dir,
    read_recorded_file,
    recorded_extra,
)
from textshift.validation import as_str_list

MEMORY_FILE = "memory.jsonl"
DEFAULT_MEMORY_PER_CLASS = 20


class RehearsalMemoryError(ModelError):
    """A model folder's rehearsal memory is missing, edited by hand or unreadable."""


@dataclass
class Memory:
    """A class-balanced sample of training examples, kept with the model for rehearsal.

    Attributes
    ----------
    texts, labels : list of str
        The remembered rows, grouped by class in first-seen order; one label per text (lists of different
        lengths raise :class:`~textshift.errors.DataError`).
    """

    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.texts, self.labels = _pairs(self.texts, self.labels)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        return list(dict.fromkeys(self.labels))

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.labels))

    @classmethod
    def sample(cls, texts: list[str], labels: list[str], *, per_class: int, seed: int = 42) -> Memory:
        """At most ``per_class`` rows of each class, drawn at random (seeded), classes in first-seen order."""
        return cls().updated(texts, labels, per_class=per_class, seed=seed)

    def updated(self, texts: list[str], labels: list[str], *, per_class: int, seed: int = 42) -> Memory:
        """A new memory: this one's rows, topped up to ``per_class`` per class from ``texts``/``labels``.

        Remembered rows are kept (up to ``per_class``); classes seen for the first time get a seeded random
        sample. Duplicated texts of a class are remembered once.
        """
        texts, labels = _pairs(texts, labels)
        rng = np.random.default_rng(seed)
        kept: dict[str, list[str]] = {}
        for text, label in zip(self.texts, self.labels, strict=True):
            rows = kept.setdefault(label, [])
            if len(rows) < per_class and text not in rows:
                rows.append(text)
        by_class: dict[str, list[str]] = {}
        for text, label in zip(texts, labels, strict=True):
            by_class.setdefault(label, []).append(text)
        for label, candidates in by_class.items():
            rows = kept.setdefault(label, [])
            missing = per_class - len(rows)
            if missing <= 0:
                continue
            seen = set(rows)
            pool = list(dict.fromkeys(t for t in candidates if t not in seen))
            order = rng.permutation(len(pool))[:missing]
            rows.extend(pool[i] for i in sorted(order))
        out = type(self)()
        for label, rows in kept.items():
            out.texts.extend(rows)
            out.labels.extend([label] * len(rows))
        return out

    def to_bytes(self) -> bytes:
        """JSON Lines, one ``{"text", "label"}`` object per row (the ``memory.jsonl`` format)."""
        return "".join(json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n"
                       for t, lab in zip(self.texts, self.labels, strict=True)).encode("utf-8")

    @classmethod
    def from_bytes(cls, payload: bytes, *, source: str = MEMORY_FILE) -> Memory:
        memory = cls()
        for number, line in enumerate(payload.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, label = row["text"], row["label"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise RehearsalMemoryError(f"{source} line {number} is not a {{\"text\", \"label\"}} JSON object "
                                           f"({type(exc).__name__}); expected the file textshift wrote") from exc
            memory.texts.append(str(text))
            memory.labels.append(str(label))
        return memory


def _pairs(texts, labels) -> tuple[list[str], list[str]]:
    """Texts and labels as lists of strings of the same length (a DataError otherwise)."""
    texts, labels = as_str_list(texts, what="texts"), as_str_list(labels, what="labels")
    if len(texts) != len(labels):
        raise DataError(f"got {len(texts)} texts but {len(labels)} labels; expected one label per text. Pass two "
                        "lists of the same length")
    return texts, labels


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def read_memory(folder: str | os.PathLike) -> Memory | None:
    """The rehearsal memory of a model folder, checked against the sha256 in ``textshift.json``.

    Returns None when the model has no memory (for example a model trained elsewhere, or by
    ``textshift train --memory-per-class 0``).
    Raises :class:`RehearsalMemoryError` when the recorded memory file is missing or was edited, or when a memory
    file is present that ``textshift.json`` does not record.
    """
    folder = Path(folder)
    record = recorded_extra(folder, "memory")
    path = folder / (record.get("file", MEMORY_FILE) if record else MEMORY_FILE)
    rebuild = "Restore the folder from a backup, or pass --old-data OLD_TRAINING_DATA --rebuild-memory"
    payload = read_recorded_file(
        path, record, error=RehearsalMemoryError,
        stray=f"{path} exists but {META_FILE} records no rehearsal memory; expected a memory written by textshift "
              f"with its sha256. {rebuild}",
        missing=f"the rehearsal memory {path} is missing ({META_FILE} records {(record or {}).get('rows')} rows); "
                f"expected the file textshift wrote. {rebuild}",
        changed=lambda sha256: f"the rehearsal memory {path} was changed after textshift wrote it (sha256 "
                               f"{sha256[:12]}… instead of {str(record.get('sha256'))[:12]}…); expected the file as "
                               f"saved. {rebuild}")
    return Memory.from_bytes(payload, source=str(path)) if payload is not None else None


def save_with_memory(classifier: Classifier, folder: str | os.PathLike, memory: Memory | None, *,
                     overwrite: bool = False, per_class: int | None = None, stats=None) -> Path:
    """Save ``classifier`` and its memory into ``folder`` as one atomic swap.

    The model and ``memory.jsonl`` are written to a temporary sibling folder which then replaces ``folder``, so
    a crash never leaves a model whose memory does not match its ``textshift.json``. ``memory=None`` (or an empty
    memory) saves the model without one. ``stats`` (a :class:`~textshift.stats_head.FeatureStats` of the
    classifier's current encoder and classes) are saved in the same swap as ``feature_stats.safetensors``.
    """
    target = output_folder_path(folder)
    prepare_output_dir(target, overwrite=overwrite)
    payload = memory.to_bytes() if memory else b""
    # The record lives only in the saved textshift.json: a later plain save() of this classifier must not claim
    # a memory file it does not write.
    previous = {key: classifier.meta.extra.pop(key, None) for key in ("memory", "stats")}
    extra_files = {}
    if memory:
        counts = memory.counts()
        classifier.meta.extra["memory"] = {
            "file": MEMORY_FILE, "sha256": _sha256(payload), "rows": len(memory), "classes": len(counts),
            "per_class": per_class if per_class is not None else max(counts.values())}
        extra_files[MEMORY_FILE] = payload
    if stats is not None:
        from textshift.stats_head import STATS_FILE, check_stats

        check_stats(stats, classifier)
        stats_payload = stats.to_bytes()
        classifier.meta.extra["stats"] = stats.record(stats_payload)
        extra_files[STATS_FILE] = stats_payload
    try:
        return classifier.save(target, overwrite=overwrite, extra_files=extra_files or None)
    finally:
        for key, value in previous.items():
            classifier.meta.extra.pop(key, None)
            if value is not None:
                classifier.meta.extra[key] = value


def attach_memory(folder: str | os.PathLike, data: TextData, *, per_class: int = DEFAULT_MEMORY_PER_CLASS,
                  seed: int = 42) -> Memory:
    """Give an existing model folder (e.g. one trained elsewhere) a memory sampled from its training data.

    Only rows of the model's classes are remembered. The folder is rewritten atomically.
    """
    classifier = Classifier.load(folder)
    known = set(classifier.labels)
    pairs = [(t, lab) for t, lab in zip(data.texts, data.labels, strict=True) if lab in known]
    if not pairs:
        raise DataError(f"{data.fingerprint.path} has no rows of the model's classes ({', '.join(sorted(known)[:5])}"
                        "…); expected the data the model was trained on")
    memory = Memory.sample([t for t, _ in pairs], [lab for _, lab in pairs], per_class=per_class, seed=seed)
    save_with_memory(classifier, folder, memory, per_class=per_class)
    return memory
