"""The comparison report opens in real headless Chromium with the learning-curve plot visible."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from textshift.compare import CompareConfig, CompareResult, summarize
from textshift.report import write_compare_report

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _result(tmp_path: Path) -> CompareResult:
    runs = pd.DataFrame([{"strategy": s, "k": k, "seed": seed, "accuracy": 0.5, "macro_f1": f1 + seed * 0.01,
                          "train_seconds": 1.0, "per_class": '{"Health": 0.5, "Defense": 0.4}', "settings": "{}",
                          "chosen": "finetune" if s == "recommended" else None, "finished_at": ""}
                         for s, f1s in {"scratch": (0.1, 0.5), "finetune": (0.4, 0.6), "recommended": (0.4, 0.6),
                                        "tfidf-svm": (0.3, 0.4)}.items()
                         for k, f1 in zip((50, 500), f1s, strict=True) for seed in (0, 1, 2)])
    summary = summarize(runs)
    return CompareResult(runs, summary, "finetune", "Pretraining on news adds +0.300 macro-F1 at 50 rows",
                         tmp_path, None, {"type_overlap": 0.4, "zero_shot_recall": {"Health": 0.8}})


def test_report_lists_answer_and_tables(tmp_path):
    path = write_compare_report(_result(tmp_path), CompareConfig(sizes=[50, 500]))
    html = path.read_text()
    assert "adds +0.300 macro-F1" in html and "k=500" in html and "Health" in html
    assert (tmp_path / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "<td>vocabulary overlap</td><td>40.0%</td><td class='prose'>share of" in html
    assert "type_overlap" not in html
    assert "only the target's measures" in html  # no proxy A-distance without the source's texts
    assert ">nan<" not in html and ">None<" not in html  # missing values are blank cells
    assert "<td>0.510</td>" in html and "<td>1.0</td>" in html  # scores to 3 decimals, seconds to 1


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed")
def test_report_renders_plot_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    path = write_compare_report(_result(tmp_path), CompareConfig(sizes=[50, 500]))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(path.as_uri())
        width = page.eval_on_selector("#learning-curves", "img => img.complete ? img.naturalWidth : 0")
        box = page.locator("#learning-curves").bounding_box()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert width > 400 and box and box["height"] > 200
    assert (tmp_path / "report.png").stat().st_size > 20_000
