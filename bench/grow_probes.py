"""Probe: two post-hoc fixes for forgetting in ``textshift grow``, measured on the grow benchmark's split.

Both act on models that ``grow`` has already trained with its defaults, so they cost little to try:

interpolate-A   weight interpolation with the parent (as in WiSE-FT): every weight of the grown model becomes
                (1 - A) * grown + A * parent; for the head, only the old classes' rows are mixed (the parent has
                no rows for the new ones). At step 2 the default step-2 model is interpolated; at step 3 the
                interpolated step-2 model is grown with the defaults and the result interpolated again, so the
                chain is what a user applying it at every step would get.
ncm-ROWS[-cos]  the head is replaced by a nearest-class-mean classifier on the head-input vectors, folded into the
                linear head (``2 mu_c . x - |mu_c|^2``, or cosine similarity with ``-cos``): the class means come
                from the grown model's memory (ROWS = memory: 20 rows a class) or from the memory plus every row
                of the step's new data (ROWS = all), computed with the grown encoder (as in iCaRL).

``default`` rows are the default grown models themselves. Every model is scored on the ``test`` bills of the
classes it knows, as in ``bench/grow_bills.py`` (same topic order, same step-1 model, same memory).

    HF_HUB_OFFLINE=1 python bench/grow_probes.py --seeds 0               # ~15 min a seed on 2 cores

Writes bench/results/grow_probes.csv (probe,step,seed,macro_f1,forgetting,acc_step1,acc_step2,acc_step3;
forgetting: the step-1 model's accuracy on the first step's classes minus the current one); rerunning skips
finished rows, and the grown models are kept in --work-dir.

    python bench/grow_probes.py --plot    # bench/results/grow_tradeoff.png: macro-F1 against forgetting, step 3
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
import grow_bills  # noqa: E402  (the benchmark's split, step-1 model and settings)

from textshift.grow import GrowConfig, Memory, grow, read_memory, save_with_memory, score_steps  # noqa: E402
from textshift.model import Classifier, head_linear  # noqa: E402
from textshift.training import deepcopy_classifier  # noqa: E402

COLUMNS = ["probe", "step", "seed", "macro_f1", "forgetting", "acc_step1", "acc_step2", "acc_step3"]


def interpolate(parent: Classifier, grown: Classifier, weight: float) -> Classifier:
    """A copy of ``grown`` whose weights are moved ``weight`` of the way back to ``parent``'s."""
    mixed = deepcopy_classifier(grown)
    before = parent.model.state_dict()
    n_old = len(parent.labels)
    with torch.no_grad():
        for name, value in mixed.model.state_dict().items():
            if not value.is_floating_point():
                continue
            old = before[name]
            part = value if old.shape == value.shape else value[:n_old]
            part.mul_(1 - weight).add_(old if old.shape == value.shape else old[:n_old], alpha=weight)
    return mixed


def nearest_mean(model: Classifier, texts: list[str], labels: list[str], *, cosine: bool,
                 max_length: int) -> Classifier:
    """A copy of ``model`` whose head scores each class by closeness to its mean head-input vector."""
    out = deepcopy_classifier(model)
    features = out.features(texts, max_length=max_length)
    if cosine:
        features = features / np.linalg.norm(features, axis=1, keepdims=True)
    labels = np.asarray(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in out.labels])
    head = head_linear(out.model)
    if cosine:
        weight, bias = means / np.linalg.norm(means, axis=1, keepdims=True), np.zeros(len(means))
    else:
        weight, bias = 2 * means, -(means ** 2).sum(axis=1)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))
    return out


