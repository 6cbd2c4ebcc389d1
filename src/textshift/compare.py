"""Compare transfer strategies over growing amounts of target labels and several seeds.

For each size ``k`` and seed, a stratified sample of ``k`` labelled target rows is drawn; every strategy and
baseline is trained on exactly that sample and scored on the same test rows. The recommended strategy is
chosen on the sample alone: each candidate is scored on 25% of it after training on the other 75% (the test rows
are never looked at; by default with half its epochs, see ``CompareConfig.selection``), and the held-out rows of
all the seeds of a size are pooled into one choice for that size. Every
finished run is written to ``runs.sqlite`` at once, so a killed comparison resumes where it stopped and gives the
same table. The store also records what its runs were made from (the target and test rows, the source model's
weights, any unlabelled or source rows given); a later call with other inputs is refused rather than shown the old
numbers.

Example
-------
>>> from textshift.compare import CompareConfig, compare
>>> result = compare("news-model", "embedded:bills-train", test="embedded:bills-test",
...                  out_dir="cmp", config=CompareConfig(sizes=[100, 300], seeds=1))   # doctest: +SKIP
>>> result.summary                                                                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from textshift import outputs, selection
from textshift.baselines import BASELINES, EmbeddingCache
from textshift.data import TextData, read_labeled
from textshift.errors import ConfigError, DataError, OutputExistsError
from textshift.evaluate import evaluate_predictions
from textshift.locks import writes
from textshift.model import Classifier, is_model_folder, model_digest
from textshift.selection import DEFAULT_SELECTION, SELECTIONS
from textshift.training import ProgressFn, TrainConfig, stratified_holdout
from textshift.transfer import STRATEGIES, TransferConfig, load_source, source_training_data, transfer
from textshift.validation import check_types

logger = logging.getLogger(__name__)

RUNS_FILE = "runs.sqlite"
RECOMMENDED = "recommended"
MODEL_DIR = "recommended-model"


@dataclass
class CompareConfig:
    """Settings of a comparison (stored in ``runs.sqlite``; changing one re-runs only what it affects).

    Attributes
    ----------
    sizes : list of int
        Numbers of labelled target rows to sample.
    seeds : int
        Seeds per size (0 .. seeds-1); each seed draws its own sample.
    strategies : list of str
        Transfer strategies to run (see :data:`textshift.transfer.STRATEGIES`); at least one. ``zero-shot`` alone
        compares the source model as it is with the baselines, and is then the recommendation.
    baselines : list of str
        Reference baselines: ``tfidf-svm``, ``frozen-lr``.
    candidates : list of str or None
        Strategies the recommendation chooses among (default: the trained strategies in ``strategies``, or
        ``["zero-shot"]`` when that is the only strategy).
    inner_fraction : float
        ``holdout`` selection: share of each sample held out to choose the recommended strategy.
    selection : str
        How candidates are scored on rows of the sample they were not trained on (:mod:`textshift.selection`).
        ``short`` (default): each candidate is fine-tuned for half the epochs of its full run on all but
        ``inner_fraction`` of the sample and scored on the rest; the highest score wins (a fraction of the cost of
        training the candidates: BENCHMARKS.md §2). ``holdout``: the same with the full schedule (about the cost
        of training them). ``probe``: every row held out once (4 folds), predicted by the candidate's starting
        model with only its head trained on frozen features; seconds, but it scores ``scratch`` far below what it
        becomes, so a candidate other than ``scratch`` must beat it clearly to be recommended.
    test_fraction : float
        When no test data is given: share of the target held out (stratified) as test rows.
    train : TrainConfig
        Fine-tuning settings shared by all strategies.
    save_model : bool
        Save the recommended strategy's model at the largest size (first seed) to ``recommended-model/``.
    recommend : bool
        Choose a recommended strategy (costs one inner run per candidate, size and seed).
    """

    sizes: list[int] = field(default_factory=lambda: [50, 100, 200, 500, 1000])
    seeds: int = 3
    strategies: list[str] = field(default_factory=lambda: ["scratch", "finetune"])
    baselines: list[str] = field(default_factory=lambda: ["tfidf-svm", "frozen-lr"])
    candidates: list[str] | None = None
    inner_fraction: float = 0.25
    selection: str = DEFAULT_SELECTION
    test_fraction: float = 0.3
    train: TrainConfig = field(default_factory=TrainConfig)
    save_model: bool = True
    recommend: bool = True

    def __post_init__(self) -> None:
        check_types(self)
        if not self.sizes or any(k < 2 for k in self.sizes):
            raise ConfigError(f"sizes must be numbers of rows >= 2; got {self.sizes}. Pass e.g. --sizes 50,100,200")
        self.sizes = sorted(set(int(k) for k in self.sizes))
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1; got {self.seeds}")
        if not self.strategies:
            raise ConfigError(f"no strategy given; expected at least one of {', '.join(STRATEGIES)}. "
                              "Pass e.g. --strategies scratch,finetune")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ConfigError(f"unknown strategy {unknown[0]!r}; expected some of {', '.join(STRATEGIES)}")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise ConfigError(f"unknown baseline {unknown[0]!r}; expected some of {', '.join(BASELINES)}")
        # zero-shot trains nothing, so the inner hold-out cannot score it; alone, it is the only choice there is.
        choosable = [s for s in self.strategies if s != "zero-shot"] or ["zero-shot"]
        if self.candidates is None:
            self.candidates = choosable
        bad = [c for c in self.candidates if c not in choosable]
        if bad:
            raise ConfigError(f"candidate {bad[0]!r} is not among the trained strategies {choosable}")
        if self.recommend and not self.candidates:
            raise ConfigError(f"no candidate to recommend; expected some of {choosable}. Pass --candidates "
                              f"{','.join(choosable)}, or recommend=False")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection must be one of {', '.join(SELECTIONS)}; got "
                              f"{self.selection!r}")
        if not 0 < self.inner_fraction < 0.5:
            raise ConfigError(f"inner_fraction must be in (0, 0.5); got {self.inner_fraction}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1); got {self.test_fraction}. It is the share of the "
                              "target held out for testing when no test data is given")

    def run_key(self) -> str:
        """Hash of the settings that change a run's result (not sizes/seeds/strategy lists)."""
        return _settings_key(self.train.to_dict(), self.inner_fraction, self.selection)

    def settings(self, k: int) -> dict:
        """What a run's row stores about the settings it was made with."""
        return {"train": self.train.to_dict(), "inner": self.inner_fraction, "selection": self.selection,
                "sample_rows": k}

    def same_run(self, row: dict, sizes: list[int]) -> bool:
        """Whether a stored run made under other settings is the run these settings make, when every training
        set involved has one of ``sizes`` rows (e.g. a changed ``min_val_rows`` that splits those sizes alike)."""
        try:
            stored = json.loads(row.get("settings") or "{}")
        except json.JSONDecodeError:
            return False  # an unreadable row is not reused; it stays where it is
        train = stored.get("train") if isinstance(stored, dict) else None
        if not isinstance(train, dict):
            return False
        # How the recommendation is chosen changes only the inner runs and the choice, not a full-sample run.
        chooses = row["strategy"].startswith("inner:") or row["strategy"] == RECOMMENDED
        if "selection" in stored:
            if chooses and (stored.get("inner"), stored["selection"]) != (self.inner_fraction, self.selection):
                return False
        elif row["run_key"] not in {_settings_key(train, self.inner_fraction, s)
                                    for s in ((self.selection,) if chooses else SELECTIONS)}:
            return False  # a row from before inner/selection were stored: its key must say they match
        try:
            stored_train = TrainConfig(**train)
        except (TypeError, ConfigError):
            return False
        return stored_train.same_run(self.train, sizes)


