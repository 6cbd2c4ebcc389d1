"""Loading labelled and unlabelled texts from CSV, TSV, JSONL and Parquet, and the embedded data.

Data flows one way through textshift: :func:`read_labeled` / :func:`read_texts` load and validate a
file into a :class:`TextData`, which the training and prediction code consumes. Large files for
prediction are read in chunks with :func:`iter_text_chunks`, so memory does not grow with the file.

The embedded datasets (``embedded:news``, ``embedded:bills``, ``embedded:bills-train``,
``embedded:bills-test``, ``embedded:topics``) can be passed anywhere a path is accepted.

Example
-------
>>> from textshift.data import read_labeled
>>> bills = read_labeled("embedded:bills-train")
>>> len(bills), bills.labels[:1]
(3000, ['Foreign Trade'])
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import json
import logging
import lzma
import math
import numbers
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from textshift.errors import ConfigError, DataError, DataFileNotFoundError
from textshift.outputs import OutputKind, check_output
from textshift.validation import as_list, check_column_name, check_data_path

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                     ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
EMBEDDED_PREFIX = "embedded:"


@dataclass(frozen=True)
class EmbeddedDataset:
    """A dataset shipped inside the package."""

    name: str
    filename: str
    text_column: str
    label_column: str | None
    split: str | None
    description: str


EMBEDDED = {
    "news": EmbeddedDataset("news", "nyt_headlines.csv", "text", "topic", None,
                            "3,104 New York Times front-page headlines 1996-2006 (Boydstun), Policy Agendas topics"),
    "bills": EmbeddedDataset("bills", "us_bills.csv", "text", "topic", None,
                             "4,449 US congressional bill titles, 107th Congress (Adler & Wilkerson), same topics"),
    "bills-train": EmbeddedDataset("bills-train", "us_bills.csv", "text", "topic", "train",
                                   "the 3,000 'train' rows of the bills"),
    "bills-test": EmbeddedDataset("bills-test", "us_bills.csv", "text", "topic", "test",
                                  "the 1,449 'test' rows of the bills (benchmarks report on these)"),
    "topics": EmbeddedDataset("topics", "cap_topics.csv", "topic", None, None,
                              "the Policy Agendas major-topic codebook (28 codes)"),
}
EMBEDDED_PROVENANCE = (
    "Policy Agendas Project data distributed as sample data of the CRAN package RTextTools 1.4.3 (GPL-3), "
    "converted to UTF-8 CSV. See textshift/embedded/README.md."
)


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a data file: where it was, how many rows were used, and its sha256."""

    path: str
    rows: int
    sha256: str

    def to_dict(self) -> dict:
        """The fingerprint as stored in metadata: a file's path made absolute, so that it still names the file
        when the model is used from another folder (``embedded:NAME`` and in-memory names stay as they are)."""
        path = self.path
        if path and not path.startswith(("embedded:", "<")) and Path(path).expanduser().exists():
            path = os.path.abspath(Path(path).expanduser())
        return {"path": path, "rows": self.rows, "sha256": self.sha256}


