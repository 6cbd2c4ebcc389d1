"""Bad input across every command: exit code 2, one line on stderr, and nothing left behind.

Each case of :data:`BAD` builds its inputs in a fresh folder, runs the real entry point and checks that the
command failed with a one-line message containing the expected words, that its output path does not exist
afterwards and that no temporary file (``.NAME.tmp-*``) was left beside it. :data:`ACCEPTED` holds inputs that
look odd but must work (UTF-8 BOM, mixed line endings, a 200,000-character text, numeric labels).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

FAST = ["--epochs", "1", "--warmup-epochs", "1"]
GOOD = b"text,label\nthe army base,Defense\na new hospital,Health\nschool lunches,Education\ntax cuts,Macro\n"


@pytest.fixture(scope="module")
def model(tiny_backbone, small_news, tmp_path_factory) -> Path:
    """One small model for the cases that need one, trained through the CLI."""
    import sys

    from textshift.cli import main

    out = tmp_path_factory.mktemp("bad-input") / "news-model"
    argv = sys.argv
    sys.argv = ["textshift", "train", str(small_news), "-o", str(out), "--backbone", tiny_backbone, *FAST, "-q"]
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        sys.argv = argv
    return out


@dataclass
class Ctx:
    """What a case needs: a fresh folder, the trained model, the tiny backbone, good data."""

    tmp: Path
    trained: Path
    backbone: str
    news: Path
    bills: Path
    output: Path | None = None

    def file(self, name: str, content: bytes | str) -> Path:
        path = self.tmp / "in" / name
        path.parent.mkdir(exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    def frame(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.tmp / "in" / name
        path.parent.mkdir(exist_ok=True)
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        elif path.suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_csv(path, index=False)
        return path

    def out(self, name: str = "out") -> Path:
        (self.tmp / "result").mkdir(exist_ok=True)
        self.output = self.tmp / "result" / name
        return self.output

    def copy_model(self, change: Callable[[Path], None] | None = None) -> Path:
        folder = self.tmp / "model"
        shutil.copytree(self.trained, folder)
        if change:
            change(folder)
        return folder

    @property
    def tiny(self) -> list[str]:
        return ["--backbone", self.backbone, *FAST]


# Model damage ------------------------------------------------------------------------------------------------
def _edit_json(folder: Path, name: str, edit: Callable[[dict], None]) -> None:
    values = json.loads((folder / name).read_text())
    edit(values)
    (folder / name).write_text(json.dumps(values))


def _fewer_labels(folder: Path) -> None:
    def edit(config):
        labels = [config["id2label"][str(i)] for i in range(3)]
        config["id2label"] = {str(i): label for i, label in enumerate(labels)}
        config["label2id"] = {label: i for i, label in enumerate(labels)}

    _edit_json(folder, "config.json", edit)
    _edit_json(folder, "textshift.json", lambda meta: meta.update(labels=meta["labels"][:3]))


def _other_vocab_size(folder: Path) -> None:
    _edit_json(folder, "config.json", lambda config: config.update(vocab_size=config["vocab_size"] + 100))


def _bigger_tokenizer(folder: Path) -> None:
    from transformers import BertTokenizerFast

    ids = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    vocab = sorted(ids, key=ids.get) + [f"extra{i}" for i in range(500)]
    scratch = folder.parent / "other-tokenizer"
    scratch.mkdir()
    (scratch / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(str(scratch / "vocab.txt"), do_lower_case=True).save_pretrained(folder)


def _pickle_only(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _pickle_pt(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "weights.pt")


def _empty(folder: Path) -> None:
    for item in folder.iterdir():
        item.unlink()


def _broken_config(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def _broken_meta(folder: Path) -> None:
    (folder / "textshift.json").write_text("[1, 2")


def _weights_of_another_model(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    tensors["classifier.weight"] = tensors["classifier.weight"][:2].clone()
    tensors["classifier.bias"] = tensors["classifier.bias"][:2].clone()
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


def _missing_head(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    del tensors["classifier.weight"], tensors["classifier.bias"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


# Bad data ----------------------------------------------------------------------------------------------------
UNCLOSED_QUOTE = b'text,label\n"an unclosed quote,Defense\nschool lunches,Education\n'
RAGGED = b"text,label\nthe army base,Defense\na new hospital,Health,extra,fields\n"
RAGGED_TSV = b"text\tlabel\nthe army base\tDefense\na new hospital\tHealth\textra\n"
BROKEN_JSONL = b'{"text": "the army base", "label": "Defense"}\n{"text": "a new hospital", "label": \n'
JSONL_NOT_OBJECTS = b'{"text": "the army base", "label": "Defense"}\n[1, 2]\n'
RANDOM_BYTES = bytes(range(256)) * 8
LATIN1 = "text,label\ncafé policy,Health\nthe army base,Defense\n".encode("latin-1")
UTF16 = "text,label\nthe army base,Defense\na new hospital,Health\n".encode("utf-16-le")
WHITESPACE = b"text,label\n   ,Defense\n\t,Health\n"


def _truncated_parquet(ctx: Ctx) -> Path:
    path = ctx.frame("d.parquet", pd.DataFrame({"text": ["the army base"] * 50, "label": ["Defense"] * 50}))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _nan_labels(ctx: Ctx) -> Path:
    return ctx.frame("d.parquet", pd.DataFrame({"text": ["the army base", "a hospital"], "label": [float("nan"), 1.0]}))


def _jsonl_null_label(ctx: Ctx) -> Path:
    return ctx.file("d.jsonl", '{"text": "the army base", "label": null}\n{"text": "a hospital", "label": "H"}\n')


def _string_numbers_model(folder: Path) -> None:
    """Rename the trained model's classes to "1".."4", as if it had been trained on numeric labels."""
    numbers = ["1", "2", "3", "4"]

    def edit(config):
        config["id2label"] = {str(i): n for i, n in enumerate(numbers)}
        config["label2id"] = {n: i for i, n in enumerate(numbers)}

    _edit_json(folder, "config.json", edit)
    _edit_json(folder, "textshift.json", lambda meta: meta.update(labels=numbers))


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Ctx], list]
    expect: str


