"""Compact token storage for training: the same ids and batches as the tokenizer's own lists and padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textshift.data import read_labeled
from textshift.tokens import TokenizedTexts, pad_batch, pad_id_of


@pytest.fixture(scope="module")
def tokenizer(tiny_backbone):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_backbone)


@pytest.mark.parametrize("memmap_rows", [10_000, 50], ids=["in-memory", "memory-mapped"])
def test_ids_equal_the_tokenizers(tokenizer, memmap_rows):
    texts = read_labeled("embedded:bills").texts[:300] + [""]
    tokens = TokenizedTexts.build(tokenizer, texts, max_length=24, chunk_rows=64, memmap_rows=memmap_rows)
    expected = tokenizer(texts, truncation=True, max_length=24)["input_ids"]
    assert len(tokens) == len(texts)
    assert [tokens[i].tolist() for i in range(len(texts))] == expected
    assert tokens.lengths.tolist() == [len(row) for row in expected]
    assert isinstance(tokens.ids, np.memmap) == (memmap_rows < len(texts))


def test_memory_mapped_file_is_removed_with_the_object(tokenizer):
    tokens = TokenizedTexts.build(tokenizer, ["a bill to amend title 10"] * 30, max_length=16, memmap_rows=10)
    folder = tokens.folder
    assert (folder / "ids.int32").stat().st_size == tokens.offsets[-1] * 4
    del tokens
    import gc

    gc.collect()
    assert not folder.exists()


def test_pad_batch_matches_tokenizer_pad(tokenizer):
    texts = ["defense appropriations act of 2001", "medicare", "a bill to provide for school lunch programs"]
    rows = [np.asarray(ids, dtype=np.int32) for ids in tokenizer(texts)["input_ids"]]
    ours = pad_batch(rows, pad_id=pad_id_of(tokenizer))
    theirs = tokenizer.pad({"input_ids": [r.tolist() for r in rows]}, return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])
    left = pad_batch(rows, pad_id=0, padding_side="left")
    assert left["input_ids"][1, -1].item() == rows[1][-1] and left["attention_mask"][1, 0].item() == 0