@dataclass
class TextData:
    """Validated texts, optional string labels, and the rest of the file's columns.

    Attributes
    ----------
    frame : pandas.DataFrame
        Has a ``text`` column, a ``label`` column when labelled (strings), and every other column of
        the file under its own name. Its index is the 0-based row number in the file.
    fingerprint : Fingerprint
        Identifies the file the rows came from.
    """

    frame: pd.DataFrame
    fingerprint: Fingerprint
    warnings: list[str] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return self.frame["text"].tolist()

    @property
    def labels(self) -> list[str]:
        if "label" not in self.frame:
            raise DataError(f"{self.fingerprint.path} has no labels; expected a label column. "
                            "Pass --label-column NAME")
        return self.frame["label"].tolist()

    @property
    def has_labels(self) -> bool:
        return "label" in self.frame

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted(set(self.labels))

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, positions) -> TextData:
        """Rows at the given positions (0-based, in this object's order), as a new TextData.

        Raises :class:`~textshift.errors.DataError` for a position that is not a whole number or not in
        ``0 .. len(self) - 1`` (negative positions are refused, not counted from the end).
        """
        positions = as_list(positions, what="positions")
        odd = next((i for i, p in enumerate(positions)
                    if isinstance(p, bool) or not isinstance(p, numbers.Integral)), None)
        if odd is not None:
            value = positions[odd]
            raise DataError(f"positions[{odd}] is {value!r} ({type(value).__name__}); expected whole-number row "
                            "positions. For a boolean mask pass [i for i, keep in enumerate(mask) if keep]")
        outside = [p for p in positions if not 0 <= p < len(self)]
        if outside:
            shown = ", ".join(str(p) for p in outside[:5]) + (" …" if len(outside) > 5 else "")
            raise DataError(f"{len(outside)} position(s) out of range ({shown}); expected 0-based positions from 0 "
                            f"to {len(self) - 1} ({len(self)} rows). Negative positions are not counted from the end")
        frame = self.frame.iloc[positions]
        fp = Fingerprint(self.fingerprint.path, len(frame), self.fingerprint.sha256)
        return TextData(frame, fp, list(self.warnings))

    @classmethod
    def from_lists(cls, texts: list[str], labels: list[str] | None = None, *, name: str = "<memory>") -> TextData:
        """Build from Python lists (validated the same way as files).

        ``texts`` and ``labels`` may be any sequences (lists, tuples, pandas Series, numpy arrays) of the same
        length; messages name bad items by their 0-based position. Raises :class:`~textshift.errors.DataError`
        for a bare string, lists of different lengths or missing/non-text items.

        Example
        -------
        >>> TextData.from_lists(["farm aid", "army base"], ["Agriculture", "Defense"]).classes
        ['Agriculture', 'Defense']
        """
        texts = as_list(texts, what="texts")
        if not texts:
            raise DataError("expected at least one text; got an empty list of texts")
        data = {"text": texts}
        if labels is not None:
            labels = as_list(labels, what="labels")
            if len(labels) != len(texts):
                raise DataError(f"got {len(texts)} texts but {len(labels)} labels; expected one label per text. "
                                "Pass two lists of the same length")
            data["label"] = labels
        name = "<memory>" if name is None else str(name)
        frame = pd.DataFrame(data)
        digest = hashlib.sha256()
        for i, text in enumerate(frame["text"]):
            digest.update(str(text).encode() + b"\x1f")
            if labels is not None:
                digest.update(str(frame["label"].iat[i]).encode() + b"\x1e")
        fp = Fingerprint(name, len(frame), digest.hexdigest())
        return _validate(frame, fp, text_column="text", label_column="label" if labels is not None else None,
                         first=0, unit="position")


def embedded_path(name: str) -> Path:
    """Path of an embedded dataset's file (``news``, ``bills``, ``bills-train``, ``bills-test``, ``topics``)."""
    if name not in EMBEDDED:
        raise DataError(f"unknown embedded dataset '{name}'; expected one of {', '.join(EMBEDDED)}. "
                        "Run `textshift data list`")
    return Path(str(resources.files("textshift") / "embedded" / EMBEDDED[name].filename))


