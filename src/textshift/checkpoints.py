"""Epoch checkpoints of a training run, so an interrupted run can continue where it stopped.

A checkpoint folder holds at most one complete checkpoint, ``epoch-NNNN/``, plus hidden ``.tmp-*`` folders
that a killed save may leave behind (never read)::

    news-model.checkpoint/
        epoch-0003/
            model.safetensors       weights after epoch 3
            best.safetensors        weights of the best epoch so far (absent without validation)
            optimizer.safetensors   optimizer moments; its param groups are in state.json
            rng.safetensors         torch (and CUDA) generator states of every process
            state.json              epoch, best score, stale count, history, scheduler, numpy/python RNG,
                                    and the fingerprint of the run's data and settings; written last

Everything is safetensors + JSON: nothing is unpickled on resume. (``accelerate``'s ``save_state`` pickles the
sampler and the RNG states, so it is not used.) A checkpoint is written into a hidden temporary folder, flushed
to disk and renamed into place; only then is the previous one deleted, so a crash at any moment leaves at least
one complete checkpoint.

This module only reads and writes files; :func:`textshift.training.train` decides what goes in them.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from textshift.errors import ConfigError
from textshift.files import remove_folder, swap_folder

STATE_FILE = "state.json"
FORMAT_VERSION = 1
_EPOCH_DIR = re.compile(r"^epoch-(\d+)$")


def checkpoint_dir_for(output: str | os.PathLike) -> Path:
    """Where ``textshift train -o OUTPUT`` keeps its checkpoints: ``OUTPUT.checkpoint`` beside the model folder.

    Beside, not inside, so the model folder stays a plain Hugging Face folder and an older model there is left
    untouched until the final atomic save.
    """
    output = Path(output)
    return output.parent / f"{output.name}.checkpoint"


@dataclass
class Checkpoint:
    """A loaded checkpoint: tensors by file, and the JSON state."""

    path: Path
    state: dict
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    optimizer: dict
    rng: dict = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"checkpoint folder {folder} is a file; expected a folder of epoch checkpoints. "
                          "Move the file or choose another output path")
    if folder.is_dir():
        strangers = [p.name for p in folder.iterdir() if not (_EPOCH_DIR.match(p.name) or p.name.startswith(".tmp-"))]
        if strangers:
            raise ConfigError(f"{folder} holds files that are not textshift checkpoints ({', '.join(strangers[:3])}); "
                              "expected only epoch-NNNN folders. Move them away or choose another output path")


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``folder`` (one with a readable ``state.json``), or None."""
    folder = Path(folder)
    _check_folder(folder)
    if not folder.is_dir():
        return None
    candidates = sorted(((int(m.group(1)), p) for p in folder.iterdir() if (m := _EPOCH_DIR.match(p.name))),
                        reverse=True)
    for _, path in candidates:
        try:
            json.loads((path / STATE_FILE).read_text())
        except (OSError, ValueError):
            continue
        return path
    return None


def read_state(path: str | os.PathLike) -> dict:
    return json.loads((Path(path) / STATE_FILE).read_text())


def remove_checkpoints(folder: str | os.PathLike) -> None:
    """Delete a checkpoint folder (after the final model is safely saved). Refuses folders that hold other files.

    The folder is first renamed to a hidden ``.OUTPUT.tmp-checkpoint-*`` sibling in one step, so a kill during the
    deletion (hundreds of MB of optimizer state take a while) cannot leave a half-deleted checkpoint that looks
    like an interrupted run; the next write to OUTPUT removes such a leftover (:mod:`textshift.locks`).
    """
    folder = Path(folder)
    _check_folder(folder)
    if folder.is_dir():
        doomed = folder.with_name(f".{folder.name.removesuffix('.checkpoint')}.tmp-checkpoint-{uuid.uuid4().hex[:8]}")
        remove_folder(folder, aside=doomed)


