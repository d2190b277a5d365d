"""The chat page at / in a real browser (Debian's headless Chromium through Selenium): it streams a
reply that grows while tokens arrive, and colours each piece by the source the API reports.

The screenshot is written to $FSGEN_ARTIFACTS (else pytest's temporary folder) as server_page.png.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from helpers import require, skip_or_fail
from serve_process import REQUEST_TIMEOUT, SERVE_EXTRAS, pieces, sse_events

CHROMEDRIVER = "/usr/bin/chromedriver"
PROMPT = "Tell me a story"
# Long enough that the reply arrives over many network reads; a fixed draft length keeps which
# tokens are accepted drafts independent of measured speed.
MAX_TOKENS = 1000
DRAFT_MAX = 4

# Records, for every change of the reply, how many pieces it had and whether the page was still busy.
OBSERVE = """
window.__growth = [];
const log = document.getElementById('log');
new MutationObserver(() => {
  const msgs = log.querySelectorAll('.msg.assistant .body');
  const body = msgs[msgs.length - 1];
  if (body) window.__growth.push([body.querySelectorAll('.piece').length, document.body.dataset.busy,
                                  document.getElementById('stats').textContent]);
}).observe(log, {childList: true, subtree: true});
"""


@pytest.fixture(scope="module")
def browser():
    webdriver = require("selenium.webdriver", SERVE_EXTRAS)
    from selenium.webdriver.chrome.service import Service
    if not os.path.exists(CHROMEDRIVER) or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        skip_or_fail("Chromium and chromedriver are needed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def test_page_streams_and_colours_by_source(tiny_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # What the API says for the same greedy request: the pieces and who wrote each.
    body = {"messages": [{"role": "user", "content": PROMPT}], "stream": True, "temperature": 0,
            "max_tokens": MAX_TOKENS, "method": "speculative", "draft": "model", "draft_max": DRAFT_MAX}
    with httpx.stream("POST", tiny_server.url + "/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT) as r:
        expected = pieces(sse_events(r))
    assert {s for _, s in expected} == {0, 1}

    browser.get(tiny_server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: len(Select(d.find_element(By.ID, "method")).options) >= 7)
    Select(browser.find_element(By.ID, "method")).select_by_value("speculative")
    assert "accepted draft" in browser.find_element(By.ID, "legend").text
    # The page has no draft controls: the request it sends gets them added (the same request; a
    # fixed source and length, since "auto" picks its source by measured speed).
    browser.execute_script("""
      const send = window.fetch, draftMax = arguments[0];
      window.fetch = (url, init) => {
        if (init && init.method === 'POST') {
          const b = JSON.parse(init.body); b.draft = 'model'; b.draft_max = draftMax; init = {...init, body: JSON.stringify(b)};
        }
        return send.call(window, url, init);
      };""", DRAFT_MAX)
    for field, value in (("temperature", "0"), ("max-tokens", str(MAX_TOKENS))):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    browser.execute_script(OBSERVE)
    browser.find_element(By.ID, "prompt").send_keys(PROMPT)
    browser.find_element(By.ID, "send").click()
    wait.until(lambda d: d.execute_script("return document.body.dataset.busy") == "0"
               and d.find_elements(By.CSS_SELECTOR, ".msg.assistant .piece"))

    spans = browser.execute_script(
        "return [...document.querySelectorAll('.msg.assistant .piece')].map(p => [p.textContent, "
        "Number(p.dataset.source), getComputedStyle(p).backgroundColor])")
    assert [(text, source) for text, source, _ in spans] == expected
    colours = {}
    for _, source, colour in spans:
        colours.setdefault(source, set()).add(colour)
    assert all(len(c) == 1 for c in colours.values()) and len({next(iter(c)) for c in colours.values()}) == 2, colours

    growth = browser.execute_script("return window.__growth")
    final = len(spans)
    partial = {n for n, busy, _ in growth if 0 < n < final and busy == "1"}
    assert len(partial) >= 3, f"the reply should grow while tokens arrive, saw sizes {sorted(partial)} of {final}"
    stats = browser.find_elements(By.CSS_SELECTOR, ".msg.assistant .meta")[-1].text
    assert "tokens/s" in stats and "System 2" in stats and "drafts accepted" in stats, stats
    live = [line for n, busy, line in growth if 0 < n < final and busy == "1"]
    assert any("tokens/s" in line and "System 2" in line for line in live), "the live line during streaming"

    folder = Path(os.environ.get("FSGEN_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "server_page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