def export_embedded(name: str, destination: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Copy an embedded dataset to ``destination`` (a file or an existing folder). Returns the written path.

    For ``bills-train`` / ``bills-test`` only that split's rows are written. The file's extension picks the
    format (.csv, .tsv, .jsonl or .parquet); a folder gets ``NAME.csv``.
    """
    source = embedded_path(name)
    spec = EMBEDDED[name]
    destination = Path(destination)
    if destination.is_dir():
        destination = destination / (f"{name}.csv" if spec.split else spec.filename)
    if not destination.parent.is_dir():
        raise DataError(f"folder {destination.parent} does not exist; expected an existing folder to write "
                        f"{destination.name} into. Create it first (mkdir -p {destination.parent})")
    fmt = detect_format(destination)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
    columns = list(frame.columns)
    export = OutputKind(f"an export of embedded:{name}", folder=False, owns=lambda p: _columns(p) == columns)
    check_output(destination, export, overwrite=overwrite, option="DESTINATION")
    if spec.split:
        frame = frame[frame["split"] == spec.split]
    if fmt == "csv" and not spec.split:
        tmp = destination.with_name(f".{destination.name}.tmp-{os.getpid()}")
        try:
            tmp.write_bytes(source.read_bytes())
            os.replace(tmp, destination)
        finally:
            if tmp.exists():
                tmp.unlink()
    else:
        atomic_write_frame(frame, destination)
    return destination


def _columns(path: Path) -> list[str] | None:
    """The column names of a data file, or None if it is not one textshift can read."""
    try:
        frames = _read_frame(path, detect_format(path), chunksize=1)
        first = frames if isinstance(frames, pd.DataFrame) else next(iter(frames))
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a data file
        return None
    return [str(column) for column in first.columns]


def _resolve(path: str | os.PathLike) -> tuple[Path, EmbeddedDataset | None]:
    text = str(check_data_path(path))
    if text.startswith(EMBEDDED_PREFIX):
        name = text[len(EMBEDDED_PREFIX):]
        return embedded_path(name), EMBEDDED[name]
    return Path(text), None


def detect_format(path: Path) -> str:
    """The format named by the file's extension; CSV, TSV and JSONL may also end in .gz, .bz2 or .xz."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = _compression(path)
    if compression:
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in SUPPORTED_FORMATS:
        raise DataError(f"cannot tell the format of {path}: expected a file ending in .csv, .tsv, .jsonl or "
                        f".parquet, found '{''.join(path.suffixes) or 'no extension'}'. Rename the file")
    fmt = SUPPORTED_FORMATS[suffixes[-1]]
    if compression == "zstd":
        raise DataError(f"{path.name} is zstd-compressed, which textshift does not read or write; expected a plain, "
                        f".gz, .bz2 or .xz file. Use `zstd -d {path.name}` or gzip instead")
    if compression and fmt == "parquet":
        raise DataError(f"{path.name}: Parquet files are compressed inside, so expected a plain .parquet file, found "
                        f"{compression} on top. Decompress it, or drop '{path.suffix}' from the name")
    return fmt


def _compression(path: Path) -> str | None:
    """``gzip``, ``bz2``, ``xz`` or ``zstd`` when the name ends in that after a format's extension, else None."""
    return COMPRESSIONS.get(path.suffix.lower()) if len(path.suffixes) > 1 else None


def _open_binary(path: Path):
    """The file's bytes, decompressed when its name says it is compressed."""
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(_compression(path) or "", open)
    return opener(path, "rb")


def _compression_error(path: Path, exc: Exception) -> DataError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    method = _compression(path)
    return DataError(f"{path.name} is not valid {method} data ({reason[:200]}); expected a complete {method} file, "
                     f"as its '{path.suffix}' ending says. Compress it again, or drop '{path.suffix}' from the name "
                     "if it is not compressed")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataFileNotFoundError(f"data file {path} not found; expected an existing CSV, TSV, JSONL or Parquet "
                                    "file. Check the path")
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected a data file. Pass the file inside it")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); expected a header row and data rows")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}; check its permissions") from exc


def _sniff_text_encoding(path: Path) -> None:
    """Refuse UTF-16/UTF-32 and binary files early: their NUL bytes would otherwise parse as odd column names."""
    try:
        with _open_binary(path) as handle:
            head = handle.read(4096)
    except _DECOMPRESSION_ERRORS as exc:
        raise _compression_error(path, exc) from exc
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        kind = "UTF-16 or UTF-32 text (it has a byte-order mark or NUL bytes)" if (
            head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[1:2] == b"\x00" or head[:1] == b"\x00") \
            else "binary data (it has NUL bytes)"
        raise DataError(f"{path} looks like {kind}; expected UTF-8 text (UTF-16 is not supported). Re-save it "
                        "as UTF-8, e.g. `iconv -f utf-16 -t utf-8`")