def clear_checkpoints(folder: str | os.PathLike) -> None:
    """Empty a checkpoint folder before a fresh run, so an older run's epochs cannot be mistaken for this one's."""
    folder = Path(folder)
    _check_folder(folder)
    if folder.is_dir():
        for entry in folder.iterdir():
            shutil.rmtree(entry, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- state to tensors
def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict; every tensor owns its memory (safetensors refuses shared ones)."""
    return {name: value.detach().to("cpu", copy=True).contiguous() for name, value in module.state_dict().items()}


def split_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer ``state_dict`` as (tensors named ``PARAM.KEY``, JSON-able rest)."""
    tensors, values = {}, {}
    for param_id, entries in state_dict["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                values[f"{param_id}.{key}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "values": values}


def join_optimizer_state(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in [*tensors.items(), *rest["values"].items()]:
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """This process's random generator states: (tensors, JSON-able)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = state
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return tensors, {"numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(gauss)],
                     "python": [version, list(internal), py_gauss]}


def restore_rng(tensors: dict[str, torch.Tensor], values: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, position, has_gauss, gauss = values["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, py_gauss = values["python"]
    random.setstate((version, tuple(internal), py_gauss))


# ---------------------------------------------------------------------------------------------- save / load
def save_checkpoint(folder: str | os.PathLike, *, epoch: int, model: dict[str, torch.Tensor],
                    best: dict[str, torch.Tensor] | None, optimizer: dict, rng: list[tuple[dict, dict]],
                    state: dict) -> Path:
    """Write the checkpoint of ``epoch`` atomically and delete older ones; returns its folder.

    ``optimizer`` is an optimizer ``state_dict``; ``rng`` one :func:`capture_rng` result per process, in process
    order; ``state`` the JSON-able rest. Call it from one process only.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    _check_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"epoch-{epoch:04d}"
    tmp = folder / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file(model, str(tmp / "model.safetensors"))
        if best is not None:
            save_file(best, str(tmp / "best.safetensors"))
        optimizer_tensors, optimizer_rest = split_optimizer_state(optimizer)
        save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"))
        save_file({f"rank{rank}.{name}": value for rank, (tensors, _) in enumerate(rng)
                   for name, value in tensors.items()}, str(tmp / "rng.safetensors"))
        payload = {"format": FORMAT_VERSION, **state, "epoch": epoch, "optimizer": optimizer_rest,
                   "rng": [values for _, values in rng]}
        (tmp / STATE_FILE).write_text(json.dumps(payload) + "\n")  # last: its presence marks a complete checkpoint
        if final.exists():
            shutil.rmtree(final)
        swap_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for entry in folder.iterdir():
        if entry != final:
            shutil.rmtree(entry, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, *, process_index: int = 0) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; RNG states are those of ``process_index``."""
    from safetensors.torch import load_file

    path = Path(path)
    state = read_state(path)
    if state.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{path} was written by another textshift version (format {state.get('format')}); "
                          f"expected format {FORMAT_VERSION}. Start over without --resume")
    best_file = path / "best.safetensors"
    optimizer = join_optimizer_state(load_file(str(path / "optimizer.safetensors")), state["optimizer"])
    prefix = f"rank{process_index}."
    rng_tensors = {name[len(prefix):]: value for name, value in load_file(str(path / "rng.safetensors")).items()
                   if name.startswith(prefix)}
    return Checkpoint(path=path, state=state, model=load_file(str(path / "model.safetensors")),
                      best=load_file(str(best_file)) if best_file.exists() else None, optimizer=optimizer,
                      rng={"tensors": rng_tensors, "values": state["rng"][process_index]})


def check_fingerprint(path: Path, saved: dict, current: dict) -> None:
    """Raise a one-line ConfigError naming the first difference between a checkpoint's run and this one."""
    for key, value in current.items():
        before = saved.get(key)
        if before == value:
            continue
        if key == "settings":
            name = next(k for k in value if (before or {}).get(k) != value[k])
            what = f"the '{name}' setting was {(before or {}).get(name)!r}, now {value[name]!r}"
        elif key == "data_sha256":
            what = "the training or validation rows differ"
        elif key == "processes":
            what = f"it was written by {before} process(es), this run has {value}"
        else:
            what = f"its {key} was {_short(before)}, now {_short(value)}"
        raise ConfigError(f"cannot resume from {path}: {what}; expected the interrupted run's data and settings. "
                          "Rerun with them, or start over (--overwrite instead of --resume)")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
