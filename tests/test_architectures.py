"""Every encoder architecture the installed transformers provides, end to end: train, predict, pipeline parity,
transfer (finetune, encoder, adapt), grow, inspect, save and load.

Each backbone is a tiny random model (2 layers, 32 wide) with a tokenizer built offline from the embedded
texts: WordPiece vocabularies for the BERT family and MPNet, byte-level BPE for RoBERTa and ModernBERT, Unigram
pieces for XLM-RoBERTa and DeBERTa-v2. Nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ARCHITECTURES = ("bert", "distilbert", "electra", "mpnet", "roberta", "xlm-roberta", "deberta-v2", "modernbert")
CLASSES = ["Defense", "Health", "Law and Crime"]
MAX_LENGTH = 48


def _available(arch: str) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return arch in CONFIG_MAPPING_NAMES


def _tokenizer(arch: str, texts: list[str]):
    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    words = Counter(w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower()))
    common = [w for w, _ in words.most_common(800)]
    if arch in ("bert", "distilbert", "electra", "mpnet"):
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        specials += ["<s>", "</s>", "<pad>", "<mask>"] if arch == "mpnet" else []
        cls = {"bert": tf.BertTokenizer, "distilbert": tf.DistilBertTokenizer, "electra": tf.ElectraTokenizer,
               "mpnet": tf.MPNetTokenizer}[arch]
        return cls(vocab={w: i for i, w in enumerate(specials + common)}, model_max_length=128)
    if arch in ("xlm-roberta", "deberta-v2"):
        xlm = arch == "xlm-roberta"
        pieces = ["<s>", "<pad>", "</s>", "<unk>"] if xlm else ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        vocab = [(p, 0.0) for p in pieces] + [("▁" + w, -1.0 - i / 100) for i, w in enumerate(common)]
        vocab += [(c, -20.0) for c in sorted({c for w in common for c in w} | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))]
        vocab += [("▁", -15.0), ("<mask>" if xlm else "[MASK]", 0.0)]
        if xlm:
            return tf.XLMRobertaTokenizer(vocab=vocab, model_max_length=128)
        return tf.DebertaV2Tokenizer(vocab=vocab, do_lower_case=True, model_max_length=128)
    roberta = arch == "roberta"
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=roberta)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] if roberta else ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    bpe.train_from_iterator(texts[:1500], trainers.BpeTrainer(
        vocab_size=700, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    if roberta:
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
                  for m in json.loads(bpe.to_str())["model"]["merges"]]
        return tf.RobertaTokenizer(vocab=bpe.get_vocab(), merges=merges, model_max_length=128)
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", bpe.token_to_id("[CLS]")), ("[SEP]", bpe.token_to_id("[SEP]"))])
    return tf.PreTrainedTokenizerFast(tokenizer_object=bpe, model_max_length=128, cls_token="[CLS]", sep_token="[SEP]",
                                      pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]")


def _config(arch: str, tokenizer):
    import transformers as tf

    size = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
            "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if arch == "distilbert":
        return tf.DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=37,
                                   max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    if arch == "electra":
        return tf.ElectraConfig(embedding_size=32, max_position_embeddings=128, **size)
    if arch == "mpnet":  # positions start after the padding id, as in RoBERTa
        return tf.MPNetConfig(max_position_embeddings=130, **size)
    if arch in ("roberta", "xlm-roberta"):
        cls = tf.RobertaConfig if arch == "roberta" else tf.XLMRobertaConfig
        return cls(max_position_embeddings=130, bos_token_id=tokenizer.cls_token_id,
                   eos_token_id=tokenizer.sep_token_id, **size)
    if arch == "deberta-v2":
        return tf.DebertaV2Config(max_position_embeddings=128, pooler_hidden_size=32, relative_attention=True,
                                  position_buckets=16, pos_att_type=["p2c", "c2p"], **size)
    if arch == "modernbert":
        return tf.ModernBertConfig(max_position_embeddings=128, local_attention=16, global_attn_every_n_layers=2,
                                   cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                                   bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                                   **size | {"intermediate_size": 48})
    return tf.BertConfig(max_position_embeddings=128, **size)


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    from textshift.data import read_labeled

    return read_labeled("embedded:news").texts + read_labeled("embedded:bills").texts


@pytest.fixture(scope="session")
def backbones(tmp_path_factory, corpus):
    """arch -> folder of a tiny random encoder with its tokenizer, built on first use (once per session)."""
    import torch
    from transformers import AutoModel

    built: dict[str, str] = {}

    def get(arch: str) -> str:
        if arch not in built:
            folder = tmp_path_factory.mktemp(f"tiny-{arch}")
            tokenizer = _tokenizer(arch, corpus)
            tokenizer.save_pretrained(folder)
            torch.manual_seed(0)
            AutoModel.from_config(_config(arch, tokenizer)).save_pretrained(folder)
            built[arch] = str(folder)
        return built[arch]

    return get


@pytest.fixture(scope="session")
def tiny_sets():
    """Tiny labelled sets: news (source), bills (target, with one class more to grow into)."""
    from textshift.data import TextData, read_labeled

    news = read_labeled("embedded:news").frame
    bills = read_labeled("embedded:bills").frame
    news = news[news.label.isin(CLASSES)].groupby("label").head(8)
    target = bills[bills.label.isin(CLASSES)].groupby("label").head(6)
    new = bills[bills.label == "Education"].head(6)
    return (TextData.from_lists(news.text.tolist(), news.label.tolist(), name="news"),
            TextData.from_lists(target.text.tolist(), target.label.tolist(), name="bills"),
            TextData.from_lists(new.text.tolist(), new.label.tolist(), name="education"))


def _train_config(**extra):
    from textshift.training import TrainConfig

    return TrainConfig(epochs=1, warmup_epochs=1, batch_size=8, max_length=MAX_LENGTH, **extra)


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.skipif(not _available(a),
                                                                            reason=f"no {a} in transformers"))
                                  for a in ARCHITECTURES])
def test_architecture_end_to_end(arch, backbones, tiny_sets, tmp_path):
    import torch
    from transformers import pipeline

    from textshift.adapt import AdaptConfig
    from textshift.grow import GrowConfig, grow
    from textshift.inspect import InspectConfig, inspect_data
    from textshift.memory import Memory
    from textshift.model import Classifier
    from textshift.predict import predict_texts
    from textshift.training import train_classifier
    from textshift.transfer import TransferConfig, transfer

    news, bills, new = tiny_sets
    backbone = backbones(arch)

    # train and predict
    classifier, result = train_classifier(news, backbone=backbone, config=_train_config())
    assert result.history and classifier.labels == sorted(CLASSES)
    frame = predict_texts(classifier, bills.texts)
    assert len(frame) == len(bills) and set(frame.label) <= set(CLASSES)

    # save, load, and the same probabilities from plain transformers.pipeline
    folder = classifier.save(tmp_path / "news-model")
    loaded = Classifier.load(folder)
    ours = loaded.predict_proba(bills.texts, max_length=MAX_LENGTH)
    np.testing.assert_allclose(ours, classifier.predict_proba(bills.texts, max_length=MAX_LENGTH), atol=1e-5)
    pipe = pipeline("text-classification", model=str(folder), device=-1, top_k=None)
    scored = pipe(bills.texts, truncation=True, max_length=MAX_LENGTH)
    theirs = np.array([[next(s["score"] for s in row if s["label"] == label) for label in loaded.labels]
                       for row in scored])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)

    # transfer with every strategy that trains the encoder differently
    for strategy in ("finetune", "encoder", "adapt"):
        config = TransferConfig(strategy=strategy, train=_train_config(),
                                adapt=AdaptConfig(epochs=1, batch_size=8, max_length=MAX_LENGTH))
        before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
        model, _ = transfer(loaded, bills, config=config, unlabeled_texts=new.texts)
        assert model.labels == sorted(CLASSES) and model.meta.strategy == strategy
        assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items()), "source changed"
        assert model.predict_proba(bills.texts[:3], max_length=MAX_LENGTH).shape == (3, len(CLASSES))

    # grow one class, with rehearsal
    memory = Memory.sample(news.texts, news.labels, per_class=2, seed=0)
    grown = grow(loaded, new, memory=memory, config=GrowConfig(train=_train_config())).classifier
    assert grown.labels == sorted(CLASSES) + ["Education"]
    grown_folder = grown.save(tmp_path / "grown")
    assert Classifier.load(grown_folder).predict_proba(new.texts[:2], max_length=MAX_LENGTH).shape == (2, 4)

    # inspect the target data with the model's encoder
    report = inspect_data(bills, model=folder, config=InspectConfig(folds=2, scorer="logistic", neighbors=3,
                                                                    max_length=MAX_LENGTH))
    assert len(report.items) == len(bills)
