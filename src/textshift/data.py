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

import csv
import hashlib
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from textshift.errors import DataError, DataFileNotFoundError

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                     ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
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
        return {"path": self.path, "rows": self.rows, "sha256": self.sha256}


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
        """Rows at the given positions (0-based, in this object's order), as a new TextData."""
        frame = self.frame.iloc[list(positions)]
        fp = Fingerprint(self.fingerprint.path, len(frame), self.fingerprint.sha256)
        return TextData(frame, fp, list(self.warnings))

    @classmethod
    def from_lists(cls, texts: list[str], labels: list[str] | None = None, *, name: str = "<memory>") -> TextData:
        """Build from Python lists (validated the same way as files)."""
        data = {"text": list(texts)}
        if labels is not None:
            data["label"] = list(labels)
        frame = pd.DataFrame(data)
        digest = hashlib.sha256()
        for i, text in enumerate(frame["text"]):
            digest.update(str(text).encode() + b"\x1f")
            if labels is not None:
                digest.update(str(frame["label"].iat[i]).encode() + b"\x1e")
        fp = Fingerprint(name, len(frame), digest.hexdigest())
        return _validate(frame, fp, text_column="text", label_column="label" if labels is not None else None)


def embedded_path(name: str) -> Path:
    """Path of an embedded dataset's file (``news``, ``bills``, ``bills-train``, ``bills-test``, ``topics``)."""
    if name not in EMBEDDED:
        raise DataError(f"unknown embedded dataset '{name}'; expected one of {', '.join(EMBEDDED)}. "
                        "Run `textshift data list`")
    return Path(str(resources.files("textshift") / "embedded" / EMBEDDED[name].filename))


