"""textshift.shift: the domain-shift diagnostics between a source and a target."""

from __future__ import annotations

import math

import pytest

from textshift.data import TextData
from textshift.model import Classifier
from textshift.shift import domain_shift, fertility, proxy_a_distance, vocabulary_overlap, zero_shot_recall

SOURCE = [f"army troops missile base {i}" for i in range(20)] + [f"hospital patients drug {i}" for i in range(20)]
TARGET = [f"bank loans credit interest {i}" for i in range(20)] + [f"hospital nurses clinic {i}" for i in range(20)]


def test_vocabulary_overlap_counts_word_types_and_tokens():
    overlap = vocabulary_overlap(["the army base", "army troops"], ["the army", "new clinic clinic"])
    assert overlap["source_types"] == 4 and overlap["target_types"] == 4  # "the", "army", "new", "clinic"
    assert overlap["type_overlap"] == 0.5
    assert overlap["oov_token_rate"] == 0.6  # new, clinic, clinic of 5 tokens


def test_proxy_a_distance_separates_disjoint_vocabularies_and_not_one_domain():
    assert proxy_a_distance(SOURCE, TARGET) > 1.5
    assert proxy_a_distance(SOURCE, SOURCE) < 0.5
    assert math.isnan(proxy_a_distance(SOURCE[:9], TARGET))  # too few rows to cross-validate


@pytest.fixture(scope="module")
def source(tiny_backbone):
    return Classifier.from_backbone(tiny_backbone, labels=["Defense", "Health"], seed=0)


def test_fertility_is_word_pieces_per_word(source):
    texts = ["army troops", "hospital"]
    pieces = sum(len(source.tokenizer.tokenize(t)) for t in texts)
    assert fertility(source.tokenizer, texts) == round(pieces / 3, 3)
    assert fertility(source.tokenizer, texts, limit=1) == round(len(source.tokenizer.tokenize(texts[0])) / 2, 3)


def test_zero_shot_recall_covers_only_shared_classes_and_is_a_recall(source):
    test = TextData.from_lists(["army", "drug", "drug", "bank"], ["Defense", "Health", "Health", "Finance"])
    recall = zero_shot_recall(source, test)
    assert set(recall) == {"Defense", "Health"}
    predicted = source.predict(["army", "drug", "drug"])
    assert recall["Health"] == round(sum(p == "Health" for p in predicted[1:]) / 2, 4)
    assert list(recall.values()) == sorted(recall.values(), reverse=True)
    assert zero_shot_recall(source, TextData.from_lists(["bank"], ["Finance"])) == {}


def test_domain_shift_skips_source_text_measures_without_source_data(source):
    target = TextData.from_lists(TARGET, ["Finance"] * 20 + ["Health"] * 20)
    result = domain_shift(None, target, target, source)
    assert result["classes_only_in_source"] == ["Defense"] and result["classes_only_in_target"] == ["Finance"]
    assert "proxy_a_distance" not in result and "type_overlap" not in result
    with_source = domain_shift(TextData.from_lists(SOURCE, ["Defense"] * 20 + ["Health"] * 20), target, target,
                               source)
    assert with_source["proxy_a_distance"] > 1.5 and 0 < with_source["type_overlap"] < 1
