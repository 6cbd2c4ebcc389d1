"""What every ``textshift`` command shares: the consoles, the typed options, progress, and the output helpers.

Commands print their result on stdout through :func:`print_result`: with :data:`console`, or one line of JSON
under ``--quiet``. Progress and warnings go to :data:`err_console` (stderr).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from textshift.errors import ConfigError

# emoji=False: a text or label holding ":fire:" is printed as written, not as an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def plain(value) -> str:
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
LongTextsMode = Annotated[str | None, typer.Option(
    "--long-texts", help="Texts longer than --max-length: truncate (keep the first tokens) or chunks (read the "
                         "whole text in overlapping windows and average their logits). Saved with the model "
                         "\\[default: truncate].")]
WindowOverlap = Annotated[int | None, typer.Option(
    "--window-overlap", help="Tokens shared by consecutive windows with --long-texts chunks \\[default: 32].")]
MaxWindows = Annotated[int | None, typer.Option(
    "--max-windows", help="Most windows read per text with --long-texts chunks; a longer text keeps this many, "
                          "spread from its start to its end \\[default: 64].")]

RESUME_HELP = ("Continue an interrupted run from its last epoch checkpoint in OUTPUT.checkpoint/ (start fresh if "
               "there is none). Use the interrupted run's data and options.")

# The training options of `train` and `grow` (transfer and compare say their own defaults).
Epochs = Annotated[int | None, typer.Option(help="Fine-tuning epochs \\[default: auto, ~400 steps].")]
BatchSize = Annotated[int | None, typer.Option(help="Batch size \\[default: 32].")]
LearningRate = Annotated[float | None, typer.Option("--lr", help="Peak learning rate \\[default: 1e-4].")]
WarmupEpochs = Annotated[int | None, typer.Option(help="Head warm-up epochs, encoder frozen \\[default: 10].")]
MaxLength = Annotated[int | None, typer.Option(help="Max tokens per text \\[default: 128].")]
Resume = Annotated[bool, typer.Option("--resume", help=RESUME_HELP)]

# The local pages of `review` and `label`.
Host = Annotated[str, typer.Option(help="Address to bind; any non-loopback address requires the printed token.")]
Port = Annotated[int, typer.Option(help="Port (0: any free port).")]


def long_text_options(long_texts: str | None, window_overlap: int | None, max_windows: int | None,
                      model: Path | None = None) -> dict:
    """TrainConfig values of the long-text flags; a flag not passed keeps ``model``'s saved setting, if any."""
    from textshift.windows import SETTING_KEYS

    given = {"long_texts": long_texts, "window_overlap": window_overlap, "max_windows": max_windows}
    saved = {}
    meta = Path(model) / "textshift.json" if model is not None else None
    if meta is not None and meta.is_file():
        try:
            saved = json.loads(meta.read_text(encoding="utf-8")).get("settings") or {}
        except (OSError, ValueError, AttributeError):
            saved = {}  # loading the model reports a broken file properly
    return {key: given[key] if given[key] is not None else saved.get(key) for key in SETTING_KEYS.values()}


def print_lengths(report: dict | None, quiet: bool) -> None:
    """Say on stderr how many texts were longer than the model's length, and what was done with them."""
    from textshift.windows import LengthReport

    line = LengthReport(**report).summary() if report else None
    if line and not quiet:
        err_console.print(f"[yellow]long texts:[/] {line}", highlight=False)


def progress_enabled(quiet: bool) -> bool:
    """Progress on stderr: on a terminal, or anywhere with TEXTSHIFT_PROGRESS=1; never under --quiet."""
    return not quiet and (sys.stderr.isatty() or os.environ.get("TEXTSHIFT_PROGRESS") == "1")


class EpochProgress:
    """Draws a training's :class:`~textshift.training.TrainProgress` on stderr: a line per finished epoch (loss,
    validation macro-F1) and, on a terminal, a bar for the epoch under way that is gone once the run ends.

    ``epoch_lines=False`` keeps only the bar (``compare`` prints a line per run instead, and trains many).
    """

    def __init__(self, *, epoch_lines: bool = True):
        self.epoch_lines = epoch_lines
        self.bar = None
        self.task = None

    def __enter__(self) -> EpochProgress:
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
            run = f"{plain(event.run)}: " if event.run else ""
            self.bar.update(self.task, description=run + stage, completed=event.step, total=event.steps or None,
                            scores="  ".join(scores))


def training_progress(quiet: bool, *, epoch_lines: bool = True):
    """A context giving the ``progress`` callback of a training command (None when progress is off)."""
    return EpochProgress(epoch_lines=epoch_lines) if progress_enabled(quiet) else contextlib.nullcontext()


def train_config(**overrides):
    from textshift.training import TrainConfig

    return TrainConfig(**{k: v for k, v in overrides.items() if v is not None})


def require(option: str, value, ok: bool, allowed: str) -> None:
    """Refuse an out-of-range option with one line (click's own checks print a usage block)."""
    if not ok:
        raise ConfigError(f"{option} must be {allowed}; got {value}. Pass {option} with a value {allowed}")


# The settings (of TrainConfig, GrowConfig and InspectConfig) that a command-line flag sets: the flag is the
# setting's name with dashes, except where RENAMED_FLAGS says otherwise.
FLAG_SETTINGS = ("epochs", "batch_size", "learning_rate", "warmup_epochs", "layer_lr_decay", "max_length",
                 "logit_adjust", "long_texts", "window_overlap", "max_windows",
                 "memory_per_class", "distill_weight", "bias_correction", "calibrate_holdout", "head", "shrinkage",
                 "folds", "scorer", "duplicate_threshold")
RENAMED_FLAGS = {"learning_rate": "--lr"}
SETTING_FLAGS = {name: RENAMED_FLAGS.get(name, "--" + name.replace("_", "-")) for name in FLAG_SETTINGS}


def error_line(exc: Exception) -> str:
    """The message of a user error as the command line prints it: a refused setting also names its flag."""
    flag = SETTING_FLAGS.get(getattr(exc, "setting", None))
    return f"{exc} ({flag} on the command line)" if flag else str(exc)


def print_json(payload) -> None:
    typer.echo(json.dumps(payload, indent=None, default=str))


def print_result(payload, *, quiet: bool, human: Callable[[], None]) -> None:
    """A command's result on stdout: ``payload`` as one line of JSON under ``--quiet``, else what ``human()``
    prints."""
    if quiet:
        print_json(payload)
    else:
        human()


def checkpoint_preflight(output: Path, *, resume: bool, overwrite: bool) -> tuple[Path, str]:
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


class _RichWarnings(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        style = "bold red" if "forget" in message else "yellow"
        err_console.print(f"[{style}]warning:[/] {plain(message)}", highlight=False)


@contextlib.contextmanager
def warnings_shown():
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


def serve(server, *, quiet: bool, status: Callable[[dict], str], saved: str) -> None:
    """Serve a local page until Ctrl+C, its address printed on stdout; its edit log is closed either way.

    Unless ``quiet``, stderr first gets ``status(the edit log's counts)`` and how to stop, saying that every
    acknowledged ``saved`` (an edit, a label) is already saved.
    """
    if not quiet:
        err_console.print(status(server.store.summary()))
        err_console.print(f"press Ctrl+C to stop (every acknowledged {saved} is already saved)")
    typer.echo(server.url)
    sys.stdout.flush()
    try:
        server.run()
    finally:
        server.store.close()
