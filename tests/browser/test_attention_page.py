#!/usr/bin/python3
"""heed attention's page in a real browser: trains a tiny classifier and a tiny summarizer with the
heed binary on synthetic data, writes `heed attention --out page.html` for each, opens the pages
from file:// in headless Chromium (browser.py) and fails on any SEVERE console entry or when the
views did not draw: the head view (selectors, tokens, lines), the classifier's label, the
summarizer's heatmap (a painted canvas), shaded article and copy strip. Run by CTest
(AttentionPage); needs chromium, chromium-driver and python3-selenium (scripts/setup.sh).
Exits non-zero on any failure."""

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    import browser
except ImportError as error:  # never a silent pass: CTest must see this
    sys.exit(f"FAIL: {error}. Install python3-selenium, chromium and chromium-driver (scripts/setup.sh) "
             f"and run this with /usr/bin/python3.")

WORDS = ("the a movie film was is really very plot acting story actor director scene and but not music "
         "ending characters long short sad it this i").split()
POSITIVE = "great wonderful loved best funny brilliant".split()
NEGATIVE = "awful terrible hated worst boring dull".split()

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def sentence(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))).capitalize() + "."


def write_fixtures(folder, rng):
    with open(folder / "train.jsonl", "w") as out:
        for _ in range(120):
            positive = rng.random() < 0.5
            words = sentence(rng)[:-1].split() + rng.sample(POSITIVE if positive else NEGATIVE, 2)
            rng.shuffle(words)
            out.write(json.dumps({"text": " ".join(words), "label": "pos" if positive else "neg"}) + "\n")
    with open(folder / "pairs.jsonl", "w") as out:
        for i in range(80):
            article = [sentence(rng) for _ in range(rng.randint(3, 5))]
            out.write(json.dumps({"article": " ".join(article), "highlights": article[0], "id": str(i)}) + "\n")