def _no_tokenizer(folder: Path) -> None:
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)


def _settings_not_object(folder: Path) -> None:
    _edit_json(folder, "textshift.json", lambda meta: meta.update(settings=[1]))


def _metrics_null(folder: Path) -> None:
    _edit_json(folder, "textshift.json", lambda meta: meta.update(metrics=None))


def _into_itself(command: str, *extra: str) -> Callable[[Ctx], list]:
    """A command whose -o is its own input model folder (a copy of the trained model)."""
    def argv(c: Ctx) -> list:
        folder = c.copy_model()
        return [command, folder, c.bills, "-o", folder, *extra]

    return argv


BAD = [
    # train
    Case("train-unclosed-quote", lambda c: ["train", c.file("d.csv", UNCLOSED_QUOTE), "-o", c.out(), *c.tiny],
         "the quote (\") opened on line 2 is never closed"),
    Case("train-ragged-csv", lambda c: ["train", c.file("d.csv", RAGGED), "-o", c.out(), *c.tiny], "line 3 has 4"),
    Case("train-ragged-tsv", lambda c: ["train", c.file("d.tsv", RAGGED_TSV), "-o", c.out(), *c.tiny],
         "line 3 has 3"),
    Case("train-broken-jsonl", lambda c: ["train", c.file("d.jsonl", BROKEN_JSONL), "-o", c.out(), *c.tiny],
         "line 2 of d.jsonl is not valid JSON"),
    Case("train-jsonl-not-objects", lambda c: ["train", c.file("d.jsonl", JSONL_NOT_OBJECTS), "-o", c.out(),
                                               *c.tiny], "line 2 of d.jsonl is a list"),
    Case("train-random-parquet", lambda c: ["train", c.file("d.parquet", RANDOM_BYTES), "-o", c.out(), *c.tiny],
         "not a valid Parquet file"),
    Case("train-latin1", lambda c: ["train", c.file("d.csv", LATIN1), "-o", c.out(), *c.tiny], "not valid UTF-8"),
    Case("train-utf16-no-bom", lambda c: ["train", c.file("d.csv", UTF16), "-o", c.out(), *c.tiny], "UTF-16"),
    Case("train-nan-labels", lambda c: ["train", _nan_labels(c), "-o", c.out(), *c.tiny], "missing label"),
    Case("train-single-class", lambda c: ["train", c.file("d.csv", b"text,label\na,x\nb,x\n"), "-o", c.out(),
                                          *c.tiny], "only one class"),
    Case("train-negative-epochs", lambda c: ["train", c.news, "-o", c.out(), "--backbone", c.backbone,
                                             "--epochs", "-1"], "'epochs' setting must be >= 0"),
    Case("train-zero-lr", lambda c: ["train", c.news, "-o", c.out(), "--backbone", c.backbone, "--lr", "0"],
         "'learning_rate' setting must be in (0, 1)"),
    Case("train-empty-backbone", lambda c: ["train", c.news, "-o", c.out(), "--backbone",
                                            str(c.copy_model(_empty)), *FAST], "has no config.json"),
    Case("train-broken-val-data", lambda c: ["train", c.news, "-o", c.out(), "--val-data",
                                             c.file("v.jsonl", BROKEN_JSONL), *c.tiny], "not valid JSON"),
    Case("train-negative-memory", lambda c: ["train", c.news, "-o", c.out(), "--memory-per-class", "-1", *c.tiny],
         "--memory-per-class must be >= 0"),
    # predict
    Case("predict-truncated-parquet", lambda c: ["predict", c.trained, _truncated_parquet(c), "-o",
                                                 c.out("p.csv")], "not a valid Parquet file"),
    Case("predict-ragged-csv", lambda c: ["predict", c.trained, c.file("d.csv", RAGGED), "-o", c.out("p.csv")],
         "line 3 has 4"),
    Case("predict-whitespace-texts", lambda c: ["predict", c.trained, c.file("d.csv", WHITESPACE), "-o",
                                                c.out("p.csv")], "empty or whitespace-only"),
    Case("predict-top-k-0", lambda c: ["predict", c.trained, c.bills, "-o", c.out("p.csv"), "--top-k", "0"],
         "--top-k must be >= 1"),
    Case("predict-chunk-size-0", lambda c: ["predict", c.trained, c.bills, "-o", c.out("p.csv"), "--chunk-size",
                                            "0"], "--chunk-size must be >= 1"),
    Case("predict-unknown-device", lambda c: ["predict", c.trained, c.bills, "-o", c.out("p.csv"), "--device",
                                              "gpu0"], "unknown device 'gpu0'"),
    Case("predict-missing-data", lambda c: ["predict", c.trained, c.tmp / "nope.csv", "-o", c.out("p.csv")],
         "not found"),
    Case("predict-unknown-extension", lambda c: ["predict", c.trained, c.file("d.xlsx", GOOD), "-o",
                                                 c.out("p.csv")], "cannot tell the format"),
    Case("predict-output-not-csv", lambda c: ["predict", c.trained, c.bills, "-o", c.out("p.txt")],
         "cannot tell the format"),
    Case("predict-empty-model-folder", lambda c: ["predict", c.copy_model(_empty), c.bills, "-o", c.out("p.csv")],
         "has no config.json"),
    Case("predict-pickle-only", lambda c: ["predict", c.copy_model(_pickle_only), c.bills, "-o", c.out("p.csv")],
         "will not unpickle"),
    Case("predict-pickle-pt", lambda c: ["predict", c.copy_model(_pickle_pt), c.bills, "-o", c.out("p.csv")],
         "will not unpickle"),
    Case("predict-utf16-jsonl", lambda c: ["predict", c.trained, c.file("d.jsonl", '{"text": "x"}\n'
                                                                         .encode("utf-16")), "-o", c.out("p.csv")],
         "UTF-16"),
    # evaluate
    Case("evaluate-broken-jsonl", lambda c: ["evaluate", c.trained, c.file("d.jsonl", BROKEN_JSONL),
                                             "--confusion", c.out("cm.png")], "line 2 of d.jsonl"),
    Case("evaluate-directory-as-data", lambda c: ["evaluate", c.trained, c.tmp, "--confusion", c.out("cm.png")],
         "is a folder; expected a data file"),
    Case("evaluate-num-labels-vs-head", lambda c: ["evaluate", c.copy_model(_fewer_labels), c.bills,
                                                   "--confusion", c.out("cm.png")],
         "config.json has 3 labels but model.safetensors has a classifier for 4"),
    Case("evaluate-float-labels-as-text", lambda c: ["evaluate", c.copy_model(_string_numbers_model),
                                                     c.file("d.csv", b"text,label\nthe army,1.0\nhospital,2.0\n"),
                                                     "--confusion", c.out("cm.png")],
         "written as 1.0, 2.0 in d.csv but as 1, 2 by the model"),
    Case("evaluate-missing-label-column", lambda c: ["evaluate", c.trained, c.file("d.csv", b"text,topic\na,b\n"),
                                                     "--confusion", c.out("cm.png")], "Pass --label-column topic"),
    Case("evaluate-missing-model", lambda c: ["evaluate", c.tmp / "no-model", c.bills, "--confusion",
                                              c.out("cm.png")], "model folder"),
    Case("evaluate-confusion-not-png", lambda c: ["evaluate", c.trained, c.bills, "--confusion",
                                                  c.file("d.csv", GOOD)], "must end in .png"),
    Case("evaluate-confusion-exists", lambda c: ["evaluate", c.trained, c.bills, "--confusion",
                                                 c.file("cm.png", b"a user's picture")],
         "is not a confusion-matrix PNG; expected a new file (textshift replaces only what it wrote)"),
    Case("evaluate-confusion-missing-folder", lambda c: ["evaluate", c.trained, c.bills, "--confusion",
                                                         c.tmp / "no" / "cm.png"], "does not exist"),
    # info
    Case("info-no-tokenizer", lambda c: ["info", c.copy_model(_no_tokenizer)], "has no tokenizer files"),
    Case("info-settings-not-object", lambda c: ["info", c.copy_model(_settings_not_object)],
         "'settings' is a JSON array, expected a JSON object"),
    Case("info-metrics-null", lambda c: ["info", c.copy_model(_metrics_null)], "'metrics' is a JSON null"),
    Case("info-tokenizer-vocab-vs-weights", lambda c: ["info", c.copy_model(_bigger_tokenizer)],
         "the tokenizer has 2005 tokens but model.safetensors embeds only 1505"),
    Case("info-config-vocab-vs-weights", lambda c: ["info", c.copy_model(_other_vocab_size)],
         "config.json has vocab_size 1605 but model.safetensors"),
    Case("info-weights-of-another-model", lambda c: ["info", c.copy_model(_weights_of_another_model)],
         "model.safetensors has a classifier for 2"),
    Case("info-missing-head", lambda c: ["info", c.copy_model(_missing_head)], "classifier.weight"),
    Case("info-broken-config", lambda c: ["info", c.copy_model(_broken_config)], "config.json is not valid JSON"),
    Case("info-broken-meta", lambda c: ["info", c.copy_model(_broken_meta)], "textshift.json is not valid"),
    Case("info-file-not-folder", lambda c: ["info", c.news], "is a file; expected a model folder"),
    # data export
    Case("export-unknown-dataset", lambda c: ["data", "export", "nonsense", c.out("x.csv")],
         "unknown embedded dataset"),
    Case("export-unknown-extension", lambda c: ["data", "export", "news", c.out("x.xlsx")],
         "cannot tell the format"),
    Case("export-missing-folder", lambda c: ["data", "export", "bills-test", c.out("no/such/folder/x.csv")],
         "folder"),
    # transfer
    Case("transfer-header-only", lambda c: ["transfer", c.trained, c.file("d.csv", b"text,label\n"), "-o", c.out(),
                                            "--epochs", "1"], "no data rows"),
    Case("transfer-negative-epochs", lambda c: ["transfer", c.trained, c.bills, "-o", c.out(), "--epochs", "-2"],
         "'epochs' setting must be >= 0"),
    Case("transfer-unknown-strategy", lambda c: ["transfer", c.trained, c.bills, "-o", c.out(), "--strategy",
                                                 "magic"], "unknown strategy 'magic'"),
    Case("transfer-missing-source", lambda c: ["transfer", c.tmp / "none", c.bills, "-o", c.out()], "not found"),
    Case("transfer-broken-unlabeled", lambda c: ["transfer", c.trained, c.bills, "-o", c.out(), "--strategy",
                                                 "adapt", "--unlabeled", c.file("u.csv", UNCLOSED_QUOTE),
                                                 "--epochs", "1"], "is never closed"),
    Case("transfer-into-its-source", _into_itself("transfer", "--strategy", "zero-shot"),
         "is the input model folder"),
    Case("transfer-over-a-model", lambda c: ["transfer", c.trained, c.bills, "-o", c.copy_model(), "--strategy",
                                             "zero-shot"], "already exists (a textshift model folder)"),
    # train
    Case("train-over-a-model", lambda c: ["train", c.news, "-o", c.copy_model(), *c.tiny],
         "already exists (a textshift model folder); expected a new folder. Pass --overwrite"),
    Case("train-val-data-of-other-classes", lambda c: ["train", c.news, "-o", c.out(), *c.tiny, "--val-data",
                                                       c.file("v.csv", b"text,label\nx y,Nope\nz w,Other\n")],
         "none of the validation labels"),
    Case("train-nothing-to-train", lambda c: ["train", c.news, "-o", c.out(), "--backbone", c.backbone, "--epochs",
                                              "0", "--warmup-epochs", "0"], "would save an untrained model"),
    Case("train-max-length-over-positions", lambda c: ["train", c.news, "-o", c.out(), *c.tiny, "--max-length",
                                                       "512"], "longer than this model takes (128 tokens"),
    # predict
    Case("predict-meta-device", lambda c: ["predict", c.trained, c.bills, "-o", c.out("p.csv"), "--device",
                                           "meta"], "cannot run a model"),
    Case("predict-compressed-output", lambda c: ["predict", c.trained, c.bills, "-o", c.out("p.csv.gz")],
         "Use a .csv path"),
    # compare
    Case("compare-sizes-not-numbers", lambda c: ["compare", c.trained, c.bills, "-o", c.out(), "--sizes", "ten,20"],
         "comma-separated list of ints"),
    Case("compare-seeds-0", lambda c: ["compare", c.trained, c.bills, "-o", c.out(), "--seeds", "0"],
         "seeds must be >= 1"),
    Case("compare-empty-model", lambda c: ["compare", c.copy_model(_empty), c.bills, "-o", c.out(), "--sizes",
                                           "20", "--seeds", "1"], "has no config.json"),
    Case("compare-size-too-large", lambda c: ["compare", c.trained, c.bills, "-o", c.out(), "--sizes", "5000",
                                              "--seeds", "1", "--baselines", "none"], "Pass smaller --sizes"),
    Case("compare-corrupt-test", lambda c: ["compare", c.trained, c.bills, "-o", c.out(), "--test",
                                            c.file("t.parquet", RANDOM_BYTES)], "not a valid Parquet file"),
    # grow
    Case("grow-missing-columns", lambda c: ["grow", c.trained, c.file("d.csv", b"body,topic\nx,y\n"), "-o",
                                            c.out(), *FAST], "Pass --text-column body"),
    Case("grow-pickle-model", lambda c: ["grow", c.copy_model(_pickle_only), c.bills, "-o", c.out(), *FAST],
         "will not unpickle"),
    Case("grow-negative-epochs", lambda c: ["grow", c.trained, c.bills, "-o", c.out(), "--epochs", "-1"],
         "'epochs' setting must be >= 0"),
    Case("grow-mismatched-model", lambda c: ["grow", c.copy_model(_fewer_labels), c.bills, "-o", c.out(), *FAST],
         "config.json has 3 labels"),
    Case("grow-into-itself", _into_itself("grow", *FAST), "is the input model folder"),
    # inspect
    Case("inspect-over-a-folder", lambda c: ["inspect", c.bills, "-o", c.copy_model()],
         "is not an inspect report"),
    Case("inspect-empty-file", lambda c: ["inspect", c.file("d.csv", b""), "-o", c.out()], "empty (0 bytes)"),
    Case("inspect-missing-file", lambda c: ["inspect", c.tmp / "none.jsonl", "-o", c.out()], "not found"),
    Case("inspect-random-jsonl", lambda c: ["inspect", c.file("d.jsonl", RANDOM_BYTES), "-o", c.out()],
         "d.jsonl"),
    Case("inspect-null-label", lambda c: ["inspect", _jsonl_null_label(c), "-o", c.out()], "missing label"),
    Case("inspect-broken-model", lambda c: ["inspect", c.bills, "-o", c.out(), "--model",
                                            c.copy_model(_other_vocab_size)], "vocab_size"),
    # review
    Case("review-host-not-here", lambda c: ["review", c.file("d.csv", GOOD), "--host", "999.1.1.1", "--port", "0"],
         "expected an address of this machine"),
    Case("review-port-out-of-range", lambda c: ["review", c.file("d.csv", GOOD), "--port", "99999"],
         "port must be a whole number between 0 and 65535"),
    # review --export
    Case("review-export-no-log", lambda c: ["review", c.file("d.csv", GOOD), "--export", c.out("clean.csv")],
         "no edit log"),
    Case("review-export-broken-data", lambda c: ["review", c.file("d.csv", RAGGED), "--export", c.out("clean.csv")],
         "line 3 has 4"),
    Case("review-export-latin1", lambda c: ["review", c.file("d.csv", LATIN1), "--export", c.out("clean.csv")],
         "not valid UTF-8"),
]


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_input(case, model, tiny_backbone, small_news, small_bills, tmp_path, run_cli):
    ctx = Ctx(tmp_path, model, tiny_backbone, small_news, small_bills)
    argv = case.argv(ctx)
    result = run_cli(*argv)
    assert result.exit_code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result
    assert "Traceback" not in result.stderr
    assert case.expect in lines[0], result
    if ctx.output is not None:
        assert not ctx.output.exists(), f"{ctx.output} left behind"
        folder = ctx.output.parent if ctx.output.parent.exists() else ctx.tmp / "result"
        left = [p.name for p in folder.iterdir()]
        assert not left, f"left behind in the output folder: {left}"