class Probes:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.output = Path(args.output)
        # The benchmark's default settings: its step-1 models and their CSV rows are shared with grow_bills.py.
        bench = grow_bills.parse_args(["--variants", "default", "--work-dir", args.work_dir,
                                       "--max-length", str(args.max_length)])
        self.runner = grow_bills.Runner(bench)
        self.done = pd.read_csv(self.output) if self.output.exists() else pd.DataFrame(columns=COLUMNS)

    def finished(self, probe: str, step: int, seed: int) -> bool:
        d = self.done
        return bool(((d.probe == probe) & (d.step == step) & (d.seed == seed)).any())

    def record(self, probe: str, step: int, seed: int, model: Classifier, test, steps, first_accuracy: float):
        scores = score_steps(model, test, steps[:step])
        row = {"probe": probe, "step": step, "seed": seed, "macro_f1": round(scores.macro_f1, 4),
               "forgetting": round(first_accuracy - scores.step_accuracy[1], 4),
               **{f"acc_step{j}": round(v, 4) for j, v in scores.step_accuracy.items()}}
        new = not self.output.exists()
        with open(self.output, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.done = pd.concat([self.done, pd.DataFrame([row])], ignore_index=True)
        print(f"{probe:16s} step {step} seed {seed}: macro-F1 {row['macro_f1']:.4f}, forgetting "
              f"{row['forgetting']:+.4f}", flush=True)

    def grown(self, folder: Path, parent: Classifier, memory: Memory | None, new, config: GrowConfig):
        """The default grown model of ``parent`` (kept in ``folder`` for reruns) and its memory."""
        if not folder.exists():
            result = grow(parent, new, memory=memory, config=config)
            save_with_memory(result.classifier, folder, result.memory, overwrite=True,
                             per_class=config.memory_per_class)
        return Classifier.load(folder), read_memory(folder)

    def run(self, seed: int) -> None:
        runner, max_length = self.runner, self.args.max_length
        steps, step_data, test = runner.split(seed)
        first = runner.step_one(seed, steps, step_data, test)
        first_accuracy = score_steps(first, test, steps[:1]).step_accuracy[1]
        config = GrowConfig(seed=seed, train=runner.train_config(seed))
        memory = Memory.sample(step_data[0].text.tolist(), step_data[0].label.tolist(),
                               per_class=config.memory_per_class, seed=seed)
        new = [grow_bills.as_data(step_data[i], f"bills-train step {i + 1}") for i in range(len(steps))]
        work = runner.work / f"seed{seed}" / "probes"

        # The default chain and the nearest-class-mean heads on it.
        parent, parent_memory = first, memory
        chain = {}
        for step in (2, 3):
            model, model_memory = self.grown(work / f"default-step{step}", parent, parent_memory, new[step - 1],
                                             config)
            chain[step] = model
            if not self.finished("default", step, seed):
                self.record("default", step, seed, model, test, steps, first_accuracy)
            step_texts = list(parent_memory.texts) + new[step - 1].texts
            step_labels = list(parent_memory.labels) + new[step - 1].labels
            for rows, (texts, labels) in {"memory": (model_memory.texts, model_memory.labels),
                                          "all": (step_texts, step_labels)}.items():
                for cosine in (False, True):
                    probe = f"ncm-{rows}" + ("-cos" if cosine else "")
                    if not self.finished(probe, step, seed):
                        head = nearest_mean(model, list(texts), list(labels), cosine=cosine, max_length=max_length)
                        self.record(probe, step, seed, head, test, steps, first_accuracy)
            parent, parent_memory = model, model_memory

        # Interpolation with the parent, applied at every step.
        step2_memory = read_memory(work / "default-step2")
        for weight in self.args.weights:
            probe = f"interpolate-{weight:g}"
            mixed2 = interpolate(first, chain[2], weight)
            if not self.finished(probe, 2, seed):
                self.record(probe, 2, seed, mixed2, test, steps, first_accuracy)
            if weight in self.args.chain_weights and not self.finished(probe, 3, seed):
                grown3, _ = self.grown(work / f"{probe}-step3", mixed2, step2_memory, new[2], config)
                self.record(probe, 3, seed, interpolate(mixed2, grown3, weight), test, steps, first_accuracy)


def plot_tradeoff(probes_csv: Path, bench_csv: Path, out: Path, *, seed: int) -> None:
    """Macro-F1 against forgetting after step 3 for every variant and probe run on ``seed``, with the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bench = grow_bills.load_done(bench_csv)
    bench = bench[bench.max_per_class.isna() & bench.epochs.isna() & bench.test_per_class.isna()
                  & (bench.max_length == 128) & (bench.step == 3) & (bench.seed == seed)]
    probes = pd.read_csv(probes_csv)
    probes = probes[(probes.step == 3) & (probes.seed == seed) & (probes.probe != "default")]
    points = [(r.variant, r.macro_f1, r.forgetting) for r in bench.itertuples()]
    points += [(r.probe, r.macro_f1, r.forgetting) for r in probes.itertuples()]
    joint = next(p for p in points if p[0] == "joint")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.fill_between([-1, 5], joint[1] - 0.03, 1.0, color="tab:green", alpha=0.15,
                    label="target: forgetting ≤ 5, macro-F1 within 3 of joint")
    for name, f1, forgot in points:
        color = "tab:green" if name == "joint" else "tab:red" if name == "default" else "tab:blue"
        ax.scatter(100 * forgot, f1, color=color, s=28, zorder=3)
        ax.annotate(name, (100 * forgot, f1), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlim(0, 100 * max(p[2] for p in points) + 4)
    ax.set_ylim(min(p[1] for p in points) - 0.02, joint[1] + 0.02)
    ax.set_xlabel("forgetting of the step-1 classes after step 3 (points)")
    ax.set_ylabel("macro-F1 after step 3")
    ax.set_title(f"Growing a bills classifier in 3 steps (seed {seed}, every train row)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--weights", default="0.2,0.35,0.5", type=lambda s: [float(x) for x in s.split(",")],
                        help="interpolation weights scored at step 2")
    parser.add_argument("--chain-weights", default="0.35,0.5", type=lambda s: [float(x) for x in s.split(",")],
                        help="of those, the ones also carried through step 3 (one more grow each)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "grow_probes.csv"))
    parser.add_argument("--work-dir", default=str(Path(__file__).parent / "work" / "grow-full"))
    parser.add_argument("--plot", action="store_true",
                        help="only draw macro-F1 against forgetting after step 3 (first seed) from both CSVs")
    args = parser.parse_args(argv)
    if args.plot:
        plot_tradeoff(Path(args.output), Path(grow_bills.parse_args([]).output),
                      Path(args.output).with_name("grow_tradeoff.png"), seed=args.seeds[0])
        return
    probes = Probes(args)
    for seed in args.seeds:
        probes.run(seed)


if __name__ == "__main__":
    main()