def heed(binary, args):
    result = subprocess.run([binary] + args, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAIL: heed {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def count(driver, css):
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def check_head_view(driver, data, name):
    check(count(driver, ".ha-head-view") == 1, f"{name}: no head view")
    layers = Select(driver.find_element(By.CSS_SELECTOR, ".ha-head-view .ha-layer-select"))
    heads = Select(driver.find_element(By.CSS_SELECTOR, ".ha-head-view .ha-head-select"))
    check(len(layers.options) == len(data["encoder_attention"]), f"{name}: layer options")
    check(len(heads.options) == len(data["encoder_attention"][0]) + 1, f"{name}: head options (+ all heads)")
    tokens = driver.find_elements(By.CSS_SELECTOR, ".ha-head-view .ha-left .ha-token")
    check(len(tokens) == len(data["tokens"]), f"{name}: {len(tokens)} left tokens, expected {len(data['tokens'])}")
    svg = driver.find_element(By.CSS_SELECTOR, ".ha-head-view svg.ha-lines")
    all_lines = int(svg.get_attribute("data-lines"))
    check(all_lines > 0 and count(driver, ".ha-head-view svg.ha-lines line") == all_lines, f"{name}: no lines drawn")
    # One head, then focus a token (keyboard): only that token's lines remain, one per key.
    heads.select_by_value("0")
    tokens = driver.find_elements(By.CSS_SELECTOR, ".ha-head-view .ha-left .ha-token")
    driver.execute_script("arguments[0].focus()", tokens[0])
    svg = driver.find_element(By.CSS_SELECTOR, ".ha-head-view svg.ha-lines")
    focused = int(svg.get_attribute("data-lines"))
    nonzero = sum(1 for w in data["encoder_attention"][0][0][0] if w > 0)
    check(focused == nonzero, f"{name}: focusing token 0 shows {focused} lines, expected {nonzero}")
    check("ha-active" in tokens[0].get_attribute("class"), f"{name}: the focused token is not highlighted")
    tokens[0].send_keys(Keys.TAB)  # moves focus on without errors
    layers.select_by_index(len(layers.options) - 1)
    check(int(driver.find_element(By.CSS_SELECTOR, ".ha-head-view svg.ha-lines").get_attribute("data-lines")) > 0,
          f"{name}: no lines after changing the layer")


def check_page(driver, page, data, name):
    driver.get(page.as_uri())
    browser.assert_no_console_errors(driver)
    check(count(driver, "#heed-attention.heed-attention") == 1, f"{name}: render() did not run")
    check_head_view(driver, data, name)
    if data["kind"] == "classifier":
        label = driver.find_element(By.CSS_SELECTOR, ".ha-prediction .ha-label strong").text
        check(label == data["label"], f"{name}: label shown {label!r}, expected {data['label']!r}")
        check(count(driver, ".ha-scores tbody tr") == len(data["scores"]), f"{name}: probability rows")
    else:
        canvas = driver.find_element(By.CSS_SELECTOR, ".ha-heatmap canvas.ha-heatmap-canvas")
        painted = driver.execute_script(
            "var c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "var n = 0; for (var i = 0; i < d.length; i += 4) { if (d[i] < 200) n++; } return n;", canvas)
        check(int(canvas.get_attribute("width")) > 0 and painted > 0, f"{name}: the heatmap is not painted")
        Select(driver.find_element(By.CSS_SELECTOR, ".ha-heatmap select")).select_by_index(0)
        canvas.send_keys(Keys.ARROW_RIGHT)
        readout = driver.find_element(By.CSS_SELECTOR, ".ha-heatmap .ha-readout").text
        check("article token 2" in readout, f"{name}: arrow key did not move the heatmap cursor: {readout!r}")
        shaded = driver.find_elements(By.CSS_SELECTOR, ".ha-article .ha-article-token")
        check(len(shaded) == len(data["tokens"]), f"{name}: article tokens {len(shaded)}")
        check(any("rgba" in (s.get_attribute("style") or "") for s in shaded), f"{name}: article not shaded")
        mode = Select(driver.find_element(By.CSS_SELECTOR, ".ha-article select"))
        check(len(mode.options) == 2, f"{name}: no copy-probability shading")
        mode.select_by_value("copy")
        check(count(driver, ".ha-copy .ha-copy-token") == len(data["decoder_tokens"]), f"{name}: copy strip")
        check(driver.find_element(By.CSS_SELECTOR, ".ha-summary-text").text.strip() != "" or not data["decoder_tokens"],
              f"{name}: no summary shown")
    browser.assert_no_console_errors(driver)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heed", required=True)
    parser.add_argument("--configs", required=True)
    args = parser.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="heed-attention-page-") as tmp:
        folder = Path(tmp)
        write_fixtures(folder, rng)
        runs = {"classifier": folder / "clf", "summarizer": folder / "sum"}
        heed(args.heed, ["train", "--config", f"{args.configs}/tiny_classifier.json", "--set", "training.epochs=1",
                         "--data-dir", tmp, "--output", str(runs["classifier"])])
        heed(args.heed, ["train", "--config", f"{args.configs}/tiny_summarizer.json", "--set", "training.epochs=1",
                         "--set", "decoding.min_length=3", "--set", "decoding.max_length=10",
                         "--data-dir", tmp, "--output", str(runs["summarizer"])])
        texts = {"classifier": "A wonderful film, the acting was great </script> and I loved the ending.",
                 "summarizer": " ".join(sentence(rng) for _ in range(4))}
        with browser.make_driver() as driver:
            for name, run in runs.items():
                page = folder / f"{name}.html"
                heed(args.heed, ["attention", "--run", str(run), texts[name], "--out", str(page)])
                data = json.loads(heed(args.heed, ["attention", "--run", str(run), texts[name], "--json"]))
                try:
                    check_page(driver, page, data, name)
                except AssertionError as error:
                    check(False, f"{name}: {error}")
    if failures:
        sys.exit(f"{len(failures)} failure(s)")
    print("OK: attention pages drew in Chromium without console errors")


if __name__ == "__main__":
    main()