def _settings_key(train: dict, inner_fraction: float, selection: str) -> str:
    payload = json.dumps({"train": train, "inner": inner_fraction, "selection": selection}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class CompareResult:
    """A comparison's runs and what they add up to.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per (strategy, k, seed): ``strategy, k, seed, accuracy, macro_f1, train_seconds, chosen``.
    summary : pandas.DataFrame
        Mean and 95% interval of macro-F1 per strategy and size.
    recommended : str
        The strategy recommended at the largest size (one choice for all its seeds, from their held-out rows
        pooled).
    answer : str
        The finding in plain words.
    out_dir : pathlib.Path
    model_dir : pathlib.Path or None
    diagnostics : dict
    choice_notes : list of str
        Sizes and seeds where the recommendation is not the candidate that scored highest on the held-out rows
        (``probe`` selection, see :mod:`textshift.selection`), one sentence each.
    evidence : str
        One line: the evidence for the recommendation at the largest size (held-out scores, their gap, the
        share of bootstrap resamples won).
    choices : list of dict
        Every choice: ``k``, ``seed``, ``chosen`` and the stored evidence (:func:`textshift.selection.pick`).
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    recommended: str
    answer: str
    out_dir: Path
    model_dir: Path | None = None
    diagnostics: dict = field(default_factory=dict)
    choice_notes: list[str] = field(default_factory=list)
    evidence: str = ""
    choices: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ sampling
def sample_stratified(labels: list[str], k: int, seed: int) -> np.ndarray:
    """Positions of ``k`` rows drawn per class in proportion to class size, every class at least once when
    ``k`` allows (largest remainders fill the rest). Deterministic in ``seed``."""
    n = len(labels)
    if k > n:
        raise DataError(f"size {k} is larger than the {n} labelled target rows; expected sizes <= {n}. "
                        "Pass smaller --sizes")
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    counts = Counter(labels)
    classes = sorted(counts)
    quota = {c: counts[c] * k / n for c in classes}
    take = {c: int(math.floor(quota[c])) for c in classes}
    if k >= len(classes):
        for c in classes:
            take[c] = max(1, take[c])
    while sum(take.values()) > k:
        c = max((c for c in classes if take[c] > 1), key=lambda c: take[c] - quota[c])
        take[c] -= 1
    for c in sorted(classes, key=lambda c: -(quota[c] - take[c])):
        if sum(take.values()) >= k:
            break
        if take[c] < counts[c]:
            take[c] += 1
    chosen: list[int] = []
    for c in classes:
        positions = np.flatnonzero(labels_arr == c)
        chosen.extend(rng.choice(positions, size=min(take[c], len(positions)), replace=False).tolist())
    return np.array(sorted(chosen), dtype=int)


# ------------------------------------------------------------------------------------------------ storage
class RunStore:
    """Finished runs in SQLite: one row per (strategy, k, seed, settings hash), committed as soon as it ends.

    The ``inputs`` table names what every run of the store was made from (see :func:`input_digests`); stores
    written before it existed have it empty.
    """

    def __init__(self, path: Path):
        self.path = path
        with closing(self._connect()) as db, db:
            db.execute("""CREATE TABLE IF NOT EXISTS runs (
                strategy TEXT, k INTEGER, seed INTEGER, run_key TEXT, accuracy REAL, macro_f1 REAL,
                train_seconds REAL, per_class TEXT, settings TEXT, chosen TEXT, finished_at TEXT,
                PRIMARY KEY (strategy, k, seed, run_key))""")
            db.execute("CREATE TABLE IF NOT EXISTS inputs (name TEXT PRIMARY KEY, label TEXT, sha256 TEXT)")
            db.execute("""CREATE TABLE IF NOT EXISTS held_out (
                strategy TEXT, k INTEGER, seed INTEGER, run_key TEXT, predicted TEXT,
                PRIMARY KEY (strategy, k, seed, run_key))""")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get(self, strategy: str, k: int, seed: int, run_key: str) -> dict | None:
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM runs WHERE strategy=? AND k=? AND seed=? AND run_key=?",
                             (strategy, k, seed, run_key)).fetchone()
        return dict(row) if row else None

    def adopt(self, k: int, seed: int, run_key: str, same_run: Callable[[dict], bool]) -> int:
        """Copy under ``run_key`` the runs of size ``k`` and ``seed`` stored under other keys for which
        ``same_run(row)`` is True (and missing under ``run_key``); the originals stay. Returns how many."""
        with closing(self._connect()) as db, db:
            db.row_factory = sqlite3.Row
            have = {row[0] for row in db.execute("SELECT strategy FROM runs WHERE k=? AND seed=? AND run_key=?",
                                                 (k, seed, run_key))}
            others = db.execute("SELECT * FROM runs WHERE k=? AND seed=? AND run_key!=? ORDER BY finished_at DESC",
                                (k, seed, run_key)).fetchall()
            copied = 0
            for other in map(dict, others):
                if other["strategy"] not in have and same_run(other):
                    db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                               tuple((other | {"run_key": run_key}).values()))
                    # a selection run's held-out predictions travel with it
                    db.execute("INSERT OR REPLACE INTO held_out SELECT strategy, k, seed, ?, predicted FROM "
                               "held_out WHERE strategy=? AND k=? AND seed=? AND run_key=?",
                               (run_key, other["strategy"], k, seed, other["run_key"]))
                    have.add(other["strategy"])
                    copied += 1
        return copied

    def put(self, strategy: str, k: int, seed: int, run_key: str, *, accuracy: float, macro_f1: float,
            train_seconds: float, per_class: dict | None = None, settings: dict | None = None,
            chosen: str | None = None, predicted: list[str] | None = None) -> None:
        """Store a finished run; ``predicted`` (an inner run's labels for its held-out rows) in the same commit."""
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,datetime('now'))",
                       (strategy, k, seed, run_key, accuracy, macro_f1, train_seconds,
                        json.dumps(per_class or {}), json.dumps(settings or {}, default=str), chosen))
            if predicted is not None:
                db.execute("INSERT OR REPLACE INTO held_out VALUES (?,?,?,?,?)",
                           (strategy, k, seed, run_key, json.dumps(predicted)))

    def held_out(self, strategy: str, k: int, seed: int, run_key: str) -> list[str] | None:
        """An inner run's predictions of its held-out rows (None for runs stored without them)."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT predicted FROM held_out WHERE strategy=? AND k=? AND seed=? AND run_key=?",
                             (strategy, k, seed, run_key)).fetchone()
        return json.loads(row[0]) if row else None

    def frame(self, run_key: str) -> pd.DataFrame:
        with closing(self._connect()) as db:
            return pd.read_sql_query("SELECT * FROM runs WHERE run_key=? ORDER BY k, strategy, seed", db,
                                     params=(run_key,))

    def count(self) -> int:
        """Number of stored runs, under every settings hash."""
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def inputs(self) -> dict[str, dict]:
        """The recorded inputs, ``{name: {"label": ..., "sha256": ...}}`` (empty when none were recorded)."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT name, label, sha256 FROM inputs").fetchall()
        return {name: {"label": label, "sha256": sha256} for name, label, sha256 in rows}

    def record_inputs(self, inputs: dict[str, dict]) -> None:
        """Replace the recorded inputs."""
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM inputs")
            db.executemany("INSERT INTO inputs VALUES (?,?,?)",
                           [(name, value["label"], value["sha256"]) for name, value in inputs.items()])

    def clear(self) -> None:
        """Delete every stored run and the recorded inputs."""
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM runs")
            db.execute("DELETE FROM inputs")
            db.execute("DELETE FROM held_out")