def _parse_error(path: Path, fmt: str, exc: Exception) -> DataError:
    """A one-line DataError for a parser exception, naming the line where pandas/pyarrow says it is."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if _compression(path) and isinstance(exc, _DECOMPRESSION_ERRORS):
        return _compression_error(path, exc)
    if isinstance(exc, UnicodeDecodeError):
        return DataError(f"{path} is not valid UTF-8 (byte {exc.start}); expected UTF-8 text. Re-save it as UTF-8, "
                         "e.g. `iconv -f latin1 -t utf-8`")
    if fmt == "parquet" and "utf8" in text.lower().replace("-", ""):
        return DataError(f"{path} has strings that are not valid UTF-8 ({text[:200]}); expected UTF-8 text in "
                         "string columns. Re-export it with valid text")
    if fmt == "parquet":
        return DataError(f"{path} is not a valid Parquet file ({text[:200]}); expected a file written by pandas "
                         "or pyarrow `to_parquet`. Re-export it, or rename it if it is in another format")
    ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if ragged:
        expected, row, found = (int(n) for n in ragged.groups())
        return _ragged_error(path, fmt, _file_line(path, fmt, row), found, expected)
    unclosed = re.search(r"EOF inside string starting at row (\d+)", text)
    if unclosed:
        return DataError(f"cannot parse {path.name} as {fmt.upper()}: the quote (\") opened on line "
                         f"{_file_line(path, fmt, int(unclosed.group(1)) + 1)} is never closed; expected balanced "
                         "quotes. Close it, or write a quote inside a quoted text as \"\"")
    return DataError(f"cannot parse {path} as {fmt.upper()}: {text[:200]}; check the file's format")


def _ragged_error(path: Path, fmt: str, line: int, found: int, expected: int) -> DataError:
    fix = ('Put texts that contain commas in double quotes ("...")' if fmt == "csv"
           else "TSV has no quoting, so replace tabs inside texts with spaces (or use CSV)")
    return DataError(f"{path.name}: line {line} has {found} fields but the header has {expected}; expected one "
                     f"value per column. {fix}")


def _csv_options(fmt: str) -> dict:
    """How the csv module splits CSV/TSV like our pandas reader does: TSV has no quoting convention."""
    return {"delimiter": ","} if fmt == "csv" else {"delimiter": "\t", "quoting": csv.QUOTE_NONE}


def _open_text(path: Path) -> io.TextIOWrapper:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def _file_line(path: Path, fmt: str, row: int) -> int:
    """The file line where pandas' 1-based ``row`` (the header and blank lines count) starts.

    They differ when a quoted text spans lines. Only used for messages, so on any trouble ``row`` is returned.
    """
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle, **_csv_options(fmt))
            for count, _ in enumerate(reader, 1):
                if count == row - 1:
                    return reader.line_num + 1
    except Exception:  # noqa: BLE001 - the caller is already reporting a parse error
        pass
    return row


def _check_header(path: Path, fmt: str) -> None:
    """Refuse duplicate column names and a first data row longer than the header.

    pandas would silently rename a duplicate to ``label.1``, and take the first field of every row as the index
    when the first data row has one field more than the header.
    """
    header = first = None
    line = 0
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle, **_csv_options(fmt))
            for row in reader:
                if row and header is None:
                    header = row
                elif row:
                    first = row
                    break
                line = reader.line_num
    except Exception:  # noqa: BLE001 - pandas reads the file next and reports what is wrong with it
        first = None  # e.g. a first text over the csv module's field size limit: check the header alone
    if header is not None:
        _check_columns(path, header)
    if header is not None and first is not None and len(first) > len(header):
        raise _ragged_error(path, fmt, line + 1, len(first), len(header))


def _json_float(text: str) -> float | str:
    """A JSON number too large for a float (1e400) keeps its spelling instead of becoming 'inf'."""
    number = float(text)
    return number if math.isfinite(number) else text


def _json_constant(name: str) -> float | str:
    """JSON's non-standard NaN stays a missing value; Infinity and -Infinity keep their spelling."""
    return math.nan if name == "NaN" else name


