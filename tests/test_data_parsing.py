"""Parsing edge cases found by the data audit: TSV quotes, ragged and duplicate columns, compression, JSON arrays."""

from __future__ import annotations

import bz2
import gzip
import json
import re

import pandas as pd
import pytest

from textshift.data import atomic_write_frame, iter_text_chunks, read_labeled
from textshift.errors import DataError


def _raises(message: str):
    return pytest.raises(DataError, match=re.escape(message))


def test_tsv_quotes_are_plain_text(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('text\tlabel\n"Quoted" word\tA\n"opens here\tB\nthird\tC\ncloses" here\tD\nfifth\tE\n')
    data = read_labeled(path)
    assert data.texts == ['"Quoted" word', '"opens here', "third", 'closes" here', "fifth"]
    assert data.labels == ["A", "B", "C", "D", "E"]
    assert [len(chunk) for chunk in iter_text_chunks(path, chunk_size=2)] == [2, 2, 1]


def test_tsv_is_written_without_quoting_and_refuses_tabs(tmp_path):
    frame = pd.DataFrame({"text": ['He said "hi"', '"Quoted" word'], "label": ["a", "b"]})
    path = atomic_write_frame(frame, tmp_path / "d.tsv")
    assert read_labeled(path).texts == frame.text.tolist()
    with _raises("column 'text' has a tab or line break (row 2)"):
        atomic_write_frame(pd.DataFrame({"text": ["fine", "a\tb"]}), tmp_path / "e.tsv")
    assert not (tmp_path / "e.tsv").exists()


def test_tsv_ragged_row_advice_does_not_mention_quotes(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\nfine\tA\nhas\ta tab\tB\n")
    with pytest.raises(DataError, match="line 3 has 3 fields but the header has 2") as caught:
        read_labeled(path)
    assert "quote" not in str(caught.value)


@pytest.mark.parametrize("content,line", [
    ("text,label\nhello, world,Health\nfoo, bar,Macro\n", 2),  # pandas took the first field as the index
    ("text,label\nhello, world,Health\nfoo,Macro\n", 2),  # used to blame line 3 for a missing label
    ("text,label\n\nfine,A\nhello, world,Health\n", 4),
    ('text,label\n"two\nlines",A\nfine,B\nhello, world,Health\n', 5),  # pandas counts rows, not lines
])
def test_rows_with_more_fields_than_the_header_name_their_line(tmp_path, content, line):
    path = tmp_path / "d.csv"
    path.write_text(content)
    message = f"d.csv: line {line} has 3 fields but the header has 2"
    with _raises(message):
        read_labeled(path)
    with _raises(message):
        list(iter_text_chunks(path, chunk_size=1))


def test_error_says_to_quote_texts_with_commas(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nhello, world,Health\n")
    with _raises('Put texts that contain commas in double quotes ("...")'):
        read_labeled(path)


@pytest.mark.parametrize("suffix,header", [(".csv", "text,label,label"), (".tsv", "text\tlabel\tlabel")])
def test_duplicate_column_names_are_refused(tmp_path, suffix, header):
    path = tmp_path / f"d{suffix}"
    path.write_text(f"{header}\n" + ("a,b,c\n" if suffix == ".csv" else "a\tb\tc\n"))
    with _raises(f"d{suffix} has more than one column named 'label'"):
        read_labeled(path)
    with _raises("more than one column named 'label'"):
        list(iter_text_chunks(path))


def test_text_and_label_column_must_differ(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,b\nc,d\n")
    with _raises("the text and label columns must differ; got 'text' for both"):
        read_labeled(path, text_column="text", label_column="text")
    with _raises("the text and label columns must differ; got 'label' for both"):
        read_labeled(path, text_column="label")
    assert read_labeled(path, text_column="label", require_labels=False).texts == ["b", "d"]


@pytest.mark.parametrize("suffix,compress", [(".csv.gz", gzip.compress), (".tsv.bz2", bz2.compress),
                                             (".jsonl.gz", gzip.compress)])
def test_compressed_files_are_read(tmp_path, suffix, compress):
    path = tmp_path / f"d{suffix}"
    if ".jsonl" in suffix:
        body = "".join(json.dumps({"text": t, "label": n}) + "\n" for t, n in [("a", "x"), ("b", "y"), ("c", "x")])
    else:
        sep = "," if ".csv" in suffix else "\t"
        body = f"text{sep}label\na{sep}x\nb{sep}y\nc{sep}x\n"
    path.write_bytes(compress(body.encode()))
    data = read_labeled(path)
    assert data.texts == ["a", "b", "c"] and data.labels == ["x", "y", "x"]
    assert [len(chunk) for chunk in iter_text_chunks(path, chunk_size=2)] == [2, 1]


def test_compressed_output_round_trips(tmp_path):
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    path = atomic_write_frame(frame, tmp_path / "d.csv.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert read_labeled(path).texts == ["a", "b"]


@pytest.mark.parametrize("name,content,message", [
    ("d.csv.gz", b"text,label\na,b\n", "d.csv.gz is not valid gzip data"),
    ("d.csv.gz", gzip.compress(b"text,label\n" + b"".join(b"text %d,x\n" % i for i in range(5000)))[:9000],
     "d.csv.gz is not valid gzip data (Compressed file ended"),
    ("d.csv.zst", b"\x28\xb5\x2f\xfd", "d.csv.zst is zstd-compressed"),
    ("d.parquet.gz", b"\x1f\x8b", "d.parquet.gz: Parquet files are compressed inside"),
])
def test_bad_or_unsupported_compression_is_named(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with _raises(message):
        read_labeled(path)


@pytest.mark.parametrize("indent", [None, 2])
def test_json_array_is_refused_with_conversion_advice(tmp_path, indent):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}], indent=indent))
    with _raises("d.json holds a JSON array; expected JSON Lines (one object per line). Convert it with "
                 "`jq -c '.[]' d.json > d.jsonl`"):
        read_labeled(path)


def test_jsonl_line_that_is_a_list_of_values_keeps_its_message(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('["b", "y"]\n')
    with _raises("line 1 of d.jsonl is a list"):
        read_labeled(path)


def test_named_label_column_that_is_missing_lists_the_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text\na\nb\n")
    with _raises("label column 'topic' not found in d.csv; columns are text."):
        read_labeled(path, label_column="topic", require_labels=False)
    assert not read_labeled(path, require_labels=False).has_labels


def test_huge_json_numbers_keep_their_spelling(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 1e400}\n{"text": "b", "label": Infinity}\n{"text": "c", "label": 2.0}\n')
    assert read_labeled(path).labels == ["1e400", "Infinity", "2"]


def test_duplicate_columns_are_found_when_the_first_text_is_huge(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label,label\n" + "war " * 50_000 + ",a,b\n")
    with _raises("more than one column named 'label'"):
        read_labeled(path)
