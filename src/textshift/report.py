"""Reports: learning-curve plots and a self-contained ``report.html`` (images inlined, no scripts)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from textshift.baselines import BASELINES
from textshift.files import atomic_write

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.answer{font-size:1.15em;background:#eef6ee;border-left:4px solid #3a3;padding:.6em 1em}
.muted{color:#666;font-size:.9em}img{max-width:100%}td.prose,th.prose{text-align:left}
"""


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def learning_curves_png(summary: pd.DataFrame, *, title: str = "Learning curves") -> bytes:
    """Macro-F1 against the number of labelled target rows, one line per strategy, shaded 95% intervals."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(8, 5))
    for strategy, group in summary.groupby("strategy"):
        group = group.sort_values("k")
        style = "--" if strategy in BASELINES else ("-" if strategy != "recommended" else ":")
        width = 2.5 if strategy == "recommended" else 1.6
        ax.plot(group.k, group.macro_f1, style, marker="o", lw=width, label=strategy)
        ax.fill_between(group.k, group.macro_f1 - group.ci95, group.macro_f1 + group.ci95, alpha=0.15)
    ax.set_xscale("log")
    ks = sorted(summary.k.unique())
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("labelled target rows (k)")
    ax.set_ylabel("macro-F1 on test rows")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    data = _figure_png(fig)
    plt.close(fig)
    return data


def _cell(value, digits: int) -> str:
    """A table cell: floats to ``digits`` decimals, missing values blank, everything else as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def _table(frame: pd.DataFrame, digits: dict[str, int] | None = None, *, prose: str | None = None) -> str:
    """An HTML table; float columns get 3 decimals unless ``digits`` names another number for the column. The
    ``prose`` column (words, not numbers) is aligned left."""
    digits = digits or {}

    def tag(name: str, column) -> str:
        return f"<{name} class='prose'>" if column == prose else f"<{name}>"

    head = "".join(f"{tag('th', c)}{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"{tag('td', column)}{html.escape(_cell(v, digits.get(column, 3)))}</td>"
                                    for column, v in zip(frame.columns, row, strict=True)) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


SHIFT_MEASURES = [  # (key, name, how to show the value, what it means)
    ("type_overlap", "vocabulary overlap", "{:.1%}", "share of the target's word types that occur in the source"),
    ("oov_token_rate", "out-of-vocabulary rate", "{:.1%}", "share of the target's word tokens never seen in the "
                                                           "source"),
    ("proxy_a_distance", "proxy A-distance", "{:.2f}", "2(1 − 2·error) of a classifier telling source from target "
                                                       "texts: 0 = indistinguishable, 2 = fully separable"),
    ("target_types", "target word types", "{:,.0f}", "distinct words in the target texts"),
    ("source_types", "source word types", "{:,.0f}", "distinct words in the source texts"),
    ("target_fertility", "target fertility", "{:.2f}", "word pieces per word of the target texts (tokenizer fit)"),
    ("source_fertility", "source fertility", "{:.2f}", "word pieces per word of the source texts"),
]


