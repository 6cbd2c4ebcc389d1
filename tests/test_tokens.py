"""Compact token storage and batching for training: the same ids and batches as the tokenizer's own lists and
padding, and length-grouped batches that shard evenly across processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textshift.data import read_labeled
from textshift.tokens import LengthGroupedBatches, TokenizedTexts, pad_batch, pad_id_of


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


def test_sampler_shards_cover_every_batch_once_per_round():
    lengths = np.random.default_rng(0).integers(3, 40, size=103)  # 103 rows: one short batch, somewhere
    whole = LengthGroupedBatches(lengths, 4, seed=1, window=3)
    order = whole.epoch_batches(0)
    assert list(whole) == order and sum(len(b) for b in order) == 103
    shards = [list(LengthGroupedBatches(lengths, 4, seed=1, window=3, num_shards=3, shard_index=i)) for i in range(3)]
    assert [len(s) for s in shards] == [9, 9, 9]  # 26 batches in rounds of 3: one repeated to even them out
    interleaved = [shards[i % 3][i // 3] for i in range(27)]
    assert interleaved[:26] == order and interleaved[26] == order[0]


def test_batches_group_similar_lengths_and_change_every_epoch():
    lengths = np.random.default_rng(1).integers(3, 120, size=640)
    sampler = LengthGroupedBatches(lengths, 32, seed=7)
    first, second = list(sampler), list(sampler)
    assert sorted(i for b in first for i in b) == list(range(640))
    assert first != second and first == LengthGroupedBatches(lengths, 32, seed=7).epoch_batches(0)

    def padded(batches):  # tokens after padding each batch to its longest row, per real token
        return sum(len(b) * lengths[b].max() for b in batches) / lengths.sum()

    random_batches = [list(range(i, i + 32)) for i in range(0, 640, 32)]
    assert padded(first) < 1.1 < 1.5 < padded(random_batches)
