"""From nothing to a model in real Chromium: suggest, label five texts with the keyboard, kill -9, export, transfer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect
from review_helpers import free_port

from textshift.data import read_labeled

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CLASSES = ["Defense", "Education", "Health", "Law and Crime"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")]


def textshift(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TEXTSHIFT_CACHE=str(cwd / "cache"))
    return subprocess.run([sys.executable, "-m", "textshift", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


class LabelServer:
    """``textshift label`` in a subprocess, killed with SIGKILL like a crash."""

    def __init__(self, cwd: Path, port: int):
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "textshift", "label", "to_label.csv", "--model", "model", "--port", str(port)],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.process.kill()
            raise AssertionError(f"no URL printed: {self.process.stderr.read()[-2000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture()
def project(tmp_path, tiny_backbone, small_bills) -> Path:
    from textshift.model import Classifier

    Classifier.from_backbone(tiny_backbone, labels=CLASSES, seed=0).save(tmp_path / "model")
    pd.read_csv(small_bills)[["text"]].to_csv(tmp_path / "pool.csv", index=False)
    return tmp_path


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)


def label_with(page, key: str) -> str:
    """Press ``key`` on the current text; returns that text once the page has moved on (the save is done)."""
    text = page.locator("#text").inner_text()
    before = int(page.locator("#done").inner_text())
    page.keyboard.press(key)
    expect(page.locator("#done")).to_have_text(str(before + 1), timeout=10_000)
    return text


def test_suggest_label_kill_restart_export_transfer(project):
    from playwright.sync_api import sync_playwright

    suggested = textshift("suggest", "model", "pool.csv", "-n", "8", "-o", "to_label.csv", "--seed", "3",
                          cwd=project)
    assert suggested.returncode == 0, suggested.stderr
    chosen = pd.read_csv(project / "to_label.csv")
    assert len(chosen) == 8 and chosen["text"].is_unique and set(chosen["guess"]) <= set(CLASSES)
    port = free_port()
    server = LabelServer(project, port)
    expected: dict[str, str] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            page = browser.new_page()
            open_page(page, server.url)
            guess = page.locator("#guess").inner_text()
            assert page.locator("#classes button.selected").inner_text().endswith(guess)  # guess pre-selected
            expected[label_with(page, "Enter")] = guess
            expected[label_with(page, "1")] = "Defense"
            skipped = page.locator("#text").inner_text()
            page.keyboard.press("s")  # skip, then undo the skip: the text comes back undecided
            expect(page.locator("#skipped")).to_have_text("1")
            page.keyboard.press("u")
            expect(page.locator("#skipped")).to_have_text("0")
            assert page.locator("#text").inner_text() == skipped
            expected[label_with(page, "2")] = "Education"
            page.keyboard.press("n")
            page.keyboard.type("Brand new topic")
            text = page.locator("#text").inner_text()
            page.keyboard.press("Enter")
            expect(page.locator("#done")).to_have_text("4")
            expected[text] = "Brand new topic"
            expected[label_with(page, "3")] = "Health"
            assert page.locator("#done").inner_text() == "5"

            server.kill()  # SIGKILL: no shutdown handler runs
            server = LabelServer(project, port)
            open_page(page, server.url)
            assert page.locator("#done").inner_text() == "5"
            assert page.locator("#classes button", has_text="Brand new topic").count() == 1
            page.fill("#export-name", "labelled.csv")
            page.click("#export")
            expect(page.locator("#message")).to_contain_text("wrote 5 labelled texts")
            browser.close()
    finally:
        server.kill()
    labelled = read_labeled(project / "labelled.csv")
    assert dict(zip(labelled.texts, labelled.labels, strict=True)) == expected
    trained = textshift("transfer", "model", "labelled.csv", "-o", "model2", "--epochs", "1",
                        cwd=project)
    assert trained.returncode == 0, trained.stderr[-2000:]
    meta = json.loads((project / "model2" / "textshift.json").read_text())
    assert "Brand new topic" in json.dumps(meta)
