"""Property test of the data loader: any bytes in a data file either load or raise textshift's own error.

For each format, hypothesis writes arbitrary bytes, text near the format (CSV-like cells, JSON lines) and
damaged copies of a valid file, then calls :func:`read_labeled`, :func:`read_texts` and
:func:`iter_text_chunks`. Whatever happens must be a result or a :class:`~textshift.errors.TextshiftError`;
a pandas, pyarrow, json or Unicode exception escaping would be a bug.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textshift.data import iter_text_chunks, read_labeled, read_texts
from textshift.errors import TextshiftError

SUFFIXES = [".csv", ".tsv", ".jsonl", ".parquet"]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _valid_bytes(suffix: str) -> bytes:
    frame = pd.DataFrame({"text": ["the army base", "a new hospital", "tax, cuts", 'say "hi"'],
                          "label": ["Defense", "Health", "Macro", "1"], "extra": [1, 2.5, None, 4]})
    buffer = io.BytesIO()
    if suffix == ".parquet":
        frame.to_parquet(buffer, index=False)
    elif suffix == ".jsonl":
        frame.to_json(buffer, orient="records", lines=True)
    else:
        frame.to_csv(buffer, index=False, sep="," if suffix == ".csv" else "\t")
    return buffer.getvalue()


def _damaged(valid: bytes) -> st.SearchStrategy[bytes]:
    """A valid file truncated, with a slice replaced, or with bytes inserted."""
    size = len(valid)

    def apply(edit):
        kind, at, length, payload = edit
        at = min(at, size)
        if kind == "truncate":
            return valid[:at]
        if kind == "replace":
            return valid[:at] + payload + valid[at + length:]
        return valid[:at] + payload + valid[at:]

    return st.tuples(st.sampled_from(["truncate", "replace", "insert"]), st.integers(0, size),
                     st.integers(0, 64), st.binary(max_size=32)).map(apply)


CELL = st.one_of(st.text(max_size=12), st.sampled_from(['"', '""', ",", "\t", "\r", "\n", "\ufeff", " ", "\x00",
                                                        "NaN", "1.0", "text", "label", "\\"]))


def _tabular(sep: str) -> st.SearchStrategy[bytes]:
    rows = st.lists(st.lists(CELL, min_size=0, max_size=4), min_size=0, max_size=6)
    header = st.sampled_from(["text,label", "text", "label,text", "text,text", "", "text,label,"])
    encoding = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])

    def build(parts):
        head, body, codec, ending = parts
        lines = [head.replace(",", sep)] + [sep.join(row) for row in body]
        return ending.join(lines).encode(codec, errors="replace")

    return st.tuples(header, rows, encoding, st.sampled_from(["\n", "\r\n", "\r"])).map(build)


JSON_VALUE = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
                          lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                          max_leaves=6)
RECORD = st.fixed_dictionaries({}, optional={"text": JSON_VALUE, "label": JSON_VALUE, "other": JSON_VALUE})


def _json_lines() -> st.SearchStrategy[bytes]:
    line = st.one_of(RECORD.map(lambda r: json.dumps(r, allow_nan=True)), JSON_VALUE.map(json.dumps),
                     st.text(max_size=20))
    return st.lists(line, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", errors="replace"))


def _contents(suffix: str) -> st.SearchStrategy[bytes]:
    valid = _valid_bytes(suffix)
    options = [st.binary(max_size=600), _damaged(valid), st.just(valid)]
    if suffix in (".csv", ".tsv"):
        options.append(_tabular("," if suffix == ".csv" else "\t"))
    elif suffix == ".jsonl":
        options.append(_json_lines())
    return st.one_of(*options)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_everything(path: Path) -> None:
    for load in (lambda: read_labeled(path), lambda: read_texts(path),
                 lambda: [len(chunk) for chunk in iter_text_chunks(path, chunk_size=2)]):
        with contextlib.suppress(TextshiftError):
            load()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_any_bytes_load_or_raise_textshift_error(suffix, folder):
    @FUZZ
    @given(content=_contents(suffix))
    def check(content: bytes) -> None:
        with tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False) as handle:
            handle.write(content)
        path = Path(handle.name)
        try:
            _load_everything(path)
        finally:
            path.unlink()

    check()


def test_the_valid_seed_files_load(folder):
    for suffix in SUFFIXES:
        path = folder / f"seed{suffix}"
        path.write_bytes(_valid_bytes(suffix))
        data = read_labeled(path)
        assert data.texts[2] == "tax, cuts" and data.labels == ["Defense", "Health", "Macro", "1"]
        assert sum(len(chunk) for chunk in iter_text_chunks(path, chunk_size=3)) == 4


def test_parquet_with_invalid_utf8_strings_is_refused(folder):
    """Found by the property test: pyarrow reads strings lazily, so bad UTF-8 used to escape as ArrowException."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from textshift.errors import DataError

    texts = pa.array([b"\xffhe army base", b"a new hospital"], type=pa.binary()).view(pa.string())
    path = folder / "bad-utf8.parquet"
    pq.write_table(pa.table({"text": texts, "label": ["Defense", "Health"]}), path)
    with pytest.raises(DataError, match="not valid UTF-8"):
        read_labeled(path)
    with pytest.raises(DataError, match="not valid UTF-8"):
        list(iter_text_chunks(path))