def _json_array_error(path: Path) -> DataError:
    return DataError(f"{path.name} holds a JSON array; expected JSON Lines (one object per line). Convert it with "
                     f"`jq -c '.[]' {path.name} > {path.name.split('.')[0]}.jsonl`")


def _jsonl_records(path: Path, *, chunksize: int | None = None) -> Iterator[pd.DataFrame]:
    """Parse JSON Lines ourselves, so a bad line is reported by its number; yields frames of ``chunksize`` rows."""
    records: list[dict] = []
    number = 0
    started = False
    try:
        with io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors="strict", newline=None) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                first, started = not started, True
                try:
                    value = json.loads(line, parse_float=_json_float, parse_constant=_json_constant)
                except (ValueError, RecursionError) as exc:  # JSONDecodeError, too-long integers, deep nesting
                    if first and line.lstrip().startswith("["):
                        raise _json_array_error(path) from exc
                    reason = (exc.msg if isinstance(exc, json.JSONDecodeError)
                              else "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0])
                    raise DataError(f"line {number} of {path.name} is not valid JSON ({reason}); expected one JSON "
                                    "object per line (JSON Lines). Fix or remove that line") from exc
                if not isinstance(value, dict):
                    if first and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                        raise _json_array_error(path)
                    kind = {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
                        type(value), "a number")
                    raise DataError(f"line {number} of {path.name} is {kind}; expected one JSON object per line, "
                                    'e.g. {"text": "...", "label": "..."}')
                records.append(value)
                if chunksize and len(records) >= chunksize:
                    yield pd.DataFrame.from_records(records)
                    records = []
    except UnicodeDecodeError as exc:
        raise DataError(f"line {number + 1} of {path} is not valid UTF-8; expected UTF-8 text. Re-save it as UTF-8, "
                        "e.g. `iconv -f latin1 -t utf-8`") from exc
    if records or not chunksize:
        yield pd.DataFrame.from_records(records)


def _parquet_frame(path: Path, *, chunksize: int | None = None):
    """Parquet as one frame, or an iterator of frames of ``chunksize`` rows (read by batches).

    Every table is fully validated first: pyarrow reads strings lazily, so invalid UTF-8 would otherwise
    surface later as an ``ArrowException`` from deep inside pandas.
    """
    import pyarrow.parquet as pq

    if chunksize is None:
        table = pq.read_table(path)
        table.validate(full=True)
        return table.to_pandas()

    def batches() -> Iterator[pd.DataFrame]:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunksize):
            batch.validate(full=True)
            yield batch.to_pandas()

    return batches()


def _read_frame(path: Path, fmt: str, *, chunksize: int | None = None):
    """pandas reader for the format; CSV/TSV values are read as strings so labels keep their spelling."""
    if fmt != "parquet":
        _sniff_text_encoding(path)
    try:
        if fmt in ("csv", "tsv"):
            _check_header(path, fmt)
            # index_col=False: a row with an extra field is an error, never a silent index column.
            return pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False,
                               na_values=[""], encoding="utf-8-sig", chunksize=chunksize, engine="c",
                               index_col=False, quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE)
        if fmt == "jsonl":
            frames = _jsonl_records(path, chunksize=chunksize)
            return frames if chunksize else next(frames)
        return _parquet_frame(path)
    except (DataError, MemoryError):
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path} has no header row; expected a header naming the columns") from exc
    except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many types for malformed files
        raise _parse_error(path, fmt, exc) from exc


def _missing_column(path: Path, kind: str, wanted: str, columns, flag: str) -> DataError:
    shown = ", ".join(map(str, columns)) or "(none)"
    guesses = [c for c in columns if str(c).lower() in
               ({"text", "sentence", "content", "title", "body"} if kind == "text"
                else {"label", "labels", "topic", "class", "category", "target"})]
    hint = f"Pass {flag} {guesses[0]}" if guesses else f"Pass {flag} NAME"
    return DataError(f"{kind} column '{wanted}' not found in {path.name}; columns are {shown}. {hint}")


