#!/usr/bin/python3
"""The page at `/` of `heed serve` in a real browser (headless Chromium through Debian's
chromium-driver and python3-selenium): trains a tiny classifier and a tiny summarizer with the heed
binary, serves both on an ephemeral port, classifies a text and summarizes an article from the page,
and checks what the page shows against the API's answers: the label, the streamed summary (which
must also have been drawn in several steps) and the attention views (present, not empty). The
browser console must have no SEVERE entries. Run by CTest (ServePage). Exits non-zero on failure."""

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from browser import assert_no_console_errors, make_driver  # tests/browser/browser.py
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as error:  # never a silent pass: CTest must see this
    sys.exit(f"FAIL: {error}. Install chromium, chromium-driver and python3-selenium (scripts/setup.sh).")

WORDS = ("the a movie film was is really very plot acting story actor director scene and but not music "
         "ending characters long short sad it this i").split()
POSITIVE = "great wonderful loved best funny brilliant".split()
NEGATIVE = "awful terrible hated worst boring dull".split()


def sentence(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) + "."


def write_data(folder, rng):
    with open(folder / "train.jsonl", "w") as out:
        for _ in range(120):
            positive = rng.random() < 0.5
            cues = POSITIVE if positive else NEGATIVE
            text = sentence(rng)[:-1] + " " + rng.choice(cues) + " " + rng.choice(cues) + "."
            out.write(json.dumps({"text": text, "label": "pos" if positive else "neg"}) + "\n")
    with open(folder / "pairs.jsonl", "w") as out:
        for _ in range(160):
            sentences = [sentence(rng) for _ in range(rng.randint(3, 5))]
            out.write(json.dumps({"article": " ".join(sentences), "highlights": sentences[0]}) + "\n")


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"FAIL: {' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def post(base, path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def start_server(heed, models, log_path):
    log = open(log_path, "w")
    args = [heed, "serve", "--port", "0", "--threads", "1"]
    for name, path in models.items():
        args += ["--model", f"{name}={path}"]
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    base = None
    while time.time() < deadline and process.poll() is None:
        match = re.search(r"listening on (http://[0-9.]+:\d+)", Path(log_path).read_text())
        if match:
            base = match.group(1)
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as response:
                    if response.status == 200:
                        return process, base
            except Exception:  # 503 while loading, or not yet listening
                pass
        time.sleep(0.1)
    process.kill()
    sys.exit(f"FAIL: heed serve did not become healthy:\n{Path(log_path).read_text()}")


def wait_done(driver, element_id, timeout=60):
    try:
        WebDriverWait(driver, timeout).until(
            lambda d: d.find_element(By.ID, element_id).get_attribute("data-done") == "true"
            or d.find_element(By.ID, "error").text)
    except TimeoutException:
        sys.exit(f"FAIL: #{element_id} not done after {timeout} s; it shows: "
                 f"{driver.find_element(By.ID, element_id).text[:300]!r}")
    error = driver.find_element(By.ID, "error").text
    if error:
        sys.exit(f"FAIL: the page shows an error: {error}")


def check_attention(driver, failures):
    wait_done(driver, "attention")
    box = driver.find_element(By.ID, "attention")
    drawn = box.find_elements(By.CSS_SELECTOR, "svg, canvas, table")
    if not drawn:
        failures.append("the attention views drew no svg, canvas or table")
    if not box.text.strip():
        failures.append("the attention views show no text")
    for svg in box.find_elements(By.CSS_SELECTOR, "svg"):
        if not svg.find_elements(By.CSS_SELECTOR, "*"):
            failures.append("an attention svg is empty")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--heed", required=True)
    parser.add_argument("--configs", required=True)
    args = parser.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder, random.Random(5))
        run([args.heed, "train", "--config", f"{args.configs}/tiny_classifier.json", "--set", "training.epochs=1",
             "--data-dir", str(folder), "--output", str(folder / "clf")])
        run([args.heed, "train", "--config", f"{args.configs}/tiny_summarizer.json", "--set", "training.epochs=3",
             "--set", "training.rouge_samples=4", "--data-dir", str(folder), "--output", str(folder / "sum")])
        server, base = start_server(args.heed, {"clf": folder / "clf", "sum": folder / "sum"}, folder / "serve.log")
        driver = make_driver()
        try:
            driver.get(base + "/")
            WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
            select = Select(driver.find_element(By.ID, "model"))
            text = driver.find_element(By.ID, "text")

            # Classify, from the keyboard: choose the model, type, Ctrl+Enter.
            review = "the acting was wonderful and i loved the music, the best film this year."
            select.select_by_value("clf")
            text.clear()
            text.send_keys(review)
            text.send_keys(Keys.CONTROL, Keys.ENTER)
            wait_done(driver, "label")
            shown = driver.find_element(By.ID, "label").text
            expected = post(base, "/v1/models/clf/classify", {"inputs": review})[0]["label"]
            if shown != expected:
                failures.append(f"the page shows label {shown!r}, the API answers {expected!r}")
            bars = driver.find_elements(By.CSS_SELECTOR, "#probabilities .bar-row")
            if len(bars) != 2:
                failures.append(f"{len(bars)} probability bars instead of 2")
            check_attention(driver, failures)

            # Summarize with the button; count how often the summary changed while it streamed. Mutation
            # records, not observer callbacks: when the whole stream arrives in one network chunk the page
            # still draws it event by event, but the browser delivers those draws in one callback.
            article = " ".join(sentence(random.Random(9)) for _ in range(4))
            select.select_by_value("sum")
            text.clear()
            text.send_keys(article)
            driver.execute_script("""
                window.summaryUpdates = 0;
                new MutationObserver(records => window.summaryUpdates += records.length).observe(
                    document.getElementById('summary'), {childList: true, characterData: true, subtree: true});""")
            driver.find_element(By.ID, "run").click()
            wait_done(driver, "summary")
            shown = driver.find_element(By.ID, "summary").text
            expected = post(base, "/v1/models/sum/summarize", {"inputs": article})[0]["summary_text"]
            if shown != expected:
                failures.append(f"the page shows summary {shown!r}, the API answers {expected!r}")
            updates = driver.execute_script("return window.summaryUpdates;")
            if updates < 2:
                failures.append(f"the summary was drawn {updates} time(s); streaming draws it token by token")
            check_attention(driver, failures)
            assert_no_console_errors(driver)
        finally:
            driver.quit()
            server.terminate()
            code = server.wait(timeout=60)
            if code != 0:
                failures.append(f"heed serve exited {code} after SIGTERM")
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print("ServePage: OK")


if __name__ == "__main__":
    main()
