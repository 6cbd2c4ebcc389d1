"""Loading and validating data files: formats, columns, and every kind of bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from textshift.data import TextData, check_trainable, export_embedded, iter_text_chunks, read_labeled, read_texts
from textshift.errors import DataError, DataFileNotFoundError


def _frame():
    return pd.DataFrame({"text": ["tax cut", "new hospital", "army base", "school lunch"],
                         "label": ["Macro", "Health", "Defense", "Education"]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_reads_every_format(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    frame = _frame()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    data = read_labeled(path)
    assert data.texts == frame.text.tolist() and data.labels == frame.label.tolist()
    chunks = list(iter_text_chunks(path, chunk_size=3))
    assert [len(c) for c in chunks] == [3, 1] and chunks[1].index[0] == 3


def test_numeric_labels_become_strings(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": n}) for t, n in [("a", 1), ("b", 2)]))
    assert read_labeled(path).labels == ["1", "2"]


def test_embedded_data():
    bills = read_labeled("embedded:bills-train")
    assert len(bills) == 3000 and set(bills.frame.split) == {"train"}
    assert len(read_labeled("embedded:bills-test")) == 1449
    assert len(read_labeled("embedded:news")) == 3104
    assert "Health" in bills.classes


def test_export_embedded(tmp_path):
    out = export_embedded("bills-test", tmp_path)
    assert len(pd.read_csv(out)) == 1449
    with pytest.raises(FileExistsError):
        export_embedded("bills-test", out)


@pytest.mark.parametrize("content,message", [
    (b"", "empty (0 bytes)"),
    (b"text,label\n", "header but no data rows"),
    (b"body,topic\nx,y\n", "text column 'text' not found in d.csv; columns are body, topic. Pass --text-column body"),
    (b"text,topic\nx,y\n", "label column 'label' not found in d.csv; columns are text, topic. Pass --label-column"),
    (b"text,label\nfine,a\n   ,b\n", "1 empty or whitespace-only text"),
    (b"text,label\nfine,a\nother,\n", "1 missing label"),
    (b"text,label\ncaf\xe9,a\n", "not valid UTF-8"),
    (b'text,label\n"unclosed,a\nb,c\n', "cannot parse"),
])
def test_bad_csv(tmp_path, content, message):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_labeled(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="not found"):
        read_labeled(tmp_path / "nope.csv")


def test_unknown_extension(tmp_path):
    path = tmp_path / "d.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match="cannot tell the format"):
        read_labeled(path)


def test_one_class_is_refused_and_singletons_warn():
    with pytest.raises(DataError, match="only one class"):
        check_trainable(TextData.from_lists(["a", "b"], ["x", "x"]))
    warnings = check_trainable(TextData.from_lists(["a", "b", "c"], ["x", "x", "y"]))
    assert "single example" in warnings[0]


def test_unlabelled_read(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("text\nhello\nworld\n")
    data = read_texts(path)
    assert not data.has_labels and data.texts == ["hello", "world"]


@pytest.mark.parametrize("content,message", [
    (b'{"text": "a", "label": "x"}\n{"text": "b", "label": \n', "line 2 of d.jsonl is not valid JSON"),
    (b'{"text": "a", "label": "x"}\n["b", "y"]\n', "line 2 of d.jsonl is a list; expected one JSON object"),
    (b'{"text": ["a", "b"], "label": "x"}\n', "1 value(s) that are not text (list)"),
    (b'{"text": "a", "label": {"k": 1}}\n', "label(s) that are not a string or number (dict)"),
    (b'{"text": "a", "label": null}\n', "1 missing label(s) in column 'label' (line 1)"),
    ('{"text": "a", "label": "x"}\n'.encode("utf-16"), "UTF-16"),
])
def test_bad_jsonl(tmp_path, content, message):
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        read_labeled(path)


@pytest.mark.parametrize("content,message", [
    (b"text,label\na,b\nc,d,e,f\n", "d.csv: line 3 has 4 fields but the header has 2"),
    (b'text,label\n"open,a\nb,c\n', 'the quote (") opened on line 2 is never closed'),
    ("text,label\na,b\n".encode("utf-16-le"), "UTF-16"),
])
def test_csv_messages_name_the_line(tmp_path, content, message):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_labeled(path)


def test_bom_and_mixed_line_endings_load(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\r\nfirst,a\nsecond,b\r\n")
    data = read_labeled(path)
    assert data.texts == ["first", "second"] and data.labels == ["a", "b"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"text": "first", "label": 1}\r\n\n{"text": "second", "label": 2.0}\n')
    assert read_labeled(jsonl).labels == ["1", "2"]


def test_chunked_messages_give_the_line_in_the_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,id\none,1\ntwo,2\nthree,3\nfour,4\n   ,5\n")
    with pytest.raises(DataError, match=r"\(line 6\)"):
        list(iter_text_chunks(path, chunk_size=2))


def test_label_spelling_is_checked_against_the_model():
    from textshift.data import check_label_spelling

    check_label_spelling(TextData.from_lists(["a", "b"], ["1", "2"]), ["1", "2", "3"])
    check_label_spelling(TextData.from_lists(["a", "b"], [1.0, 2]), ["1", "2"])
    with pytest.raises(DataError, match="written as 1.0 in <memory> but as 1 by the model"):
        check_label_spelling(TextData.from_lists(["a", "b"], ["1.0", "2"]), ["1", "2"])


def test_export_embedded_in_another_format_and_to_a_missing_folder(tmp_path):
    out = export_embedded("bills-test", tmp_path / "b.parquet")
    assert len(pd.read_parquet(out)) == 1449
    with pytest.raises(DataError, match="does not exist"):
        export_embedded("news", tmp_path / "missing" / "n.csv")
    assert not (tmp_path / "missing").exists()
