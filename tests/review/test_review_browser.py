"""The review page in real headless Chromium: keyboard review, undo, reload, export, kill -9, script text, scale."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from review_helpers import CLASSES, SCRIPT_TEXT, fake_items, make_store

from playwright.sync_api import expect

from textshift.data import read_labeled
from textshift.review import start_review
from textshift.review.export import CHANGE_COLUMNS
from textshift.review.store import ReviewStore, default_store_path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)


def card(page, row: int):
    return page.locator(f"#list .item[data-row='{row}']")


def select_row(page, row: int) -> None:
    card(page, row).locator(".text").click()
    page.wait_for_selector(f"#list .item.selected[data-row='{row}']")


def wait_saved(page) -> None:
    expect(page.locator("#message")).to_contain_text("saved")
    page.evaluate("document.getElementById('message').textContent = ''")


def test_review_page_end_to_end(review_csv, page, tmp_path):
    data, store = make_store(review_csv)
    store.close()
    exports = tmp_path / "exports"
    exports.mkdir()
    server = start_review(review_csv, label_column="topic", export_dir=exports)
    try:
        open_page(page, server.url)
        # Only the suspicious items are listed, most suspicious first; the counter starts at 0 of 21.
        assert page.locator("#list .item").count() == 21
        assert page.inner_text("#range") == "1–21 of 21"
        assert page.inner_text("#counter").strip() == "0 of 21 reviewed"
        assert all(page.locator("#list .item .badges").nth(i).locator(".badge").count() >= 2 for i in range(21))

        # The item with <script> shows as text, runs nothing, and creates no elements.
        first = page.locator("#list .item").first
        assert first.get_attribute("data-row") == "0"
        assert first.locator(".text").inner_text() == SCRIPT_TEXT
        assert first.locator(".text script, .text b").count() == 0
        assert page.evaluate("document.querySelectorAll('#list script').length") == 0

        # Filters.
        page.select_option("#f-issue", "conflict")
        expect(page.locator("#list .item")).to_have_count(2)
        assert sorted(page.locator("#list .item").evaluate_all("cards => cards.map(c => c.dataset.row)")) == ["5", "6"]
        page.select_option("#f-issue", "")
        page.select_option("#f-label", "Health")
        expect(page.locator("#range")).to_have_text("1–8 of 8")
        assert set(page.locator("#list .item .given b").all_inner_texts()) == {"Health"}
        page.select_option("#f-label", "")
        page.fill("#f-search", "topic number 12")
        expect(page.locator("#list .item")).to_have_count(1)
        page.fill("#f-search", "")
        expect(page.locator("#list .item")).to_have_count(21)

        # Relabel with the keyboard: r, type a prefix, Enter.
        select_row(page, 4)  # given Education
        page.keyboard.press("r")
        page.keyboard.type("hea")
        page.keyboard.press("Enter")
        wait_saved(page)
        assert card(page, 4).locator(".state").inner_text() == "relabeled"
        assert card(page, 4).locator(".now b").inner_text() == "Health"
        assert page.inner_text("#reviewed") == "1"

        # Undo with the keyboard, then delete another item and mark one ambiguous.
        page.keyboard.press("u")
        expect(page.locator("#reviewed")).to_have_text("0")
        assert card(page, 4).locator(".state").inner_text() == "unreviewed"
        select_row(page, 2)
        page.keyboard.press("d")
        wait_saved(page)
        select_row(page, 8)
        page.keyboard.press("a")
        wait_saved(page)
        select_row(page, 10)
        page.keyboard.press("s")  # accept the suggestion
        wait_saved(page)
        original = data.frame["label"].tolist()
        assert card(page, 10).locator(".state").inner_text() == "relabeled"

        # Reload: every edit is still there.
        open_page(page, server.url)
        assert card(page, 2).locator(".state").inner_text() == "deleted"
        assert card(page, 8).locator(".state").inner_text() == "ambiguous"
        assert card(page, 4).locator(".state").inner_text() == "unreviewed"
        assert page.inner_text("#counter").strip() == "3 of 21 reviewed"

        # Duplicate set: keep one, delete the rest, from the side panel.
        select_row(page, 5)
        page.locator("#detail .keep-one").first.click()
        wait_saved(page)
        assert card(page, 6).locator(".state").inner_text() == "deleted"

        # Export through the button; the name cannot leave the export folder.
        page.fill("#export-name", "../outside.csv")
        page.click("#export")
        expect(page.locator("#message")).to_contain_text("export failed")
        page.fill("#export-name", "clean.csv")
        page.click("#export")
        expect(page.locator("#message")).to_contain_text("exported 38 rows")
        cleaned = pd.read_csv(exports / "clean.csv")
        assert len(cleaned) == 38 and list(cleaned.columns) == ["id", "text", "topic", "split"]
        assert cleaned.set_index("id").loc[110, "topic"] != original[10]
        changes = pd.read_csv(exports / "clean.changes.csv")
        assert sorted(changes["action"]) == ["ambiguous", "delete", "delete", "relabel"]
        assert not (tmp_path / "outside.csv").exists()
        assert page.dialogs == []
    finally:
        server.stop()


def test_sigkill_right_after_an_acknowledged_edit(review_csv, page, server_process):
    _, store = make_store(review_csv)
    store.close()
    server = server_process(review_csv)
    # A burst of edits over plain HTTP, each answered only once it is on disk ...
    for row in range(10, 40):
        request = urllib.request.Request(f"{server.base()}/api/edits", method="POST",
                                         data=json.dumps({"row": row, "action": "delete"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    # ... then one through the page with the keyboard, and SIGKILL the moment the page says "saved".
    open_page(page, server.url)
    select_row(page, 4)
    page.keyboard.press("r")
    page.keyboard.type("Defense")
    page.keyboard.press("Enter")
    wait_saved(page)
    server.kill()

    server = server_process(review_csv, port=server.port)
    open_page(page, server.url)
    assert card(page, 4).locator(".state").inner_text() == "relabeled"
    assert card(page, 4).locator(".now b").inner_text() == "Defense"
    assert card(page, 10).locator(".state").inner_text() == "deleted"
    with ReviewStore.open(default_store_path(review_csv)) as reopened:
        assert len(reopened.edits()) == 31
        assert reopened.summary()["by_status"] == {"relabeled": 1, "deleted": 30}


def test_hundred_thousand_rows_open_in_under_a_second(tmp_path, page):
    n = 100_000
    rng = np.random.default_rng(0)
    words = np.array(["farm", "tax", "school", "army", "health", "road", "trade", "court"])
    path = tmp_path / "big.csv"
    pd.DataFrame({"text": [f"Bill {i} on {w}" for i, w in enumerate(rng.choice(words, n))],
                  "label": rng.choice(words, n)}).to_csv(path, index=False)
    data = read_labeled(path)
    ReviewStore.create(default_store_path(path), data=data, items=fake_items(data, suspicious_every=3),
                       classes=sorted(words.tolist())).close()
    server = start_review(data, export_dir=tmp_path)
    try:
        started = time.perf_counter()
        page.goto(server.url)
        page.wait_for_selector("#list .item")
        elapsed = time.perf_counter() - started
        print(f"100,000 rows: first page shown {elapsed:.2f}s after navigation")
        assert page.locator("#list .item").count() == 50
        assert page.inner_text("#range") == "1–50 of 33,334"
        assert elapsed < 1.0, f"first page took {elapsed:.2f}s"
        page.click("#next")
        expect(page.locator("#range")).to_have_text("51–100 of 33,334")
    finally:
        server.stop()


def test_export_button_asks_before_replacing_a_file(review_csv, browser, tmp_path):
    """An earlier export mytest.csv in the export folder is replaced only after the user confirms."""
    _, store = make_store(review_csv)
    store.apply(2, "delete")
    store.close()
    exports = tmp_path / "exports"
    exports.mkdir()
    mine = "text,label\nmy own test row,Health\n"
    (exports / "mytest.csv").write_text(mine)
    (exports / "mytest.changes.csv").write_text(",".join(CHANGE_COLUMNS) + "\n")  # as an earlier export left it
    server = start_review(review_csv, label_column="topic", export_dir=exports)
    context = browser.new_context()
    try:
        tab = context.new_page()
        answers, asked = [False, True], []
        tab.on("dialog", lambda dialog: (asked.append(dialog.message),
                                         dialog.accept() if answers.pop(0) else dialog.dismiss()))
        open_page(tab, server.url)
        tab.fill("#export-name", "mytest.csv")
        tab.click("#export")
        expect(tab.locator("#message")).to_contain_text("not exported")
        assert len(asked) == 1 and "mytest.csv already exists (a review export)" in asked[0] and "Replace it?" in asked[0]
        assert (exports / "mytest.csv").read_text() == mine
        tab.click("#export")
        expect(tab.locator("#message")).to_contain_text("exported 39 rows")
        assert len(asked) == 2 and len(pd.read_csv(exports / "mytest.csv")) == 39
        tab.fill("#export-name", "fresh.csv")  # a new name is written without a question
        tab.click("#export")
        expect(tab.locator("#message")).to_contain_text("fresh.csv")
        assert len(asked) == 2 and (exports / "fresh.csv").exists()
    finally:
        context.close()
        server.stop()


def test_relabel_from_the_printed_review_command_reaches_the_export(review_csv, page, server_process, tiny_backbone,
                                                                    run_cli, tmp_path):
    """inspect --label-column topic, then the `textshift review DATA --report R` it prints (no --label-column):
    a relabel made on the page is in the exported file's own `topic` column, every other column kept."""
    data = read_labeled(review_csv, label_column="topic")
    inspected = run_cli("inspect", review_csv, "-o", tmp_path / "report", "--label-column", "topic", "--backbone",
                        tiny_backbone, "--folds", "2", "--duplicate-threshold", "1")
    assert inspected.exit_code == 0, inspected
    exports = tmp_path / "exports"
    exports.mkdir()
    server = server_process(review_csv, "--report", str(tmp_path / "report"), "--export-dir", str(exports),
                            label_column=None)
    open_page(page, server.url)
    row = int(page.locator("#list .item").first.get_attribute("data-row"))
    given = data.labels[row]
    new = next(label for label in CLASSES if label != given)
    select_row(page, row)
    page.keyboard.press("r")
    page.keyboard.type(new)
    page.keyboard.press("Enter")
    wait_saved(page)
    assert card(page, row).locator(".now b").inner_text() == new
    page.fill("#export-name", "clean.csv")
    page.click("#export")
    expect(page.locator("#message")).to_contain_text("exported 40 rows")
    original = pd.read_csv(review_csv)
    cleaned = pd.read_csv(exports / "clean.csv")
    assert list(cleaned.columns) == list(original.columns) == ["id", "text", "topic", "split"]
    assert cleaned.loc[row, "topic"] == new
    expected = original.copy()
    expected.loc[row, "topic"] = new
    pd.testing.assert_frame_equal(cleaned, expected)
    changes = pd.read_csv(exports / "clean.changes.csv")
    assert changes[["row", "action", "old_label", "new_label"]].values.tolist() == [[row, "relabel", given, new]]
    assert page.dialogs == []
