"""``textshift suggest`` (which texts to label next) and ``textshift label`` (label them in the browser).

Registered in :data:`textshift.cli.COMMANDS`; the work is done by
:func:`textshift.suggest.suggest` and :func:`textshift.review.label.start_labelling`.
"""

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
    require,
    serve,
)
from textshift.locks import writes
from textshift.suggest import DEFAULT_STRATEGY, STRATEGIES

STRATEGY_HELP = ("auto (coverage with no labels yet, kmeans after), random, margin (smallest gap between the two "
                 "likeliest classes), entropy, kmeans (uncertain and diverse: k-means on the model's embeddings "
                 "weighted by uncertainty) or coverage (cold start: k-means on the whole pool, weighted by the "
                 "source model's doubt).")


@writes("output")
def suggest(
    model: Annotated[Path, typer.Argument(help="Current model folder (the source model at the start).")],
    pool: Annotated[str, typer.Argument(help="Unlabelled target texts (file or embedded:NAME; a label column is "
                                             "ignored).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV of the chosen texts: rank, row, text, guess, "
                                                                "probability, margin, entropy, reason.")],
    n: Annotated[int, typer.Option("-n", help="How many texts to choose.")] = 50,
    strategy: Annotated[str, typer.Option(help=STRATEGY_HELP)] = DEFAULT_STRATEGY,
    labeled: Annotated[str | None, typer.Option("--labeled", help="Rows of POOL labelled already (text,label): "
                                                "never chosen again, and kmeans prefers texts unlike them.")] = None,
    new_labels: Annotated[bool, typer.Option("--new-labels", help="Accept labels in --labeled that the model does "
                                                                  "not know.")] = False,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache of the pool's model outputs "
                                                   "\\[default: ~/.cache/textshift/suggest].")] = None,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text \\[default: the model's own].")] = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Choose the next texts of POOL to label, and say why each was picked.

    Example: textshift suggest news-model bills.csv -n 50 -o to_label.csv, then textshift label to_label.csv
    """
    from textshift.data import atomic_write_frame, detect_format, read_labeled, read_texts
    from textshift.model import Classifier, check_model_folder
    from textshift.outputs import SUGGESTIONS, check_output
    from textshift.suggest import check_strategy
    from textshift.suggest import suggest as choose

    check_strategy(strategy)
    require("-n", n, n >= 1, "at least 1")
    detect_format(output)  # a bad extension fails before minutes of forward passes
    check_output(output, SUGGESTIONS, overwrite=overwrite, inputs=(model, pool, labeled))
    check_model_folder(model)
    pool_data = read_texts(pool, text_column=text_column)
    labeled_data = read_labeled(labeled, text_column=text_column, label_column=label_column) if labeled else None
    classifier = Classifier.load(model)
    if not quiet:
        err_console.print(f"ranking {len(pool_data):,} texts of {plain(pool)} with {plain(model)}")
    result = choose(classifier, pool_data, n=n, strategy=strategy, labeled=labeled_data, seed=seed,
                    max_length=max_length, cache_dir=cache_dir, allow_new_labels=new_labels)
    atomic_write_frame(result.table, output)
    print_result(result.summary() | {"output": str(output)}, quiet=quiet,
                 human=lambda: _print_suggested(result, output, model))


def _print_suggested(result, output: Path, model: Path) -> None:
    table = Table(title=f"{len(result.table)} texts to label ({result.strategy})")
    for column in ("rank", "guess", "probability", "text", "reason"):
        table.add_column(column, overflow="fold")
    for row in result.table.head(10).itertuples(index=False):
        table.add_row(str(row.rank), plain(row.guess), f"{row.probability:.2f}", plain(row.text[:80]),
                      plain(row.reason[:60]))
    console.print(table)
    skipped = f", {result.duplicates_skipped} near-copies passed over" if result.duplicates_skipped else ""
    console.print(f"wrote {len(result.table)} of {result.candidates:,} candidate texts to "
                  f"[bold]{plain(output)}[/]{skipped}; "
                  f"ranking took {result.seconds['ranking']:.1f}s. Label them with: textshift label "
                  f"{plain(output)} --model {plain(model)}")


def label(
    suggestions: Annotated[Path, typer.Argument(help="Texts to label: the output of `textshift suggest`.")],
    model: Annotated[Path | None, typer.Option("--model", help="Model whose classes are offered (the guesses' "
                                                               "classes are offered anyway).")] = None,
    store: Annotated[Path | None, typer.Option("--store", help="Edit log \\[default: "
                                               "SUGGESTIONS.textshift-label.sqlite beside the file].")] = None,
    host: Host = "127.0.0.1",
    port: Port = 8765,
    export: Annotated[Path | None, typer.Option("--export", help="Write the labelled texts (text,label) here and "
                                                                 "exit.")] = None,
    export_dir: Annotated[Path | None, typer.Option("--export-dir", help="Folder the page's Export button writes "
                                                    "into \\[default: the suggestions' folder].")] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Label suggested texts one at a time in the browser: the model's guess is pre-selected; keys 1-9, Enter,
    s (skip), n (new label), u (undo). Every decision is saved before the page moves on.

    Example: textshift label to_label.csv --model news-model, then textshift transfer news-model labelled.csv -o m2
    """
    from textshift.errors import DataError
    from textshift.review.label import (
        LabelStore,
        default_label_store_path,
        export_labels,
        read_suggestions,
        start_labelling,
    )
    from textshift.review.server import check_address

    if export is not None:
        data = read_suggestions(suggestions)
        path = store or default_label_store_path(suggestions)
        if not Path(path).exists():
            raise DataError(f"no edit log at {path}; expected the log of `textshift label {suggestions}`. Label "
                            "some texts first (or pass --store)")
        with LabelStore.open(path, data=data) as labelled:
            result = export_labels(labelled, export, overwrite=overwrite, protected=(suggestions,))
        written = (f"wrote {result['rows']} labelled texts ({len(result['classes'])} classes) to "
                   f"[bold]{plain(result['output'])}[/]")
        print_result(result, quiet=quiet, human=lambda: console.print(written))
        return
    check_address(host, port)
    if export_dir is not None:
        from textshift.outputs import check_writable

        check_writable(export_dir, option="--export-dir")
    classes = None
    if model is not None:
        from textshift.model import Classifier, check_model_folder

        check_model_folder(model)
        classes = Classifier.load(model).labels
    server = start_labelling(suggestions, classes=classes, store=store, host=host, port=port,
                             export_dir=export_dir, background=False)
    serve(server, quiet=quiet, saved="label",
          status=lambda counts: f"{counts['items']:,} texts, {counts['decided']:,} decided; edit log "
                                f"{plain(server.store.path)}")


__all__ = ["STRATEGIES", "label", "suggest"]
