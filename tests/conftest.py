"""Shared fixtures: a tiny random BERT backbone (built once per session, offline), seeded RNGs, small data."""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(autouse=True)
def _seed():
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    """Folder of a 2-layer, 32-wide random BERT with a WordPiece vocabulary of the embedded data's words."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from textshift.data import read_labeled

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = Counter()
    for name in ("news", "bills"):
        for text in read_labeled(f"embedded:{name}").texts:
            words.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    vocab = SPECIAL + [w for w, _ in words.most_common(1500)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True, model_max_length=128)
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def small_news(tmp_path_factory) -> Path:
    """A CSV of 240 real news headlines from 4 topics, columns text,label."""
    from textshift.data import read_labeled

    news = read_labeled("embedded:news").frame
    topics = ["Defense", "Health", "Law and Crime", "Sports and Recreation"]
    rows = pd.concat([news[news.label == t].head(60) for t in topics])
    path = tmp_path_factory.mktemp("data") / "news_small.csv"
    rows[["text", "label"]].sample(frac=1, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_bills(tmp_path_factory) -> Path:
    """A CSV of 200 real bill titles from the same 4 topics where present, columns text,label,split."""
    from textshift.data import read_labeled

    bills = read_labeled("embedded:bills").frame
    topics = ["Defense", "Health", "Law and Crime", "Education"]
    rows = pd.concat([bills[bills.label == t].head(50) for t in topics])
    path = tmp_path_factory.mktemp("data") / "bills_small.csv"
    rows[["text", "label", "split"]].sample(frac=1, random_state=0).to_csv(path, index=False)
    return path


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.exit_code, self.stdout, self.stderr = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(exit_code={self.exit_code}, stdout={self.stdout[-500:]!r}, stderr={self.stderr[-500:]!r})"


@pytest.fixture(scope="session")
def news_model(tiny_backbone, small_news, tmp_path_factory) -> Path:
    """Folder of a tiny news model (the tiny backbone, one epoch on the small news sample): a compare source."""
    from textshift.data import read_labeled
    from textshift.training import TrainConfig, train_classifier

    clf, _ = train_classifier(read_labeled(small_news), backbone=tiny_backbone,
                              config=TrainConfig(epochs=1, warmup_epochs=1))
    path = tmp_path_factory.mktemp("src") / "news-model"
    clf.save(path)
    return path


@pytest.fixture()
def run_cli(capsys, monkeypatch, tmp_path):
    """Run the real ``textshift`` entry point (error mapping included) in-process; returns a CliResult."""
    import sys

    from textshift.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["textshift", *map(str, args)])
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