def shift_table(diagnostics: dict) -> pd.DataFrame:
    """The domain-shift measures present in ``diagnostics``, named, formatted and explained."""
    rows = [(name, shape.format(diagnostics[key]), meaning) for key, name, shape, meaning in SHIFT_MEASURES
            if isinstance(diagnostics.get(key), int | float)]
    return pd.DataFrame(rows, columns=["measure", "value", "what it means"])


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Strategies as rows, sizes as columns, cells 'mean ± ci'."""
    cells = summary.assign(cell=[f"{m:.3f} ± {c:.3f}" if c else f"{m:.3f}"
                                 for m, c in zip(summary.macro_f1, summary.ci95, strict=True)])
    table = cells.pivot(index="strategy", columns="k", values="cell").fillna("")
    order = sorted(table.index, key=lambda s: (s in BASELINES, s != "recommended", s))
    table = table.loc[order]
    table.columns = [f"k={k}" for k in table.columns]
    return table.reset_index()


def per_class_comparison(runs: pd.DataFrame, strategy: str, k: int) -> pd.DataFrame:
    """Mean per-class F1 of ``strategy`` and ``scratch`` at size ``k``."""
    def mean_f1(name: str) -> pd.Series:
        rows = runs[(runs.strategy == name) & (runs.k == k)]
        frames = [pd.Series(json.loads(p)) for p in rows.per_class]
        return pd.concat(frames, axis=1).mean(axis=1) if frames else pd.Series(dtype=float)

    best, scratch = mean_f1(strategy), mean_f1("scratch")
    table = pd.DataFrame({strategy: best, "scratch": scratch}).fillna(0.0)
    table["difference"] = table[strategy] - table["scratch"]
    table = table.sort_values("difference", ascending=False).round(3)
    return table.reset_index(names="class")


def write_compare_report(result, config) -> Path:
    """Write ``learning_curves.png`` and ``report.html`` into the result's folder (atomically)."""
    out = Path(result.out_dir)
    png = learning_curves_png(result.summary)
    _atomic_bytes(out / "learning_curves.png", png)
    diag = result.diagnostics
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>textshift comparison</title>"
             f"<style>{STYLE}</style></head><body>",
             "<h1>Is pretraining on the source helping?</h1>",
             f"<p class='answer'>{html.escape(result.answer)}</p>",
             f"<p>Recommended strategy: <b>{html.escape(result.recommended)}</b> (chosen on the labelled target rows "
             "alone, each candidate scored on rows it was not trained on; test rows were never used to choose)."
             + (f" Saved model: <code>{html.escape(result.model_dir.name)}/</code> beside this report."
                if result.model_dir else "")
             + "</p>",
             *([f"<p id='evidence'>{html.escape(result.evidence)}.</p>"] if getattr(result, "evidence", "") else []),
             *(f"<p class='muted'>{html.escape(note)}.</p>" for note in getattr(result, "choice_notes", [])),
             "<h2>Learning curves</h2>",
             f"<img id='learning-curves' alt='learning curves' src='data:image/png;base64,"
             f"{base64.b64encode(png).decode()}'>",
             "<h2>Macro-F1 (mean ± 95% interval over seeds)</h2>", _table(summary_table(result.summary))]
    transfer_like = [s for s in result.summary.strategy.unique()
                     if s not in ("scratch", "recommended", "zero-shot") and s not in BASELINES]
    if "scratch" in set(result.summary.strategy) and transfer_like:
        best = result.summary[result.summary.strategy.isin(transfer_like)].groupby("strategy").macro_f1.mean().idxmax()
        k = int(min(result.summary.k))
        parts += [f"<h2>Per-class F1: {html.escape(best)} vs scratch at k={k}</h2>",
                  _table(per_class_comparison(result.runs, best, k))]
    if diag:
        shift = shift_table(diag)
        if len(shift):
            parts += ["<h2>Domain shift</h2>", _table(shift, prose="what it means")]
            if "proxy_a_distance" not in diag:
                parts.append("<p class='muted'>The source's texts were not available (pass the source data), so "
                             "only the target's measures are shown.</p>")
        if diag.get("zero_shot_recall"):
            recall = pd.DataFrame(list(diag["zero_shot_recall"].items()), columns=["class", "zero-shot recall"])
            parts += ["<h2>Which topics carry over (source model as is, per-class recall)</h2>", _table(recall)]
        for key in ("classes_only_in_source", "classes_only_in_target"):
            if diag.get(key):
                parts.append(f"<p>{key.replace('_', ' ')}: {html.escape(', '.join(diag[key]))}</p>")
    runs = result.runs.drop(columns=[c for c in ("per_class", "settings") if c in result.runs.columns])
    parts += ["<h2>Every run</h2>", _table(runs, {"train_seconds": 1}),
              f"<p class='muted'>Settings: {html.escape(json.dumps(config.train.to_dict()))}. "
              f"Sizes {config.sizes}, seeds {config.seeds}. Rows named inner:* score each candidate on "
              "held-out rows of the sample: they chose the recommended strategy.</p></body></html>"]
    path = out / "report.html"
    _atomic_bytes(path, "\n".join(parts).encode())
    return path


def _atomic_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)