def read_labeled(path: str | os.PathLike, *, text_column: str | None = None, label_column: str | None = None,
                 require_labels: bool = True) -> TextData:
    """Read and validate a labelled data file.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.tsv``, ``.jsonl`` or ``.parquet`` file, or ``embedded:NAME``.
    text_column, label_column : str, optional
        Column names; default ``text`` and ``label`` (for embedded data: that dataset's columns).
    require_labels : bool
        When False, a file without the label column loads as unlabelled (unless ``label_column`` is
        given: a label column asked for by name must exist).

    Returns
    -------
    TextData
        Labels are strings. Raises :class:`~textshift.errors.DataError` on bad input.
    """
    check_column_name(text_column, "text_column")
    check_column_name(label_column, "label_column")
    file_path, spec = _resolve(path)
    _check_file(file_path)
    fmt = detect_format(file_path)
    named_label = label_column is not None
    text_column = text_column or (spec.text_column if spec else "text")
    label_column = label_column or (spec.label_column if spec and spec.label_column else "label")
    if label_column == text_column:
        if require_labels or named_label:
            raise DataError(f"the text and label columns must differ; got '{text_column}' for both. Pass "
                            "--text-column and --label-column naming two different columns")
        label_column = None  # texts from the column that labels would default to: read unlabelled
    frame = _read_frame(file_path, fmt)
    if spec and spec.split:
        frame = frame[frame["split"] == spec.split].reset_index(drop=True)
    fp = Fingerprint(str(path), len(frame), file_sha256(file_path))
    _check_columns(file_path, frame.columns)
    if text_column not in frame.columns:
        if len(frame.columns) == 0:
            raise DataError(f"{file_path} has no columns; expected a header row with a '{text_column}' column")
        raise _missing_column(file_path, "text", text_column, list(frame.columns), "--text-column")
    if label_column is not None and label_column not in frame.columns:
        if require_labels or named_label:
            raise _missing_column(file_path, "label", label_column, list(frame.columns), "--label-column")
        label_column = None
    return _validate(frame, fp, text_column=text_column, label_column=label_column, **_numbering(fmt))


def read_texts(path: str | os.PathLike, *, text_column: str | None = None) -> TextData:
    """Read and validate a file of texts; labels are kept when a ``label`` column is present."""
    return read_labeled(path, text_column=text_column, require_labels=False)


def _numbering(fmt: str, start: int = 0) -> dict:
    """How rows are named in messages: file lines for text formats (CSV has a header line), rows for Parquet."""
    if fmt == "parquet":
        return {"first": 1 + start, "unit": "row"}
    return {"first": (2 if fmt in ("csv", "tsv") else 1) + start, "unit": "line"}


def _check_columns(path: Path, columns) -> None:
    """Refuse duplicate column names (empty header cells are left to pandas, which names them 'Unnamed: N')."""
    names = [str(c) for c in columns]
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    if duplicated:
        raise DataError(f"{path.name} has more than one column named {', '.join(map(repr, duplicated))}; expected "
                        "unique column names. Rename the duplicates")


def _rows(positions, first: int = 2, limit: int = 5) -> str:
    shown = ", ".join(str(p + first) for p in positions[:limit])
    return shown + (f" and {len(positions) - limit} more" if len(positions) > limit else "")


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)


def _is_scalar_number(value) -> bool:
    return isinstance(value, (numbers.Number, bool))


