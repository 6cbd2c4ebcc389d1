"""textshift.memory: the rehearsal memory a grown model keeps of its earlier classes."""

from __future__ import annotations

import pandas as pd
import pytest

from textshift.data import TextData
from textshift.errors import DataError
from textshift.memory import MEMORY_FILE, Memory, RehearsalMemoryError, attach_memory, read_memory, save_with_memory
from textshift.model import Classifier


def test_memory_refuses_texts_and_labels_of_different_lengths():
    with pytest.raises(DataError, match="got 3 texts but 1 labels"):
        Memory(["a", "b", "c"], ["Health"])
    with pytest.raises(DataError, match="got 2 texts but 1 labels"):
        Memory().updated(["a", "b"], ["Health"], per_class=5)
    with pytest.raises(DataError, match="expected a list of texts, got one string"):
        Memory("abc", ["x", "y", "z"])


def test_memory_keeps_matching_rows():
    memory = Memory(("a", "b"), pd.Series(["Health", "Defense"]))
    assert memory.texts == ["a", "b"] and memory.labels == ["Health", "Defense"]


def test_memory_is_class_balanced_seeded_and_topped_up():
    texts = [f"text {i}" for i in range(30)]
    labels = ["a"] * 25 + ["b"] * 5
    memory = Memory.sample(texts, labels, per_class=4, seed=3)
    assert memory.counts() == {"a": 4, "b": 4}
    assert memory == Memory.sample(texts, labels, per_class=4, seed=3)
    grown = memory.updated(["new 1", "new 2", "text 0"], ["c", "c", "a"], per_class=4)
    assert grown.counts() == {"a": 4, "b": 4, "c": 2}
    assert grown.texts[:8] == memory.texts  # remembered rows are kept
    assert Memory.from_bytes(grown.to_bytes()) == grown
    assert grown.updated([], [], per_class=1).counts() == {"a": 1, "b": 1, "c": 1}


def test_from_bytes_names_the_first_line_that_is_not_a_row():
    payload = b'{"text": "war", "label": "Defense"}\n\n{"text": "drug"}\n'
    with pytest.raises(RehearsalMemoryError, match=r"memory.jsonl line 3 is not a .*\(KeyError\)"):
        Memory.from_bytes(payload)
    with pytest.raises(RehearsalMemoryError, match=r"m.jsonl line 1 .*\(JSONDecodeError\)"):
        Memory.from_bytes(b"not json\n", source="m.jsonl")
    assert Memory.from_bytes(b'\n{"text": "war", "label": 3}\n') == Memory(["war"], ["3"])


def test_save_with_memory_writes_the_memory_and_leaves_the_classifier_unchanged(tiny_backbone, tmp_path):
    classifier = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=0)
    memory = Memory(["war", "army", "drug"], ["Defense", "Defense", "Health"])
    folder = save_with_memory(classifier, tmp_path / "m", memory)
    assert read_memory(folder) == memory
    assert (folder / MEMORY_FILE).read_bytes() == memory.to_bytes()
    assert "memory" not in classifier.meta.extra  # only the saved textshift.json records it
    plain = save_with_memory(classifier, tmp_path / "plain", Memory())
    assert read_memory(plain) is None and not (plain / MEMORY_FILE).exists()


def test_attach_memory_keeps_only_the_models_classes(tiny_backbone, tmp_path):
    folder = Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=0).save(tmp_path / "m")
    data = TextData.from_lists(["war", "army", "drug", "oil"], ["Defense", "Defense", "Health", "Energy"])
    memory = attach_memory(folder, data, per_class=1, seed=0)
    assert memory.counts() == {"Defense": 1, "Health": 1}
    assert read_memory(folder) == memory
    with pytest.raises(DataError, match="no rows of the model's classes"):
        attach_memory(folder, TextData.from_lists(["oil"], ["Energy"]))
