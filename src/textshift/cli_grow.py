"""``textshift grow``: add new classes to a trained model without forgetting the old ones.

Registered on :data:`textshift.cli.app` when :mod:`textshift.cli` is imported; the work is done by
:func:`textshift.grow.grow_folder`.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textshift.cli import (LabelColumn, Overwrite, Quiet, Seed, TextColumn, _plain, _print_json, _train_config,
                           _training_progress, app, console, err_console)
from textshift.locks import writes
from textshift.memory import DEFAULT_MEMORY_PER_CLASS


class _RichWarnings(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        style = "bold red" if "forget" in message else "yellow"
        err_console.print(f"[{style}]warning:[/] {_plain(message)}", highlight=False)


@contextlib.contextmanager
def _warnings_shown():
    """Print textshift's logged warnings in the CLI's style (once each) while the block runs."""
    package = logging.getLogger("textshift")
    handler, propagate = _RichWarnings(level=logging.WARNING), package.propagate
    package.addHandler(handler)
    package.propagate = False
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.propagate = propagate


@app.command()
@writes("output")
def grow(
    model: Annotated[Path, typer.Argument(help="Model folder saved by textshift (or any HF classification folder).")],
    new_data: Annotated[str, typer.Argument(help="Labelled examples of the new classes (file or embedded:NAME); "
                                                 "rows of known classes are trained on too.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to save the grown model in.")],
    memory_per_class: Annotated[int, typer.Option(help="Examples per class kept in the rehearsal memory.")
                                ] = DEFAULT_MEMORY_PER_CLASS,
    distill: Annotated[bool, typer.Option("--distill/--no-distill",
                                          help="Distil the old model's outputs on the old classes (learning "
                                               "without forgetting).")] = True,
    distill_weight: Annotated[float, typer.Option(help="Weight of the distillation loss.")] = 1.0,
    bias_correction: Annotated[str, typer.Option(help="balanced+align (both), balanced (class-balanced loss), "
                                                      "align (shrink new head rows longer than the old ones), "
                                                      "logit-adjust (balanced softmax: log class counts added "
                                                      "to the logits in the loss), logit-adjust+align, or "
                                                      "none.")] = "balanced+align",
    asymmetric_loss: Annotated[bool, typer.Option("--asymmetric-loss/--no-asymmetric-loss",
                                                  help="Score rows of new classes against the new classes only, "
                                                       "remembered rows against all (ER-ACE).")] = False,
    calibrate_holdout: Annotated[int, typer.Option(help="Rows per class held out of training to fit a scale and "
                                                        "shift of the new classes' logits afterwards (BiC); "
                                                        "0: off.")] = 0,
    old_data: Annotated[str | None, typer.Option("--old-data", help="Old training data: rehearsal examples when the "
                                                 "model has no memory, and the old half of --compare-joint.")] = None,
    rebuild_memory: Annotated[bool, typer.Option("--rebuild-memory", help="Ignore the stored memory and sample a "
                                                 "new one from --old-data.")] = False,
    eval_data: Annotated[str | None, typer.Option("--eval-data", help="Labelled test data: report accuracy per "
                                                  "step's classes, forgetting and macro-F1.")] = None,
    compare_joint: Annotated[bool, typer.Option("--compare-joint", help="Also train one model on --old-data and "
                                                "NEW_DATA at once and report the same numbers.")] = False,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs \\[default: auto, ~400 steps].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size \\[default: 32].")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Peak learning rate \\[default: 1e-4].")] = None,
    warmup_epochs: Annotated[int | None, typer.Option(help="Head warm-up epochs, encoder frozen \\[default: 10].")
                             ] = None,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text \\[default: 128].")] = None,
    seed: Seed = 42,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Add the new classes of NEW_DATA to a trained model, rehearsing a memory of the old ones.

    Example: textshift grow bills-model new_topics.csv -o bills-model-v2 --eval-data embedded:bills-test
    """
    from textshift.data import check_label_spelling, read_labeled
    from textshift.grow import GrowConfig, grow_folder
    from textshift.model import check_model_folder, check_output_folder

    config = GrowConfig(memory_per_class=memory_per_class, distill=distill, distill_weight=distill_weight,
                        bias_correction=bias_correction, asymmetric_loss=asymmetric_loss,
                        calibrate_holdout=calibrate_holdout, seed=seed,
                        train=_train_config(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                            warmup_epochs=warmup_epochs, max_length=max_length, seed=seed))

    def load(path: str | None):
        return read_labeled(path, text_column=text_column, label_column=label_column) if path else None

    check_model_folder(model)  # a broken model fails here, before the status line
    check_output_folder(output, overwrite=overwrite, inputs=(model, new_data, old_data, eval_data))
    new, old, evaluation = load(new_data), load(old_data), load(eval_data)
    labels = _model_labels(model)
    for dataset in (new, old, evaluation):
        if dataset is not None and labels:
            check_label_spelling(dataset, labels)
    if not quiet:
        err_console.print(f"growing {_plain(model)} with {len(new):,} rows of {_plain(new_data)}")
    # warnings as they happen, before the long part, not again at the end
    with _warnings_shown(), _training_progress(quiet) as progress:
        report = grow_folder(model, new, output, config=config, old_data=old, rebuild_memory=rebuild_memory,
                             eval_data=evaluation, compare_joint=compare_joint, overwrite=overwrite,
                             progress=progress)
    if quiet:
        _print_json(report.summary())
        return
    console.print(f"saved [bold]{_plain(report.output)}[/] (step {report.step}: +{len(report.added)} classes "
                  f"{_plain(', '.join(report.added))}; {report.rows:,} new rows + {report.rehearsal_rows:,} rehearsed) "
                  f"in {report.seconds:.0f}s")
    if report.scores:
        _print_matrix(report, eval_data)
    else:
        console.print("pass --eval-data TEST_DATA to see accuracy per step, forgetting and macro-F1")


def _model_labels(model: Path) -> list[str]:
    """The class names in the model's config.json (already checked to be valid JSON)."""
    import json

    id2label = json.loads((Path(model) / "config.json").read_text(encoding="utf-8")).get("id2label") or {}
    return [str(label) for label in id2label.values()]


def _print_matrix(report, eval_data: str) -> None:
    from textshift.grow import forgetting

    width = report.step
    table = Table(title=f"accuracy on each step's classes ({_plain(eval_data)})")
    table.add_column("model")
    for j in range(1, width + 1):
        table.add_column(f"step {j} classes", justify="right")
    table.add_column("macro-F1", justify="right")

    def cells(scores) -> list[str]:
        return [("" if scores.step_accuracy.get(j) is None else f"{scores.step_accuracy[j]:.3f}")
                for j in range(1, width + 1)] + [f"{scores.macro_f1:.3f}"]

    for scores in report.scores:
        table.add_row(f"after step {scores.step}", *cells(scores))
    lost = forgetting(report.scores)
    table.add_row("forgetting", *[(f"{lost[j]:+.3f}" if j in lost else "") for j in range(1, width + 1)], "")
    if report.joint is not None:
        table.add_row("joint (all data at once)", *cells(report.joint))
    console.print(table)
    if report.joint is not None:
        gap = report.scores[-1].macro_f1 - report.joint.macro_f1
        console.print(f"grown minus joint macro-F1: [bold]{gap:+.3f}[/]")
