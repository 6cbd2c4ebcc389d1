"""Every encoder architecture the installed transformers provides, end to end: train, predict, pipeline parity,
transfer (finetune, encoder, adapt), grow, inspect, save and load.

Each backbone is a tiny random model (1 layer, 16 wide) with a tokenizer of a few hundred entries built offline
from the embedded texts: WordPiece vocabularies for the BERT family and MPNet, byte-level BPE for RoBERTa and
ModernBERT, Unigram pieces for XLM-RoBERTa and DeBERTa-v2. Nothing is downloaded. Each architecture is trained
once (a module fixture); predict, pipeline parity, transfer, grow and inspect start from that saved model, so the
whole matrix stays within about a minute on two CPU cores.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

ARCHITECTURES = ("bert", "distilbert", "electra", "mpnet", "roberta", "xlm-roberta", "deberta-v2", "modernbert")
CLASSES = ["Defense", "Health", "Law and Crime"]
MAX_LENGTH = 32
VOCAB_WORDS = 300


def _available(arch: str) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return arch in CONFIG_MAPPING_NAMES


def _tokenizer(arch: str, texts: list[str]):
    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    words = Counter(w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower()))
    common = [w for w, _ in words.most_common(VOCAB_WORDS)]
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
    specials = (["<s>", "<pad>", "</s>", "<unk>", "<mask>"] if roberta
                else ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    bpe.train_from_iterator(texts[:300], trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
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

    size = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 20,
            "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if arch == "distilbert":
        return tf.DistilBertConfig(vocab_size=len(tokenizer), dim=16, n_layers=1, n_heads=2, hidden_dim=20,
                                   max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    if arch == "electra":
        return tf.ElectraConfig(embedding_size=16, max_position_embeddings=128, **size)
    if arch == "mpnet":  # positions start after the padding id, as in RoBERTa
        return tf.MPNetConfig(max_position_embeddings=130, **size)
    if arch in ("roberta", "xlm-roberta"):
        cls = tf.RobertaConfig if arch == "roberta" else tf.XLMRobertaConfig
        return cls(max_position_embeddings=130, bos_token_id=tokenizer.cls_token_id,
                   eos_token_id=tokenizer.sep_token_id, **size)
    if arch == "deberta-v2":
        return tf.DebertaV2Config(max_position_embeddings=128, pooler_hidden_size=16, relative_attention=True,
                                  position_buckets=16, pos_att_type=["p2c", "c2p"], **size)
    if arch == "modernbert":
        return tf.ModernBertConfig(max_position_embeddings=128, local_attention=16, global_attn_every_n_layers=1,
                                   cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                                   bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                                   **size | {"intermediate_size": 24})
    return tf.BertConfig(max_position_embeddings=128, **size)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: at 16 wide, a second thread's synchronisation costs more than the arithmetic (the matrix
    took 89 s with two threads and 19 s with one, on two busy cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    from textshift.data import read_labeled

    return read_labeled("embedded:news").texts[:2000] + read_labeled("embedded:bills").texts[:2000]


@pytest.fixture(scope="session")
def tiny_sets():
    """Tiny labelled sets: news (source), bills (target), and bills of one class more to grow into."""
    from textshift.data import TextData, read_labeled

    news = read_labeled("embedded:news").frame
    bills = read_labeled("embedded:bills").frame
    news = news[news.label.isin(CLASSES)].groupby("label").head(6)
    target = bills[bills.label.isin(CLASSES)].groupby("label").head(4)
    new = bills[bills.label == "Education"].head(4)
    return (TextData.from_lists(news.text.tolist(), news.label.tolist(), name="news"),
            TextData.from_lists(target.text.tolist(), target.label.tolist(), name="bills"),
            TextData.from_lists(new.text.tolist(), new.label.tolist(), name="education"))


@pytest.fixture(scope="module", params=[pytest.param(a, marks=pytest.mark.skipif(
    not _available(a), reason=f"no {a} in transformers")) for a in ARCHITECTURES])
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def backbone(arch, tmp_path_factory, corpus) -> str:
    """Folder of a tiny random encoder of ``arch`` with its tokenizer."""
    import torch
    from transformers import AutoModel

    folder = tmp_path_factory.mktemp(f"tiny-{arch}")
    tokenizer = _tokenizer(arch, corpus)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    AutoModel.from_config(_config(arch, tokenizer)).save_pretrained(folder)
    return str(folder)


def _train_config(**extra):
    from textshift.training import TrainConfig

    return TrainConfig(epochs=1, warmup_epochs=1, batch_size=8, max_length=MAX_LENGTH, **extra)


@pytest.fixture(scope="module")
def trained(backbone, tiny_sets, tmp_path_factory):
    """The news classifier trained once on ``backbone``, its training record and its saved folder."""
    from textshift.training import train_classifier

    news, _, _ = tiny_sets
    classifier, result = train_classifier(news, backbone=backbone, config=_train_config())
    folder = classifier.save(tmp_path_factory.mktemp("news-model") / "model")
    return classifier, result, folder


def _probabilities(classifier, texts) -> np.ndarray:
    return classifier.predict_proba(texts, max_length=MAX_LENGTH)


def test_train_and_predict(trained, tiny_sets):
    from textshift.predict import predict_texts

    classifier, result, _ = trained
    _, bills, _ = tiny_sets
    assert classifier.labels == sorted(CLASSES)
    assert result.history and result.train_rows > 0
    frame = predict_texts(classifier, bills.texts)
    assert len(frame) == len(bills) and set(frame.label) <= set(CLASSES)
    probs = _probabilities(classifier, bills.texts)
    assert probs.shape == (len(bills), len(CLASSES)) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert list(frame.label) == [classifier.labels[i] for i in probs.argmax(axis=1)]


def test_save_load_and_pipeline_parity(trained, tiny_sets):
    from transformers import pipeline

    from textshift.model import Classifier

    classifier, _, folder = trained
    _, bills, _ = tiny_sets
    loaded = Classifier.load(folder)
    assert loaded.labels == classifier.labels and loaded.meta.backbone == classifier.meta.backbone
    ours = _probabilities(loaded, bills.texts)
    np.testing.assert_allclose(ours, _probabilities(classifier, bills.texts), atol=1e-5)
    # plain transformers reads the folder: same probabilities, same labels (the tokenizer's limit is MAX_LENGTH)
    pipe = pipeline("text-classification", model=str(folder), device=-1, top_k=None)
    scored = pipe(bills.texts, truncation=True)
    theirs = np.array([[next(s["score"] for s in row if s["label"] == label) for label in loaded.labels]
                       for row in scored])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert [max(row, key=lambda s: s["score"])["label"] for row in scored] == \
        [loaded.labels[i] for i in ours.argmax(axis=1)]


@pytest.mark.parametrize("strategy", ["finetune", "encoder", "adapt"])
def test_transfer(trained, tiny_sets, strategy):
    import torch

    from textshift.adapt import AdaptConfig
    from textshift.model import Classifier
    from textshift.transfer import TransferConfig, transfer

    _, _, folder = trained
    _, bills, new = tiny_sets
    source = Classifier.load(folder)
    before = {k: v.clone() for k, v in source.model.state_dict().items()}
    config = TransferConfig(strategy=strategy, train=_train_config(),
                            adapt=AdaptConfig(epochs=1, batch_size=8, max_length=MAX_LENGTH))
    model, result = transfer(source, bills, config=config, unlabeled_texts=new.texts)
    assert model.labels == sorted(CLASSES) and model.meta.strategy == strategy and result.history
    assert all(torch.equal(before[k], v) for k, v in source.model.state_dict().items()), "the source changed"
    changed = [k for k, v in model.model.state_dict().items() if k in before and not torch.equal(before[k], v)]
    assert changed, "transfer trained nothing"
    assert _probabilities(model, bills.texts[:3]).shape == (3, len(CLASSES))


def test_grow_then_save_and_load(trained, tiny_sets, tmp_path):
    from textshift.grow import GrowConfig, grow
    from textshift.memory import Memory
    from textshift.model import Classifier

    _, _, folder = trained
    news, _, new = tiny_sets
    source = Classifier.load(folder)
    memory = Memory.sample(news.texts, news.labels, per_class=2, seed=0)
    grown = grow(source, new, memory=memory, config=GrowConfig(train=_train_config())).classifier
    assert grown.labels == sorted(CLASSES) + ["Education"] and source.labels == sorted(CLASSES)
    reloaded = Classifier.load(grown.save(tmp_path / "grown"))
    assert reloaded.labels == grown.labels
    np.testing.assert_allclose(_probabilities(reloaded, new.texts), _probabilities(grown, new.texts), atol=1e-5)


def test_inspect_with_the_models_encoder(trained, tiny_sets):
    from textshift.inspection import InspectConfig, inspect_data

    _, _, folder = trained
    _, bills, _ = tiny_sets
    report = inspect_data(bills, model=folder, config=InspectConfig(folds=2, scorer="logistic", neighbors=3,
                                                                    max_length=MAX_LENGTH))
    assert len(report.items) == len(bills)