# ------------------------------------------------------------------------------------------------ inputs
def data_digest(data: TextData) -> str:
    """sha256 of the rows' texts and labels, in order (what a run sees, whatever file or columns they came from)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(data.texts).encode())
    digest.update(json.dumps(data.labels if data.has_labels else None).encode())
    return digest.hexdigest()


def input_digests(source: Classifier, target: TextData, test: TextData, *, test_name: str,
                  unlabeled_texts: list[str] | None = None, source_data: TextData | None = None) -> dict[str, dict]:
    """What a comparison's runs are made from, ``{name: {"label": shown to users, "sha256": compared}}``."""
    inputs = {"target": {"label": _data_name(target), "sha256": data_digest(target)},
              "test": {"label": test_name, "sha256": data_digest(test)},
              "source": {"label": source.path.name if source.path else "<in-memory model>",
                         "sha256": model_digest(source)}}
    if unlabeled_texts is not None:
        inputs["unlabeled"] = {"label": f"{len(unlabeled_texts)} texts",
                               "sha256": hashlib.sha256(json.dumps(list(unlabeled_texts)).encode()).hexdigest()}
    if source_data is not None:
        inputs["source-data"] = {"label": _data_name(source_data), "sha256": data_digest(source_data)}
    return inputs


def _data_name(data: TextData) -> str:
    return Path(str(data.fingerprint.path)).name