def test_the_matrix_is_large_enough():
    commands = {case.id.split("-")[0] for case in BAD}
    assert len(BAD) >= 45
    assert commands >= {"train", "predict", "evaluate", "info", "export", "transfer", "compare", "grow", "inspect",
                        "review"}


# Inputs that look odd but must work --------------------------------------------------------------------------
def test_utf8_bom_and_mixed_line_endings_load(model, tmp_path, run_cli):
    data = tmp_path / "d.csv"
    data.write_bytes(b"\xef\xbb\xbftext,label\r\nthe army base,Defense\na new hospital,Health\r\nschool,Health\n")
    out = tmp_path / "p.csv"
    result = run_cli("predict", model, data, "-o", out)
    assert result.exit_code == 0, result
    predictions = pd.read_csv(out)
    assert predictions["text"].tolist() == ["the army base", "a new hospital", "school"]
    result = run_cli("evaluate", model, data, "--confusion", tmp_path / "cm.png", "-q")
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["rows"] == 3


@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_bom_in_other_formats(model, tmp_path, run_cli, suffix):
    data = tmp_path / f"d{suffix}"
    body = '{"text": "the army base"}\n' if suffix == ".jsonl" else "text\nthe army base\n"
    data.write_bytes(b"\xef\xbb\xbf" + body.encode())
    result = run_cli("predict", model, data, "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result


def test_huge_text_is_truncated_not_crashed(model, tmp_path, run_cli):
    data = tmp_path / "d.csv"
    pd.DataFrame({"text": ["war " * 50_000, "a hospital"]}).to_csv(data, index=False)
    assert len(pd.read_csv(data).text[0]) == 200_000
    result = run_cli("predict", model, data, "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result
    assert len(pd.read_csv(tmp_path / "p.csv")) == 2


def test_numeric_labels_match_whatever_their_type(model, tmp_path, run_cli):
    """A model trained on labels "1".."4" scores data whose labels are 1, 1.0 or "1" alike."""
    numbers = tmp_path / "m"
    shutil.copytree(model, numbers)
    _string_numbers_model(numbers)
    lines = [{"text": "the army base", "label": 1}, {"text": "a new hospital", "label": 2.0},
             {"text": "school", "label": "3"}]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = run_cli("evaluate", numbers, data, "--confusion", tmp_path / "cm.png", "-q")
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["unseen_labels"] == []
    parquet = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["war", "health"], "label": [1.0, 4.0]}).to_parquet(parquet)
    result = run_cli("evaluate", numbers, parquet, "--confusion", tmp_path / "cm.png", "--overwrite", "-q")
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["unseen_labels"] == []


def test_refused_outputs_are_left_as_they_were(model, small_bills, tmp_path, run_cli):
    """-o naming the input model, or an existing model without --overwrite: the folder's bytes do not change."""
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for argv in (["transfer", folder, small_bills, "-o", folder, "--strategy", "zero-shot", "--overwrite"],
                 ["transfer", model, small_bills, "-o", folder, "--strategy", "zero-shot"]):
        result = run_cli(*argv)
        assert result.exit_code == 2, result
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    replaced = run_cli("transfer", model, small_bills, "-o", folder, "--strategy", "zero-shot", "--overwrite", "-q")
    assert replaced.exit_code == 0, replaced
    assert json.loads((folder / "textshift.json").read_text())["strategy"] == "zero-shot"
