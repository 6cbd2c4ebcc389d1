"""Model construction, head surgery, atomic save/load, and refusal of unsafe or broken folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textshift.errors import BackboneNotFoundError, ConfigError, ModelError, OutputExistsError
from textshift.model import Classifier, check_backbone_fits, check_model_folder, model_labels


@pytest.fixture()
def classifier(tiny_backbone):
    return Classifier.from_backbone(tiny_backbone, labels=["a", "b", "c"])


def test_predict_proba_rows_sum_to_one(classifier):
    probs = classifier.predict_proba(["short", "a much longer text than the other one", "mid length"])
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_batching_by_length_keeps_input_order(classifier):
    texts = ["x " * n for n in (9, 1, 5, 3, 7)]
    together = classifier.predict_logits(texts, batch_size=2)
    alone = np.vstack([classifier.predict_logits([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_batches_pad_like_the_tokenizer(classifier):
    texts = ["x " * n for n in (9, 1, 5)]
    _, batch = next(classifier._batches(texts, 3, 128))
    reference = classifier.tokenizer(sorted(texts, key=len), truncation=True, max_length=128, padding=True,
                                     return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].tolist() == reference["input_ids"].tolist()
    assert batch["attention_mask"].tolist() == reference["attention_mask"].tolist()


def test_to_auto_picks_this_machines_device_and_casts(classifier):
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    texts = ["health care bill", "defense spending", "the court ruled"]
    full = classifier.predict_logits(texts)
    assert classifier.to("auto", torch.bfloat16) is classifier
    assert classifier.device.type == expected
    assert next(classifier.model.parameters()).dtype == torch.bfloat16
    half = classifier.predict_logits(texts)
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, full, atol=0.1)


@pytest.mark.parametrize("device", ["gpu0", "cuda" if not __import__("torch").cuda.is_available() else "cuda:99"])
def test_to_refuses_unknown_or_missing_devices(classifier, device):
    with pytest.raises((ConfigError, RuntimeError)) as raised:
        classifier.to(device)
    if device == "gpu0" or device == "cuda":
        assert raised.type is ConfigError
        assert "expected" in str(raised.value)


def test_save_load_round_trip_gives_same_predictions(classifier, tmp_path):
    texts = ["health care bill", "defense spending"]
    before = classifier.predict_proba(texts)
    classifier.save(tmp_path / "m")
    loaded = Classifier.load(tmp_path / "m")
    assert loaded.labels == ["a", "b", "c"]
    np.testing.assert_allclose(loaded.predict_proba(texts), before, atol=1e-5)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["id2label"] == {"0": "a", "1": "b", "2": "c"}
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert not list(tmp_path.glob(".m.*")), "temporary folders left behind"


def test_replace_head_keeps_shared_rows(classifier):
    from textshift.model import head_linear

    old = head_linear(classifier.model).weight.detach().clone()
    classifier.replace_head(["c", "new", "a"], init_rows={"new": np.ones(old.shape[1])})
    new = head_linear(classifier.model).weight.detach()
    assert classifier.labels == ["c", "new", "a"]
    assert np.allclose(new[0], old[2]) and np.allclose(new[2], old[0])
    direction = new[1] / new[1].norm()
    assert np.allclose(direction, np.ones(old.shape[1]) / np.sqrt(old.shape[1]), atol=1e-5)


def test_refuses_foreign_non_empty_folder(classifier, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    for overwrite in (False, True):  # a folder textshift did not write is never replaced
        with pytest.raises(OutputExistsError, match="is not a textshift model folder"):
            classifier.save(tmp_path / "out", overwrite=overwrite)
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_missing_weights(classifier, tmp_path):
    classifier.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no model.safetensors"):
        Classifier.load(tmp_path / "m")


def test_corrupted_weights(classifier, tmp_path):
    classifier.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError, match="corrupted"):
        check_model_folder(tmp_path / "m")


def test_refuses_pickle_only_folder(classifier, tmp_path):
    classifier.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").rename(tmp_path / "m" / "pytorch_model.bin")
    with pytest.raises(ModelError, match="will not unpickle"):
        Classifier.load(tmp_path / "m")


def test_unknown_backbone_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneNotFoundError, match="not in the local Hugging Face cache"):
        Classifier.from_backbone("no-such-org/no-such-model", labels=["a", "b"])


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Classifier.load(tmp_path / "nope")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth", "head.pkl", "last.ckpt"])
def test_refuses_every_pickle_suffix(classifier, tmp_path, name):
    classifier.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").rename(tmp_path / "m" / name)
    with pytest.raises(ModelError, match=f"only pickle weights \\({name}\\).*will not unpickle"):
        Classifier.load(tmp_path / "m")


def _edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_config_labels_not_matching_the_head_names_both_files(classifier, tmp_path):
    classifier.save(tmp_path / "m")
    _edit_config(tmp_path / "m", id2label={"0": "a", "1": "b"}, label2id={"a": 0, "b": 1})
    with pytest.raises(ModelError, match="config.json has 2 labels but model.safetensors has a classifier for 3"):
        check_model_folder(tmp_path / "m")


def test_config_vocab_size_not_matching_the_embeddings(classifier, tmp_path):
    classifier.save(tmp_path / "m")
    rows = classifier.model.get_input_embeddings().weight.shape[0]
    _edit_config(tmp_path / "m", vocab_size=rows + 7)
    with pytest.raises(ModelError, match=f"config.json has vocab_size {rows + 7} but model.safetensors embeds {rows}"):
        Classifier.load(tmp_path / "m")


def test_other_weight_shapes_are_checked(classifier, tmp_path):
    classifier.save(tmp_path / "m")
    _edit_config(tmp_path / "m", intermediate_size=40)
    with pytest.raises(ModelError, match="intermediate.dense.bias of shape \\[37\\] but config.json implies \\[40\\]"):
        Classifier.load(tmp_path / "m")


def test_weights_without_a_head_are_refused(classifier, tmp_path):
    from safetensors.torch import load_file, save_file

    classifier.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    tensors = {k: v for k, v in load_file(weights).items() if not k.startswith("classifier.")}
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ModelError, match="has no classifier.weight"):
        Classifier.load(tmp_path / "m")


def test_tokenizer_larger_than_the_embeddings(classifier, tmp_path):
    from transformers import BertTokenizerFast

    classifier.save(tmp_path / "m")
    vocab = list(classifier.tokenizer.get_vocab())
    rows = classifier.model.get_input_embeddings().weight.shape[0]
    (tmp_path / "vocab.txt").write_text("\n".join(sorted(vocab) + [f"new{i}" for i in range(50)]) + "\n")
    BertTokenizerFast(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "m")
    with pytest.raises(ModelError, match=f"the tokenizer has {len(vocab) + 50} tokens but model.safetensors embeds "
                                         f"only {rows}"):
        Classifier.load(tmp_path / "m")


def test_broken_config_json(classifier, tmp_path):
    classifier.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"model_type": "bert",')
    with pytest.raises(ModelError, match="config.json is not valid JSON"):
        Classifier.load(tmp_path / "m")


def test_checks_read_no_pickle(classifier, tmp_path, monkeypatch):
    """Loading never calls torch.load (the function that unpickles)."""
    import torch

    classifier.save(tmp_path / "m")
    (tmp_path / "m" / "training_args.bin").write_bytes(b"not read")

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)
    assert Classifier.load(tmp_path / "m").labels == ["a", "b", "c"]


def test_save_swaps_folders_in_one_step_and_keeps_no_leftovers(tiny_backbone, tmp_path):
    first = Classifier.from_backbone(tiny_backbone, labels=["a", "b"], seed=0)
    target = first.save(tmp_path / "m")
    second = Classifier.from_backbone(tiny_backbone, labels=["a", "b", "c"], seed=1)
    second.save(target)
    assert Classifier.load(target).labels == ["a", "b", "c"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_save_killed_between_its_two_renames_is_recovered_on_load(tiny_backbone, tmp_path):
    from textshift.files import recover_interrupted_swap

    target = Classifier.from_backbone(tiny_backbone, labels=["a", "b"], seed=0).save(tmp_path / "m")
    target.rename(tmp_path / ".m.old-1234abcd")  # the state a kill leaves after the first rename
    (tmp_path / ".m.tmp-5678abcd").mkdir()  # and a half-written new folder, never taken as a model
    assert Classifier.load(target).labels == ["a", "b"]
    assert target.is_dir() and not recover_interrupted_swap(target)


@pytest.mark.parametrize("labels, expect", [("abc", "one string"), (["a", "b", "a"], "labels must be distinct; 'a'"),
                                            ([], "at least one label")])
def test_from_backbone_refuses_bad_label_lists(tiny_backbone, labels, expect):
    from textshift.errors import TextshiftError

    with pytest.raises(TextshiftError, match=expect):
        Classifier.from_backbone(tiny_backbone, labels=labels)


def test_model_labels_reads_config_json_in_head_order(tiny_backbone, tmp_path):
    """Twelve classes: config.json stores id2label keys sorted as text ("10" before "2"); the head order wins."""
    labels = [f"class {i}" for i in range(12)]
    Classifier.from_backbone(tiny_backbone, labels=labels, seed=0).save(tmp_path / "model")
    assert model_labels(tmp_path / "model") == labels == Classifier.load(tmp_path / "model").labels


def test_check_backbone_fits_refuses_before_loading_weights(tiny_backbone, tmp_path):
    from textshift.windows import LongTexts

    truncate = LongTexts()
    check_backbone_fits(tiny_backbone, max_length=128, long_texts=truncate)
    with pytest.raises(ConfigError, match="longer than this model takes \\(128 tokens"):
        check_backbone_fits(tiny_backbone, max_length=256, long_texts=truncate)
    check_backbone_fits(tiny_backbone, max_length=256, long_texts=truncate, positions=False)
    with pytest.raises(ConfigError, match="overlap"):
        check_backbone_fits(tiny_backbone, max_length=16, long_texts=LongTexts(mode="chunks", overlap=14))
    with pytest.raises(BackboneNotFoundError):
        check_backbone_fits(str(tmp_path / "no-such-backbone"), max_length=128, long_texts=truncate)
