"""``textshift grow``: add new classes to a trained model without forgetting the old ones.

Registered in :data:`textshift.cli.COMMANDS`; the work is done by :func:`textshift.grow.grow_folder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textshift.cli.common import (
    BatchSize,
    Epochs,
    LabelColumn,
    LearningRate,
    LongTextsMode,
    MaxLength,
    MaxWindows,
    Overwrite,
    Quiet,
    Seed,
    TextColumn,
    WarmupEpochs,
    WindowOverlap,
    console,
    err_console,
    long_text_options,
    plain,
    print_result,
    train_config,
    training_progress,
    warnings_shown,
)
from textshift.locks import writes
from textshift.memory import DEFAULT_MEMORY_PER_CLASS

GrownModel = Annotated[Path, typer.Argument(help="Model folder saved by textshift (or any HF classification "
                                                 "folder).")]
NewData = Annotated[str, typer.Argument(help="Labelled examples of the new classes (file or embedded:NAME); rows of "
                                             "known classes are trained on too.")]
GrownOutput = Annotated[Path, typer.Option("--output", "-o", help="Folder to save the grown model in.")]
MemoryPerClass = Annotated[int, typer.Option(help="Examples per class kept in the rehearsal memory.")]
Distill = Annotated[bool, typer.Option("--distill/--no-distill", help="Distil the old model's outputs on the old "
                                                                      "classes (learning without forgetting).")]
DistillWeight = Annotated[float, typer.Option(help="Weight of the distillation loss.")]
BiasCorrection = Annotated[str, typer.Option(help="balanced+align (both), balanced (class-balanced loss), align "
                                                  "(shrink new head rows longer than the old ones), logit-adjust "
                                                  "(balanced softmax: log class counts added to the logits in the "
                                                  "loss), logit-adjust+align, or none.")]
AsymmetricLoss = Annotated[bool, typer.Option("--asymmetric-loss/--no-asymmetric-loss",
                                              help="Score rows of new classes against the new classes only, "
                                                   "remembered rows against all (ER-ACE).")]
CalibrateHoldout = Annotated[int, typer.Option(help="Rows per class held out of training to fit a scale and shift "
                                                    "of the new classes' logits afterwards (BiC); 0: off.")]
Head = Annotated[str, typer.Option(help="trained (fine-tune the model on the new data and the memory) or lda (no "
                                        "training: the encoder stays, every head row comes from per-class feature "
                                        "statistics saved with the model).")]
Shrinkage = Annotated[float, typer.Option(help="--head lda: share of the identity mixed into the shared "
                                               "covariance, in [0, 1).")]
OldData = Annotated[str | None, typer.Option("--old-data", help="Old training data: rehearsal examples when the "
                                             "model has no memory, the old classes' statistics for --head lda when "
                                             "the model has none, and the old half of --compare-joint.")]
RebuildMemory = Annotated[bool, typer.Option("--rebuild-memory", help="Ignore the stored memory (and feature "
                                             "statistics) and rebuild them from --old-data.")]
EvalData = Annotated[str | None, typer.Option("--eval-data", help="Labelled test data: report accuracy per step's "
                                              "classes, forgetting and macro-F1.")]
CompareJoint = Annotated[bool, typer.Option("--compare-joint", help="Also train one model on --old-data and "
                                            "NEW_DATA at once and report the same numbers.")]


@writes("output")
def grow(
    model: GrownModel,
    new_data: NewData,
    output: GrownOutput,
    memory_per_class: MemoryPerClass = DEFAULT_MEMORY_PER_CLASS,
    distill: Distill = True,
    distill_weight: DistillWeight = 1.0,
    bias_correction: BiasCorrection = "balanced+align",
    asymmetric_loss: AsymmetricLoss = False,
    calibrate_holdout: CalibrateHoldout = 0,
    head: Head = "trained",
    shrinkage: Shrinkage = 0.1,
    old_data: OldData = None,
    rebuild_memory: RebuildMemory = False,
    eval_data: EvalData = None,
    compare_joint: CompareJoint = False,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    warmup_epochs: WarmupEpochs = None,
    max_length: MaxLength = None,
    long_texts: LongTextsMode = None,
    window_overlap: WindowOverlap = None,
    max_windows: MaxWindows = None,
    seed: Seed = 42,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Add the new classes of NEW_DATA to a trained model, rehearsing a memory of the old ones.

    Example: textshift grow bills-model new_topics.csv -o bills-model-v2 --eval-data embedded:bills-test
    """
    from textshift.grow import GrowConfig, grow_folder
    from textshift.model import check_model_folder, check_output_folder

    config = GrowConfig(memory_per_class=memory_per_class, distill=distill, distill_weight=distill_weight,
                        bias_correction=bias_correction, asymmetric_loss=asymmetric_loss,
                        calibrate_holdout=calibrate_holdout, head=head, shrinkage=shrinkage, seed=seed,
                        train=train_config(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                           warmup_epochs=warmup_epochs, max_length=max_length, seed=seed,
                                           **long_text_options(long_texts, window_overlap, max_windows, model)))
    check_model_folder(model)  # a broken model fails here, before the status line
    check_output_folder(output, overwrite=overwrite, inputs=(model, new_data, old_data, eval_data))
    new, old, evaluation = _read_grow_data(model, (new_data, old_data, eval_data), text_column=text_column,
                                           label_column=label_column)
    if not quiet:
        err_console.print(f"growing {plain(model)} with {len(new):,} rows of {plain(new_data)}")
    # warnings as they happen, before the long part, not again at the end
    with warnings_shown(), training_progress(quiet) as progress:
        report = grow_folder(model, new, output, config=config, old_data=old, rebuild_memory=rebuild_memory,
                             eval_data=evaluation, compare_joint=compare_joint, overwrite=overwrite,
                             progress=progress)
    print_result(report.summary(), quiet=quiet, human=lambda: _print_grown(report, eval_data))


def _read_grow_data(model: Path, paths: tuple[str | None, ...], *, text_column: str | None,
                    label_column: str | None) -> list:
    """The datasets at ``paths`` (None where a path is None), their labels checked against the model's classes."""
    from textshift.data import check_label_spelling, read_labeled
    from textshift.model import model_labels

    datasets = [read_labeled(path, text_column=text_column, label_column=label_column) if path else None
                for path in paths]
    labels = model_labels(model)
    for dataset in datasets:
        if dataset is not None and labels:
            check_label_spelling(dataset, labels)
    return datasets


def _print_grown(report, eval_data: str | None) -> None:
    console.print(f"saved [bold]{plain(report.output)}[/] (step {report.step}: +{len(report.added)} classes "
                  f"{plain(', '.join(report.added))}; {report.rows:,} new rows + {report.rehearsal_rows:,} rehearsed) "
                  f"in {report.seconds:.0f}s")
    if report.scores:
        _print_matrix(report, eval_data)
    else:
        console.print("pass --eval-data TEST_DATA to see accuracy per step, forgetting and macro-F1")


def _print_matrix(report, eval_data: str) -> None:
    from textshift.grow import forgetting

    width = report.step
    table = Table(title=f"accuracy on each step's classes ({plain(eval_data)})")
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