def _validate(frame: pd.DataFrame, fp: Fingerprint, *, text_column: str, label_column: str | None,
              first: int = 2, unit: str = "line") -> TextData:
    """Check texts and labels; numbers become strings, anything else that is not text is refused.

    ``first`` is the file line (or row number, ``unit``) of the frame's first row, for messages.
    """
    name = Path(fp.path).name
    if len(frame) == 0:
        raise DataError(f"{name} has a header but no data rows; expected at least one row of data")
    rename = {text_column: "text"}
    if label_column:
        rename[label_column] = "label"
    # Other columns named 'text'/'label' would collide with ours.
    drop = [c for c in ("text", "label") if c in frame.columns and c not in rename]
    frame = frame.drop(columns=drop).rename(columns=rename)
    texts = frame["text"].tolist()
    odd = [i for i, t in enumerate(texts)
           if not isinstance(t, str) and not _is_missing(t) and not _is_scalar_number(t)]
    if odd:
        kind = type(texts[odd[0]]).__name__
        raise DataError(f"{name} has {len(odd)} value(s) that are not text ({kind}) in column '{text_column}' "
                        f"({unit} {_rows(odd, first)}); expected a string in every row. Store the texts as strings")
    bad = [i for i, t in enumerate(texts) if _is_missing(t) or (isinstance(t, str) and not t.strip())]
    if bad:
        raise DataError(f"{name} has {len(bad)} empty or whitespace-only text(s) in column '{text_column}' "
                        f"({unit} {_rows(bad, first)}); expected text in every row. Remove or fill those rows")
    if any(not isinstance(t, str) for t in texts):
        frame["text"] = [t if isinstance(t, str) else str(t) for t in texts]
    warnings: list[str] = []
    if label_column:
        labels = frame["label"].tolist()
        odd = [i for i, v in enumerate(labels)
               if not isinstance(v, str) and not _is_missing(v) and not _is_scalar_number(v)]
        if odd:
            kind = type(labels[odd[0]]).__name__
            raise DataError(f"{name} has {len(odd)} label(s) that are not a string or number ({kind}) in column "
                            f"'{label_column}' ({unit} {_rows(odd, first)}); expected one label per row. Store "
                            "each label as a string")
        missing = [i for i, v in enumerate(labels) if _is_missing(v) or (isinstance(v, str) and not v.strip())]
        if missing:
            raise DataError(f"{name} has {len(missing)} missing label(s) in column '{label_column}' "
                            f"({unit} {_rows(missing, first)}); expected a label in every row. Fill or remove those "
                            "rows")
        frame["label"] = [_label_str(v) for v in labels]
    frame = frame.reset_index(drop=True)
    return TextData(frame, fp, warnings)


