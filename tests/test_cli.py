"""The core commands end to end through the real entry point, on a tiny backbone and real rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

FAST = ["--epochs", "2", "--warmup-epochs", "2"]


@pytest.fixture(scope="module")
def trained(tiny_backbone, small_news, tmp_path_factory):
    """A model trained once through the CLI for the tests of this module."""
    import sys

    from textshift.cli import main

    out = tmp_path_factory.mktemp("models") / "news-model"
    argv = sys.argv
    sys.argv = ["textshift", "train", str(small_news), "-o", str(out), "--backbone", tiny_backbone, *FAST,
                "--logit-adjust", "1", "-q"]
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        sys.argv = argv
    return out


def test_train_writes_a_standard_model_folder(trained, small_news):
    files = {p.name for p in trained.iterdir()}
    assert {"config.json", "model.safetensors", "textshift.json", "tokenizer.json", "memory.jsonl"} <= files
    meta = json.loads((trained / "textshift.json").read_text())
    assert meta["labels"] == sorted(set(pd.read_csv(small_news).label))
    assert meta["training_data"][0]["rows"] == 240 and len(meta["training_data"][0]["sha256"]) == 64
    assert meta["settings"]["epochs"] == 2 and meta["settings"]["logit_adjust"] == 1


def test_predict_streams_and_matches_pipeline(trained, small_bills, tmp_path, run_cli):
    from transformers import pipeline

    out = tmp_path / "pred.csv"
    result = run_cli("predict", trained, small_bills, "-o", out, "--top-k", "2", "--chunk-size", "37")
    assert result.exit_code == 0, result
    preds = pd.read_csv(out)
    source = pd.read_csv(small_bills)
    assert len(preds) == len(source) and preds["row"].tolist() == list(range(len(source)))
    assert {"label", "probability", "label_2", "probability_2"} <= set(preds.columns)
    assert (preds.probability >= preds.probability_2).all()
    pipe = pipeline("text-classification", model=str(trained), device="cpu")
    hf = [r["label"] for r in pipe(source.text.tolist(), batch_size=16, truncation=True)]
    assert hf == preds.label.tolist()


def test_predict_never_overwrites_input(trained, small_bills, run_cli):
    before = small_bills.read_bytes()
    result = run_cli("predict", trained, small_bills, "-o", small_bills, "--overwrite")
    assert result.exit_code == 2 and "never overwrites its input" in result.stderr
    assert small_bills.read_bytes() == before


def test_evaluate_prints_scores_and_writes_png(trained, small_bills, tmp_path, run_cli):
    png = tmp_path / "cm.png"
    result = run_cli("evaluate", trained, small_bills, "--confusion", png, "-q")
    assert result.exit_code == 0, result
    summary = json.loads(result.stdout)
    assert 0 <= summary["accuracy"] <= 1 and summary["rows"] == 200
    assert summary["unseen_labels"] == ["Education"]  # bills have a topic the news sample lacks
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_info(trained, run_cli):
    result = run_cli("info", trained)
    assert result.exit_code == 0 and "Defense" in result.stdout and "sha256" in result.stdout


def test_info_records_absolute_data_paths(tiny_backbone, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"text": ["tax cut", "war news", "tax rise", "army base"] * 3,
                  "label": ["tax", "war", "tax", "war"] * 3}).to_csv("d.csv", index=False)
    result = run_cli("train", "d.csv", "-o", "m", "--backbone", tiny_backbone, "--epochs", "1", "-q")
    assert result.exit_code == 0, result
    monkeypatch.chdir(tmp_path / "m")  # another folder: the recorded path must still name the file
    result = run_cli("info", ".", "-q")
    assert json.loads(result.stdout)["training_data"][0]["path"] == str(tmp_path / "d.csv")


def test_info_on_a_plain_hugging_face_folder_invents_no_history(trained, tmp_path, run_cli):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    plain = tmp_path / "plain"
    AutoModelForSequenceClassification.from_pretrained(trained).save_pretrained(plain)
    AutoTokenizer.from_pretrained(trained).save_pretrained(plain)
    result = run_cli("info", plain)
    assert result.exit_code == 0 and "not saved by textshift" in result.stdout and "created" not in result.stdout
    from textshift.model import Classifier

    Classifier.load(plain).save(tmp_path / "copy")
    meta = json.loads((tmp_path / "copy" / "textshift.json").read_text())
    assert meta["created"] and meta["textshift_version"]  # saved by textshift now: both are known


def test_data_export_and_list(tmp_path, run_cli):
    assert run_cli("data", "list").exit_code == 0
    result = run_cli("data", "export", "bills-train", tmp_path / "b.csv")
    assert result.exit_code == 0 and len(pd.read_csv(tmp_path / "b.csv")) == 3000


def _csv(tmp_path, content: bytes, name="d.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"text,label\n", "no data rows"),
    (b"body,label\nx,a\n", "Pass --text-column body"),
    (b"text,topic\nx,a\n", "Pass --label-column topic"),
    (b"text,label\n  ,a\nb,b\n", "empty or whitespace-only"),
    (b"text,label\na,\nb,b\n", "missing label"),
    (b"text,label\n\xff\xfe,a\nb,b\n", "not valid UTF-8"),
    (b"text,label\na,x\nb,x\n", "only one class"),
])
def test_train_bad_input_exits_2_and_writes_nothing(tmp_path, tiny_backbone, run_cli, content, message):
    data = _csv(tmp_path, content)
    out = tmp_path / "model"
    result = run_cli("train", data, "-o", out, "--backbone", tiny_backbone)
    assert result.exit_code == 2, result
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_train_missing_file(tmp_path, run_cli):
    result = run_cli("train", tmp_path / "none.csv", "-o", tmp_path / "m")
    assert result.exit_code == 2 and "not found" in result.stderr


@pytest.mark.parametrize("command", ["train", "compare"])
def test_negative_logit_adjust_is_one_line(tmp_path, small_news, command, run_cli):
    args = (["train", small_news, "-o", tmp_path / "m"] if command == "train" else
            ["compare", tmp_path / "no-model", small_news, "-o", tmp_path / "c"])
    result = run_cli(*args, "--logit-adjust", "-1")
    assert result.exit_code == 2 and "'logit_adjust' setting must be in [0, 10]; got -1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_train_refuses_foreign_output_folder(tmp_path, tiny_backbone, small_news, run_cli):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    result = run_cli("train", small_news, "-o", out, "--backbone", tiny_backbone)
    assert result.exit_code == 2 and "is not a textshift model folder" in result.stderr
    assert "--overwrite" not in result.stderr  # it would not help: a folder textshift did not write stays
    assert (out / "thesis.tex").read_text() == "do not delete"


def test_single_example_class_warns_and_trains(tmp_path, tiny_backbone, run_cli):
    data = _csv(tmp_path, b"text,label\na war,x\nthe army,x\na doctor,y\nthe nurse,y\nfootball,z\n")
    result = run_cli("train", data, "-o", tmp_path / "m", "--backbone", tiny_backbone, *FAST)
    assert result.exit_code == 0, result
    assert "single example" in result.stderr


def test_unknown_backbone_offline(tmp_path, small_news, run_cli, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run_cli("train", small_news, "-o", tmp_path / "m", "--backbone", "nobody/nothing-here")
    assert result.exit_code == 2 and "HF_HUB_OFFLINE" in result.stderr


@pytest.mark.parametrize("damage,message", [("delete", "no model.safetensors"), ("truncate", "corrupted"),
                                            ("pickle", "will not unpickle")])
def test_broken_model_folders(trained, tmp_path, small_bills, run_cli, damage, message):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(trained, model)
    weights = model / "model.safetensors"
    if damage == "delete":
        weights.unlink()
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        weights.rename(model / "pytorch_model.bin")
    for command in (["predict", model, small_bills, "-o", tmp_path / "p.csv"], ["evaluate", model, small_bills],
                    ["info", model]):
        result = run_cli(*command)
        assert result.exit_code == 2 and message in result.stderr, (command, result)
    assert not (tmp_path / "p.csv").exists()


def test_predict_matches_library(trained, small_bills, tmp_path):
    from textshift.model import Classifier
    from textshift.predict import predict_file, predict_texts

    clf = Classifier.load(trained)
    summary = predict_file(clf, small_bills, tmp_path / "p.csv", chunk_size=50)
    direct = predict_texts(clf, pd.read_csv(small_bills).text.tolist())
    written = pd.read_csv(tmp_path / "p.csv")
    assert summary.rows == 200
    assert written.label.tolist() == direct.label.tolist()
    np.testing.assert_allclose(written.probability, direct.probability, atol=1e-5)


@pytest.mark.parametrize("argv, expect", [
    (["predict", "m", "d.csv", "-o", "p.csv", "--top-k", "abc"], "Invalid value for '--top-k'"),
    (["predict", "m"], "Missing argument 'data'. See 'textshift predict --help'"),
    (["train", "d.csv", "-o", "m", "--nope"], "No such option: --nope. See 'textshift train --help'"),
    (["frobnicate"], "No such command 'frobnicate'. See 'textshift --help'"),
])
def test_usage_errors_are_one_line(run_cli, argv, expect):
    result = run_cli(*argv)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"] and expect in result.stderr


def test_ctrl_c_exits_130_with_a_word(run_cli, monkeypatch):
    """Ctrl-C in a command: 'aborted' and exit code 130, not a silent 0."""
    from textshift.model import Classifier

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Classifier, "load", interrupted)
    result = run_cli("info", "some-model")
    assert result.exit_code == 130 and result.stderr.strip() == "aborted"