def check_inputs(store: RunStore, inputs: dict[str, dict], out: Path) -> None:
    """Refuse a store whose runs were made from other inputs; record the inputs where none are recorded."""
    stored = store.inputs()
    if stored and store.count():
        changed = [name for name in [*inputs, *(name for name in stored if name not in inputs)]
                   if (stored.get(name) or {}).get("sha256") != (inputs.get(name) or {}).get("sha256")]
        if changed:
            what = "; ".join(f"{name}: {_show_input(stored.get(name))} there, {_show_input(inputs.get(name))} now"
                             for name in changed)
            raise ConfigError(f"{out} holds runs of other inputs ({what}); expected the same inputs to resume. "
                              "Use another -o, or --overwrite to start over")
    if stored != inputs:  # a new store, one written before inputs were recorded, or one without runs yet
        store.record_inputs(inputs)


def _show_input(value: dict | None) -> str:
    return f"{value['label']} ({value['sha256'][:8]})" if value else "none"


def check_output(out: str | os.PathLike, *, source: str | os.PathLike | None = None) -> None:
    """Fail at once if ``out`` cannot hold a comparison: a file, a model folder, the source model's folder (as
    ``out`` or as the ``recommended-model/`` a comparison saves into it), a non-empty folder that is not a
    comparison, the current folder, or a place that cannot be written (:func:`textshift.outputs.check_output`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is a file; expected a folder for the results. Choose another -o")
    if source is not None and Path(source).exists():
        for folder in (out, out / MODEL_DIR):
            if folder.exists() and folder.samefile(source):
                raise OutputExistsError(f"{out} would replace the source model {source}; expected another output "
                                        "folder, since textshift never replaces its input. Choose another -o")
    if out.is_dir() and is_model_folder(out):
        raise OutputExistsError(f"{out} is a textshift model folder; expected a new or comparison folder, so the "
                                "model is left as it is. Choose another -o")
    outputs.check_output(out, outputs.COMPARISON)  # a user's folder, the current folder, unwritable: refused


def check_sizes(sizes: list[int], available: int) -> None:
    """Every sample size must fit in the ``available`` labelled target rows."""
    for k in sizes:
        if k > available:
            raise DataError(f"size {k} is larger than the {available} labelled target rows available for "
                            f"sampling; expected sizes <= {available}. Pass smaller --sizes")


# ------------------------------------------------------------------------------------------------ summary
def confidence_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval half-width (0 for a single value)."""
    from scipy import stats

    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if len(arr) < 2:
        return mean, 0.0, float(len(arr))
    half = float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))
    return mean, half, float(len(arr))


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% interval of macro-F1 and accuracy per (strategy, k)."""
    rows = []
    for (strategy, k), group in runs[~runs.strategy.str.startswith("inner:")].groupby(["strategy", "k"]):
        mean, half, n = confidence_interval(group.macro_f1.tolist())
        rows.append({"strategy": strategy, "k": int(k), "macro_f1": round(mean, 4), "ci95": round(half, 4),
                     "accuracy": round(float(group.accuracy.mean()), 4), "seeds": int(n),
                     "train_seconds": round(float(group.train_seconds.mean()), 1)})
    return pd.DataFrame(rows, columns=["strategy", "k", "macro_f1", "ci95", "accuracy", "seeds", "train_seconds"])


def plain_answer(runs: pd.DataFrame, *, target_name: str = "target", source_name: str = "source") -> str:
    """The finding in words: what the best transfer strategy adds over ``scratch``, size by size, and how sure
    that is.

    ``runs`` holds one row per run (``strategy``, ``k``, ``seed``, ``macro_f1``). The difference is taken per seed
    (both strategies trained on the same sample). With one seed per size the answer gives the differences and
    says that one sample cannot tell them from noise; with several it calls a size a gain (or a loss) only where
    the 95% interval of the paired differences excludes 0, and "within the noise" otherwise.
    """
    runs = runs[~runs.strategy.str.startswith("inner:")]
    transfer_like = [s for s in runs.strategy.unique()
                     if s not in ("scratch", RECOMMENDED, "zero-shot") and s not in BASELINES]
    if "scratch" not in set(runs.strategy) or not transfer_like:
        return "Run both 'scratch' and a transfer strategy to see whether the source model helps."
    means = runs.groupby(["k", "strategy"]).macro_f1.mean().unstack()
    best = means[transfer_like].mean().idxmax()
    paired = runs[runs.strategy.isin([best, "scratch"])].pivot_table(index=["k", "seed"], columns="strategy",
                                                                      values="macro_f1").dropna()
    if paired.empty:
        return "No size has both runs yet."
    gains = (paired[best] - paired["scratch"]).groupby(level="k")
    lead = (f"Pretraining on {source_name} ('{best}') against training on the {target_name} rows alone, macro-F1 "
            "difference")
    if gains.size().min() < 2:
        listed = ", ".join(f"{int(k)} rows {group.mean():+.3f}" for k, group in gains)
        return (f"{lead}: {listed}. That is one seed (one sample of rows) per size, which cannot tell a real "
                "difference from sampling noise; rerun with --seeds 3 or more for 95% intervals.")
    verdicts, shown = [], []
    for k, group in gains:
        mean, half, n = confidence_interval(group.tolist())
        verdict = "gain" if mean - half > 0 else "loss" if mean + half < 0 else "noise"
        verdicts.append(verdict)
        shown.append(f"{int(k)} rows {mean:+.3f} (95% interval {mean - half:+.3f} to {mean + half:+.3f}, "
                     f"{int(n)} seeds)")
    ks = [int(k) for k, _ in gains]
    if all(v == "gain" for v in verdicts):
        verdict = f"it helps at every size tried, up to the largest ({ks[-1]} rows)"
    elif all(v == "loss" for v in verdicts):
        verdict = "it does not help here: it loses at every size tried"
    elif "gain" not in verdicts:
        verdict = ("no size shows a clear gain: " + ("every difference is within the noise" if "loss" not in verdicts
                                                      else "the differences are losses or within the noise"))
    else:
        first = next(i for i, v in enumerate(verdicts) if v != "gain")
        if verdicts[0] == "gain" and all(v != "gain" for v in verdicts[first:]):
            verdict = (f"it helps up to {ks[first - 1]} rows; from {ks[first]} rows on the difference is "
                       + ("within the noise" if "loss" not in verdicts[first:] else "a loss or within the noise"))
        else:
            clear = ", ".join(str(k) for k, v in zip(ks, verdicts, strict=True) if v == "gain")
            verdict = f"the gain is clear at {clear} rows only (mixed across sizes)"
    return f"{lead}: {'; '.join(shown)}. So {verdict}."


def _saved_model_is(folder: Path, *, strategy: str, k: int) -> bool:
    """Whether ``folder`` holds the model of ``strategy`` trained on the k-row sample of seed 0 (an earlier run
    with other sizes or another recommendation may have left another one there)."""
    try:
        meta = json.loads((folder / "textshift.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    made = (meta.get("extra") or {}).get("compare") or {}
    return meta.get("strategy") == strategy and made.get("k") == k and made.get("seed") == 0


# ------------------------------------------------------------------------------------------------ main job
def _evaluate(model: Classifier, test: TextData, *, restrict_to_model: bool = False) -> tuple[dict, dict]:
    texts, labels = test.texts, test.labels
    if restrict_to_model:
        keep = [i for i, label in enumerate(labels) if label in model.label2id]
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return _scores(labels, model.predict(texts), model.labels)


def _scores(true: list[str], predicted: list[str], model_labels: list[str] | None = None) -> tuple[dict, dict]:
    report = evaluate_predictions(true, predicted, model_labels=model_labels)
    per_class = {row.label: float(row.f1) for row in report.per_class.itertuples() if row.support > 0}
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}, per_class


@writes("out_dir")
@dataclass
class _Runs:
    """The runs of one comparison: every strategy and baseline trained on a sample, scored on the test rows and
    stored at once (a stored run is not trained again)."""

    store: RunStore
    key: str
    config: CompareConfig
    source: Classifier
    test: TextData
    out: Path
    source_data: TextData | None
    unlabeled_texts: list[str] | None
    on_run: Callable[[dict], None] | None
    progress: ProgressFn | None
    encoder_cache: EmbeddingCache | None = None

    def record(self, strategy: str, k: int, seed: int, scores: dict, per_class: dict, seconds: float,
               chosen: str | None = None, predicted: list[str] | None = None, reason: dict | None = None) -> None:
        settings = self.config.settings(k) | ({"choice": reason} if reason else {})
        self.store.put(strategy, k, seed, self.key, accuracy=scores["accuracy"], macro_f1=scores["macro_f1"],
                       train_seconds=seconds, per_class=per_class, chosen=chosen, settings=settings,
                       predicted=predicted)
        if self.on_run:
            self.on_run({"strategy": strategy, "k": k, "seed": seed, **scores, "train_seconds": round(seconds, 1)})

    def run_strategy(self, strategy: str, sample: TextData, seed: int, train: TrainConfig | None = None
                     ) -> tuple[Classifier, float]:
        """Train ``strategy`` on ``sample`` with ``train`` (default: the comparison's settings) and this seed."""
        train_config = TrainConfig(**{**(train or self.config.train).to_dict(), "seed": seed})
        started = time.perf_counter()
        run = f"{strategy}, {len(sample)} rows, seed {seed}"
        progress = self.progress
        hook = (lambda event: progress(replace(event, run=run))) if progress else None
        model, _ = transfer(self.source, sample, config=TransferConfig(strategy=strategy, train=train_config),
                            source_data=self.source_data, unlabeled_texts=self.unlabeled_texts, progress=hook)
        return model, time.perf_counter() - started

    def sample(self, pool: TextData, k: int, seed: int) -> TextData:
        """Sample (k, seed) of the pool, with the runs stored under other settings that this one would repeat
        adopted under its key (they count when they train every set of this sample's sizes alike)."""
        config = self.config
        sample = pool.subset(sample_stratified(pool.labels, k, seed))
        sizes = [k]
        if config.recommend and config.selection != "probe":  # the probe trains no split
            sizes.append(len(stratified_holdout(sample.labels, config.inner_fraction, seed=seed)[0]))
        sizes += [len(self.source_data) + n for n in sizes] if self.source_data is not None else []
        self.store.adopt(k, seed, self.key, lambda row, sizes=sizes: config.same_run(row, sizes))
        return sample

    def choose(self, pool: TextData, k: int) -> dict[int, tuple[str, dict | None]]:
        """The recommended candidate at size ``k`` for every seed, chosen on the held-out rows of all the seeds'
        samples pooled (:func:`textshift.selection.pick_pooled`; the test rows are never looked at), with the
        reason to store (None where the stored choice, made under the current rule and seeds, is reused)."""
        config, seeds = self.config, range(self.config.seeds)
        samples = {seed: self.sample(pool, k, seed) for seed in seeds}
        stored = [self.store.get(RECOMMENDED, k, seed, self.key) for seed in seeds]
        reasons = [(json.loads(row["settings"] or "{}").get("choice") or {}) if row else {} for row in stored]
        if all(r.get("rule") == selection.RULE and r.get("seeds", 1) == config.seeds for r in reasons):
            return {seed: (row["chosen"], None) for seed, row in zip(seeds, stored, strict=True)}
        if len(config.candidates) == 1:
            only = config.candidates[0]
            return {seed: (only, {"rule": selection.RULE, "best": only, "seeds": config.seeds}) for seed in seeds}
        held_out = [self._held_out(samples[seed], k, seed) for seed in seeds]
        chosen, reason = selection.pick_pooled(config.candidates, held_out, selection=config.selection)
        return {seed: (chosen, reason) for seed in seeds}

    def _held_out(self, sample: TextData, k: int, seed: int) -> tuple[list[str], dict[str, list[str]]]:
        """The true labels of sample (k, seed)'s held-out rows and every candidate's predictions of them (each
        candidate trained on the rest of the sample, or probed; stored, so a rerun trains nothing again)."""
        config, store = self.config, self.store
        if config.selection != "probe":  # one stratified split; each candidate trained on the larger part
            inner_train, inner_val = stratified_holdout(sample.labels, config.inner_fraction, seed=seed)
            fit, held = sample.subset(inner_train), sample.subset(inner_val)
        else:  # the probe holds out every row once (folds)
            held = sample
        predictions = {}
        for candidate in config.candidates:
            name = f"inner:{candidate}"
            predicted = store.held_out(name, k, seed, self.key)
            if store.get(name, k, seed, self.key) is None or predicted is None or len(predicted) != len(held):
                if config.selection != "probe":
                    short = (selection.short_schedule(config.train, len(sample)) if config.selection == "short"
                             else None)
                    model, seconds = self.run_strategy(candidate, fit, seed, short)
                    predicted = model.predict(held.texts)
                else:
                    predicted, seconds = selection.probe(candidate, sample, seed, config.train, self.source)
                inner_scores, per_class = _scores(held.labels, predicted, sample.classes)
                self.record(name, k, seed, inner_scores, per_class, seconds, predicted=predicted)
            predictions[candidate] = predicted
        return held.labels, predictions

    def run_sample(self, pool: TextData, k: int, seed: int, chosen: str | None = None,
                   reason: dict | None = None) -> None:
        """Every run of sample (k, seed): the strategies and baselines on the full sample, scored on the test
        rows, and the recommendation ``chosen`` for its size (stored with ``reason`` when that is new)."""
        sample = self.sample(pool, k, seed)
        self._strategies(sample, k, seed, chosen)
        self._baselines(sample, k, seed)
        if chosen and reason is not None:
            base = self.store.get(chosen, k, seed, self.key)
            self.record(RECOMMENDED, k, seed, {"accuracy": base["accuracy"], "macro_f1": base["macro_f1"]},
                        json.loads(base["per_class"]), base["train_seconds"], chosen=chosen, reason=reason)

    def _strategies(self, sample: TextData, k: int, seed: int, chosen: str | None) -> None:
        config, model_dir = self.config, self.out / MODEL_DIR
        for strategy in config.strategies:
            want_model = (config.save_model and k == max(config.sizes) and seed == 0 and strategy == chosen)
            done = self.store.get(strategy, k, seed, self.key)
            if done and not (want_model and not _saved_model_is(model_dir, strategy=strategy, k=k)):
                continue
            model, seconds = self.run_strategy(strategy, sample, seed)
            scores, per_class = _evaluate(model, self.test, restrict_to_model=strategy == "zero-shot")
            self.record(strategy, k, seed, scores, per_class, seconds)
            if want_model:
                model.meta.extra["compare"] = {"k": k, "seed": seed, "out_dir": str(self.out)}
                model.save(model_dir, overwrite=True)

    def _baselines(self, sample: TextData, k: int, seed: int) -> None:
        for baseline in self.config.baselines:
            if self.store.get(baseline, k, seed, self.key):
                continue
            started = time.perf_counter()
            if baseline == "frozen-lr" and self.encoder_cache is None:
                backbone = Classifier.from_backbone(self.source.meta.backbone, labels=["a", "b"], seed=0)
                self.encoder_cache = EmbeddingCache(backbone)
            predicted = BASELINES[baseline](sample.texts, sample.labels, self.test.texts,
                                            encoder=self.encoder_cache, seed=seed)
            scores, per_class = _scores(self.test.labels, predicted)
            self.record(baseline, k, seed, scores, per_class, time.perf_counter() - started)


def compare(source: str | os.PathLike | Classifier, target: str | os.PathLike | TextData, *,
            out_dir: str | os.PathLike, test: str | os.PathLike | TextData | None = None,
            config: CompareConfig | None = None, source_data: TextData | None = None,
            unlabeled_texts: list[str] | None = None, on_run: Callable[[dict], None] | None = None,
            progress: ProgressFn | None = None, overwrite: bool = False) -> CompareResult:
    """Run the comparison (resuming from ``out_dir/runs.sqlite``) and write ``report.html`` there.

    Parameters
    ----------
    source : path or Classifier
        The source model.
    target : path or TextData
        Labelled target rows to sample from.
    out_dir : path
        Output folder: ``runs.sqlite``, ``runs.csv``, ``report.html``, ``learning_curves.png``,
        ``recommended-model/``.
    test : path or TextData, optional
        Test rows; default: a stratified ``config.test_fraction`` of ``target``.
    on_run : callable, optional
        Called with each finished run's record (for progress display).
    progress : callable, optional
        Called with the :class:`~textshift.training.TrainProgress` of every training run (its ``run`` names the
        strategy, rows and seed), as :func:`textshift.training.train` describes. Nothing is printed.
    overwrite : bool
        Delete the runs stored in ``out_dir`` (and its recommended model) and start over. Without it, a folder
        whose runs were made from other inputs (target, test rows, source model, unlabelled or source rows) is
        refused with a :class:`~textshift.errors.ConfigError`.
    """
    config = config or CompareConfig()
    out = Path(out_dir)
    check_output(out, source=source.path if isinstance(source, Classifier) else source)
    source_model = source if isinstance(source, Classifier) else load_source(source)
    target_data = target if isinstance(target, TextData) else read_labeled(target)
    pool, test_data, test_name = _split_test(target_data, test, config)
    _check_pool(pool, test_data, source_model, config)
    inputs = input_digests(source_model, target_data, test_data, test_name=test_name,
                           unlabeled_texts=unlabeled_texts, source_data=source_data)
    if "joint" in config.strategies and source_data is None:
        source_data = source_training_data(source_model)
        if source_data is None:
            raise DataError("the 'joint' strategy needs the source's labelled data and the source model's "
                            "training file cannot be found; pass --source-data FILE or drop 'joint'")
    store = _open_store(out, inputs, overwrite=overwrite)
    runs = _Runs(store, config.run_key(), config, source_model, test_data, out, source_data, unlabeled_texts,
                 on_run, progress)
    for k in config.sizes:
        choices = runs.choose(pool, k) if config.recommend else {}  # pooled over the seeds of the size
        for seed in range(config.seeds):
            runs.run_sample(pool, k, seed, *choices.get(seed, (None, None)))
    return _result(runs, target_data, pool)


def _split_test(target: TextData, test: str | os.PathLike | TextData | None,
                config: CompareConfig) -> tuple[TextData, TextData, str]:
    """The rows to sample from, the test rows and the test rows' name (a held-out share of ``target`` if no test)."""
    if test is None:
        pool_pos, test_pos = stratified_holdout(target.labels, config.test_fraction, seed=12345)
        return (target.subset(pool_pos), target.subset(test_pos),
                f"held-out {config.test_fraction:g} of {_data_name(target)}")
    test_data = test if isinstance(test, TextData) else read_labeled(test)
    return target, test_data, _data_name(test_data)


def _check_pool(pool: TextData, test: TextData, source: Classifier, config: CompareConfig) -> None:
    """Refuse sizes the pool cannot give and strategies that need classes shared with the source model."""
    unseen = sorted(set(test.labels) - set(pool.labels))
    if unseen:
        logger.warning("test labels never seen in the target rows: %s", unseen)
    check_sizes(config.sizes, len(pool))
    shared = set(pool.labels) & set(source.labels)
    needs_shared = [s for s in config.strategies if s in ("finetune", "adapt", "zero-shot")]
    if needs_shared and not shared:
        raise DataError(f"the target's classes share no name with the source model's; expected at least one common "
                        f"class for {', '.join(needs_shared)}. Use --strategies scratch,encoder to reuse only the "
                        "encoder")


def _open_store(out: Path, inputs: dict[str, dict], *, overwrite: bool) -> RunStore:
    """The run store in ``out``, checked to hold runs of these inputs (emptied first with ``overwrite``)."""
    if not overwrite and (out / RUNS_FILE).exists():
        check_inputs(RunStore(out / RUNS_FILE), inputs, out)  # before the folder is touched
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are known to be usable
    store = RunStore(out / RUNS_FILE)
    if overwrite:
        store.clear()
        if is_model_folder(out / MODEL_DIR):  # check_output made sure it is not the source
            shutil.rmtree(out / MODEL_DIR, ignore_errors=True)
    check_inputs(store, inputs, out)
    return store


def _result(runs: _Runs, target: TextData, pool: TextData) -> CompareResult:
    """The comparison's result from the stored runs of its settings; runs.csv and report.html written beside them."""
    from textshift.data import atomic_write_frame
    from textshift.report import write_compare_report
    from textshift.shift import domain_shift

    config, out, source_model = runs.config, runs.out, runs.source
    model_dir = out / MODEL_DIR if config.save_model and (out / MODEL_DIR / "textshift.json").exists() else None
    frame = runs.store.frame(runs.key)
    frame = frame[frame.strategy.isin(set(config.strategies) | set(config.baselines) | {RECOMMENDED}
                                      | {f"inner:{c}" for c in config.candidates})
                  & frame.k.isin(config.sizes) & (frame.seed < config.seeds)]
    summary = summarize(frame)
    recommended_rows = frame[(frame.strategy == RECOMMENDED) & (frame.k == max(config.sizes))]
    recommended = Counter(recommended_rows.chosen).most_common(1)[0][0] if len(recommended_rows) else ""
    answer = plain_answer(frame, target_name=Path(str(target.fingerprint.path)).stem.removeprefix("embedded:"),
                          source_name=source_model.path.name if source_model.path else "source")
    diagnostics = domain_shift(runs.source_data or source_training_data(source_model), pool, runs.test,
                               source_model)
    choices = recommended_notes(frame)
    notes: list[str] = []
    for row in choices:  # a choice pooled over the seeds of a size is noted once for the size
        if row.reason.get("best", row.chosen) != row.chosen:
            where = f"k={row.k}" if "seeds" in row.reason else f"k={row.k}, seed {row.seed}"
            note = f"{where}: {selection.describe(row.reason, row.chosen)}"
            notes += [note] if note not in notes else []
    result = CompareResult(frame.drop(columns=["run_key"]), summary, recommended, answer, out, model_dir,
                           diagnostics, notes, evidence_line(choices, max(config.sizes)),
                           [{"k": int(row.k), "seed": int(row.seed), "chosen": row.chosen} | row.reason
                            for row in choices])
    atomic_write_frame(result.runs.drop(columns=["per_class", "settings"]), out / "runs.csv")
    write_compare_report(result, config)
    return result


def recommended_notes(runs: pd.DataFrame) -> list:
    """The recommended rows of ``runs`` with the reason stored for each choice (``k, seed, chosen, reason``)."""
    rows = runs[runs.strategy == RECOMMENDED]
    reasons = [(json.loads(s or "{}").get("choice") or {}) for s in rows.settings]
    return list(pd.DataFrame({"k": rows.k.values, "seed": rows.seed.values, "chosen": rows.chosen.values,
                              "reason": reasons}).itertuples(index=False))


def evidence_line(choices: list, k: int) -> str:
    """One line on the evidence behind the choices at size ``k`` (rows of :func:`recommended_notes`)."""
    rows = [row for row in choices if row.k == k and "against" in row.reason]
    if not rows:
        return ""
    if len(rows) == 1 or "seeds" in rows[0].reason:  # one choice, or one pooled over the seeds
        return f"evidence at {k} rows: {selection.describe(rows[0].reason, rows[0].chosen)}"
    chosen = Counter(row.chosen for row in rows).most_common(1)[0][0]
    gaps, shares = [], []
    for row in rows:  # the majority choice's held-out score minus the best other candidate's, and its wins
        scores = row.reason["scores"]
        gaps.append(scores.get(chosen, float("nan")) - max(v for c, v in scores.items() if c != chosen))
        won = row.reason["share_better"]
        shares.append(won if row.reason["best"] == chosen else 1 - won)
    return (f"evidence at {k} rows: '{chosen}' chosen for {sum(r.chosen == chosen for r in rows)} of {len(rows)} "
            f"seeds; its held-out gap over the next candidate {np.mean(gaps):+.3f} on average ({min(gaps):+.3f} "
            f"to {max(gaps):+.3f}), ahead in {np.mean(shares):.0%} of {selection.RESAMPLES:,} resamples on "
            f"average ({rows[0].reason.get('selection', 'probe')} selection)")