def _label_str(value) -> str:
    """A label as text: whole floats lose their '.0' (JSON/Parquet 1.0 is the label "1"), strings are stripped."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    return str(value).strip()


def _number_spelling(label: str) -> str | None:
    """The canonical spelling of a label that is a number ("1.0", "01", " 1" -> "1"), else None."""
    try:
        number = float(label)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return str(int(number)) if number.is_integer() else repr(number)


def check_label_spelling(data: TextData, classes: list[str]) -> None:
    """Refuse labels that name a class of the model only when read as numbers ("1.0" in the data, "1" in the model).

    Labels that are numbers are compared as text everywhere; an integer written as ``1`` or ``1.0`` in
    JSON/Parquet is the label ``"1"``, but a CSV cell ``1.0`` stays ``"1.0"``. Scoring such data would count
    every row as an error, so this raises :class:`~textshift.errors.DataError` instead.
    """
    known = set(classes)
    by_number = {}
    for label in classes:
        spelled = _number_spelling(label)
        if spelled is not None:
            by_number.setdefault(spelled, label)
    clashes = {}
    for label in sorted(set(data.labels) - known):
        spelled = _number_spelling(label)
        if spelled is not None and spelled in by_number:
            clashes[label] = by_number[spelled]
    if clashes:
        name = Path(data.fingerprint.path).name
        ours, theirs = list(clashes)[:3], list(clashes.values())[:3]
        raise DataError(f"labels are written as {', '.join(ours)} in {name} but as {', '.join(theirs)} by the model; "
                        "expected the model's spelling. Rewrite those labels as the model names them "
                        f"(e.g. {theirs[0]} instead of {ours[0]})")


def check_trainable(data: TextData) -> list[str]:
    """Check that labelled data can train a classifier; returns warnings (raises on fatal problems)."""
    counts = Counter(data.labels)
    name = Path(data.fingerprint.path).name
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(f"{name} has only one class ('{only}'); expected at least two classes to train a "
                        "classifier. Add examples of other classes")
    warnings = []
    singles = sorted(label for label, n in counts.items() if n == 1)
    if singles:
        message = (f"{len(singles)} class(es) have a single example ({', '.join(singles[:5])}"
                   f"{'…' if len(singles) > 5 else ''}); the model will hardly learn them")
        logger.info(message)
        warnings.append(message)
    return warnings


def iter_text_chunks(path: str | os.PathLike, *, text_column: str | None = None,
                     chunk_size: int = 10_000) -> Iterator[pd.DataFrame]:
    """Yield the file in chunks of at most ``chunk_size`` rows, each a frame with a ``text`` column.

    Memory stays bounded by the chunk size (Parquet is read by row group batches). Every chunk is
    validated like :func:`read_texts`; the index holds the row number in the file. The file's other columns are
    kept; one named ``label`` (or ``text``, when the texts come from another column) becomes ``input_label``
    (``input_text``), so it survives beside the texts and predictions.
    """
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1; got {chunk_size}. Pass a positive --chunk-size")
    check_column_name(text_column, "text_column")
    file_path, spec = _resolve(path)
    _check_file(file_path)
    fmt = detect_format(file_path)
    text_column = text_column or (spec.text_column if spec else "text")
    fp = Fingerprint(str(path), 0, "")
    start = 0
    produced = False
    chunks = None
    while True:
        try:
            if chunks is None:
                chunks = iter(_parquet_frame(file_path, chunksize=chunk_size) if fmt == "parquet"
                              else _read_frame(file_path, fmt, chunksize=chunk_size))
            chunk = next(chunks, None)
        except (DataError, MemoryError):
            raise
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{file_path} has no header row; expected a header naming the columns") from exc
        except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many types for malformed files
            raise _parse_error(file_path, fmt, exc) from exc
        if chunk is None:
            break
        if spec and spec.split:
            chunk = chunk[chunk["split"] == spec.split]
        _check_columns(file_path, chunk.columns)
        if text_column not in chunk.columns:
            raise _missing_column(file_path, "text", text_column, list(chunk.columns), "--text-column")
        if len(chunk) == 0:
            continue
        chunk = chunk.rename(columns={c: f"input_{c}" for c in ("text", "label") if c != text_column})
        validated = _validate(chunk.reset_index(drop=True), fp, text_column=text_column, label_column=None,
                              **_numbering(fmt, start))
        validated.frame.index = range(start, start + len(chunk))
        start += len(chunk)
        produced = True
        yield validated.frame
    if not produced:
        raise DataError(f"{file_path.name} has a header but no data rows; expected at least one row of data")


def atomic_write_frame(frame: pd.DataFrame, destination: str | os.PathLike) -> Path:
    """Write a frame as CSV/TSV/JSONL/Parquet (by extension) beside the target, then rename into place."""
    destination = Path(destination)
    fmt = detect_format(destination)
    compression = _compression(destination)  # the temporary name's extension would not tell pandas
    if fmt == "tsv":
        _check_tsv_values(frame, destination)
    tmp = destination.with_name(f".{destination.name}.tmp-{os.getpid()}")
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL, compression=compression)
        elif fmt == "tsv":
            frame.to_csv(tmp, index=False, sep="\t", quoting=csv.QUOTE_NONE, compression=compression)
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False, compression=compression)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            tmp.unlink()
    return destination


def _check_tsv_values(frame: pd.DataFrame, destination: Path) -> None:
    """TSV is read without quoting, so a tab or line break inside a value cannot be written faithfully."""
    for column in frame.columns:
        values = [str(column), *frame[column].tolist()]
        bad = next((i for i, v in enumerate(values) if isinstance(v, str) and any(c in v for c in "\t\r\n")), None)
        if bad is not None:
            where = "its name" if bad == 0 else f"row {bad}"
            raise DataError(f"cannot write {destination.name} as TSV: column '{column}' has a tab or line break "
                            f"({where}); TSV has no way to quote them. Write a .csv, .jsonl or .parquet file instead")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name the same file (used to refuse overwriting an input)."""
    pa, pb = Path(a), Path(b)
    try:
        return pa.exists() and pb.exists() and pa.samefile(pb)
    except OSError:
        return False