def export_embedded(name: str, destination: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Copy an embedded dataset to ``destination`` (a file or a folder). Returns the written path.

    For ``bills-train`` / ``bills-test`` only that split's rows are written.
    """
    spec = EMBEDDED.get(name)
    source = embedded_path(name)
    destination = Path(destination)
    if destination.is_dir():
        destination = destination / (f"{name}.csv" if spec.split else spec.filename)
    if destination.exists() and not overwrite:
        from textshift.errors import OutputExistsError

        raise OutputExistsError(f"{destination} exists; expected a new file. Pass --overwrite or choose another path")
    if spec.split:
        frame = pd.read_csv(source)
        frame = frame[frame["split"] == spec.split]
        atomic_write_frame(frame, destination)
    else:
        tmp = destination.with_name(f".{destination.name}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
    return destination


def _resolve(path: str | os.PathLike) -> tuple[Path, EmbeddedDataset | None]:
    text = str(path)
    if text.startswith(EMBEDDED_PREFIX):
        name = text[len(EMBEDDED_PREFIX):]
        return embedded_path(name), EMBEDDED[name]
    return Path(path), None


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zst", ".xz") and len(suffixes) > 1:
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in SUPPORTED_FORMATS:
        raise DataError(f"cannot tell the format of {path}: expected a file ending in .csv, .tsv, .jsonl or "
                        f".parquet, found '{''.join(path.suffixes) or 'no extension'}'. Rename the file")
    return SUPPORTED_FORMATS[suffixes[-1]]


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


def _read_frame(path: Path, fmt: str, *, chunksize: int | None = None):
    """pandas reader for the format; every value read as a string so labels keep their spelling."""
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False,
                               na_values=[""], encoding="utf-8", chunksize=chunksize, engine="c")
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False, chunksize=chunksize, encoding="utf-8")
        return pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not valid UTF-8 (byte {exc.start}); expected UTF-8 text. Re-save it as UTF-8, "
                        "e.g. `iconv -f latin1 -t utf-8`") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path} has no header row; expected a header naming the columns") from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot parse {path} as {fmt.upper()}: {first}; check the file's format") from exc


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
        When False, a file without the label column loads as unlabelled.

    Returns
    -------
    TextData
        Labels are strings. Raises :class:`~textshift.errors.DataError` on bad input.
    """
    file_path, spec = _resolve(path)
    _check_file(file_path)
    fmt = detect_format(file_path)
    text_column = text_column or (spec.text_column if spec else "text")
    label_column = label_column or (spec.label_column if spec and spec.label_column else "label")
    frame = _read_frame(file_path, fmt)
    if spec and spec.split:
        frame = frame[frame["split"] == spec.split].reset_index(drop=True)
    fp = Fingerprint(str(path), len(frame), file_sha256(file_path))
    if text_column not in frame.columns:
        if len(frame.columns) == 0:
            raise DataError(f"{file_path} has no columns; expected a header row with a '{text_column}' column")
        raise _missing_column(file_path, "text", text_column, list(frame.columns), "--text-column")
    if label_column not in frame.columns:
        if require_labels:
            raise _missing_column(file_path, "label", label_column, list(frame.columns), "--label-column")
        label_column = None
    return _validate(frame, fp, text_column=text_column, label_column=label_column)


def read_texts(path: str | os.PathLike, *, text_column: str | None = None) -> TextData:
    """Read and validate a file of texts; labels are kept when a ``label`` column is present."""
    return read_labeled(path, text_column=text_column, require_labels=False)


def _rows(positions, limit: int = 5) -> str:
    shown = ", ".join(str(p + 2) for p in positions[:limit])  # +2: 1-based and the header line
    return shown + (f" and {len(positions) - limit} more" if len(positions) > limit else "")


def _validate(frame: pd.DataFrame, fp: Fingerprint, *, text_column: str, label_column: str | None) -> TextData:
    name = Path(fp.path).name
    if len(frame) == 0:
        raise DataError(f"{name} has a header but no data rows; expected at least one row of data")
    rename = {text_column: "text"}
    if label_column:
        rename[label_column] = "label"
    # Other columns named 'text'/'label' would collide with ours.
    drop = [c for c in ("text", "label") if c in frame.columns and c not in rename]
    frame = frame.drop(columns=drop).rename(columns=rename)
    texts = frame["text"]
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        non_str = [i for i in bad if texts.iat[i] is not None and not isinstance(texts.iat[i], str)
                   and not pd.isna(texts.iat[i])]
        if non_str and len(non_str) == len(bad):
            frame["text"] = texts.astype(str)
        else:
            raise DataError(f"{name} has {len(bad)} empty or whitespace-only text(s) in column '{text_column}' "
                            f"(line {_rows(bad)}); expected text in every row. Remove or fill those rows")
    warnings: list[str] = []
    if label_column:
        labels = frame["label"]
        missing = [i for i, v in enumerate(labels) if v is None or (not isinstance(v, str) and pd.isna(v))
                   or (isinstance(v, str) and not v.strip())]
        if missing:
            raise DataError(f"{name} has {len(missing)} missing label(s) in column '{label_column}' "
                            f"(line {_rows(missing)}); expected a label in every row. Fill or remove those rows")
        frame["label"] = [_label_str(v) for v in labels]
    frame = frame.reset_index(drop=True)
    return TextData(frame, fp, warnings)


def _label_str(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


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
    validated like :func:`read_texts`; the index holds the row number in the file.
    """
    file_path, spec = _resolve(path)
    _check_file(file_path)
    fmt = detect_format(file_path)
    text_column = text_column or (spec.text_column if spec else "text")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(file_path)
        chunks = (batch.to_pandas() for batch in parquet.iter_batches(batch_size=chunk_size))
    else:
        chunks = _read_frame(file_path, fmt, chunksize=chunk_size)
    start = 0
    fp = Fingerprint(str(path), 0, "")
    produced = False
    try:
        for chunk in chunks:
            if spec and spec.split:
                chunk = chunk[chunk["split"] == spec.split]
            if text_column not in chunk.columns:
                raise _missing_column(file_path, "text", text_column, list(chunk.columns), "--text-column")
            if len(chunk) == 0:
                continue
            validated = _validate(chunk.reset_index(drop=True), fp, text_column=text_column, label_column=None)
            validated.frame.index = range(start, start + len(chunk))
            start += len(chunk)
            produced = True
            yield validated.frame
    except UnicodeDecodeError as exc:
        raise DataError(f"{file_path} is not valid UTF-8 (byte {exc.start}); expected UTF-8 text. Re-save it as "
                        "UTF-8") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot parse {file_path} as {fmt.upper()}: {first}; check the file's format") from exc
    if not produced:
        raise DataError(f"{file_path.name} has a header but no data rows; expected at least one row of data")


def atomic_write_frame(frame: pd.DataFrame, destination: str | os.PathLike) -> Path:
    """Write a frame as CSV/TSV/JSONL/Parquet (by extension) beside the target, then rename into place."""
    destination = Path(destination)
    fmt = detect_format(destination)
    tmp = destination.with_name(f".{destination.name}.tmp-{os.getpid()}")
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL)
        elif fmt == "tsv":
            frame.to_csv(tmp, index=False, sep="\t")
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            tmp.unlink()
    return destination


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name the same file (used to refuse overwriting an input)."""
    pa, pb = Path(a), Path(b)
    try:
        return pa.exists() and pb.exists() and pa.samefile(pb)
    except OSError:
        return False
