#!/usr/bin/python3
"""heed report's page in a real browser: writes a run folder as heed train and heed evaluate leave
it (metrics.jsonl with a resumed segment, a classifier eval report), runs `heed report`, opens the
page from file:// in headless Chromium (browser.py) and fails on any SEVERE console entry or when
the charts did not draw (a figure per curve, each with a non-empty polyline) or the evaluation table
is missing. Run by CTest (ReportPage). Exits non-zero on any failure."""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from selenium.webdriver.common.by import By
    import browser
except ImportError as error:  # never a silent pass: CTest must see this
    sys.exit(f"FAIL: {error}. Install python3-selenium, chromium and chromium-driver (scripts/setup.sh) "
             f"and run this with /usr/bin/python3.")


def write_run(run: Path):
    (run / "eval").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "classification", "model": {"d_model": 16, "heads": 2}}))
    records = []
    for step in range(10, 210, 10):
        records.append({"type": "train", "step": step, "epoch": 1 + step // 100, "loss": 1.0 / (1 + step / 50),
                        "lr": 0.001 * min(1.0, step / 50), "tokens_per_second": 1000 + step,
                        "elapsed_seconds": step / 10})
        if step % 50 == 0:
            records.append({"type": "validation", "step": step, "epoch": 1 + step // 100, "seconds": 1,
                            "best": step != 200, "accuracy": 0.5 + step / 500, "loss": 0.9 - step / 400})
    records.append(records[3])  # a resumed run logs a step again
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "eval" / "test.json").write_text(json.dumps({
        "accuracy": 0.875, "macro_f1": 0.87, "count": 8, "labels": ["neg", "pos"],
        "per_class": {"neg": {"precision": 0.8, "recall": 1.0, "f1": 0.89, "support": 4},
                      "pos": {"precision": 1.0, "recall": 0.75, "f1": 0.86, "support": 4}},
        "confusion": [[4, 0], [1, 3]], "data": "test", "split": "all", "run": str(run), "checkpoint": "best",
        "seconds": {"total": 1}}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--heed", required=True)
    args = parser.parse_args()
    failures = []
    with tempfile.TemporaryDirectory(prefix="heed-report-page-") as tmp:
        run = Path(tmp) / "run"
        write_run(run)
        page = Path(tmp) / "report.html"
        result = subprocess.run([args.heed, "report", "--run", str(run), "--out", str(page)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"FAIL: heed report exited {result.returncode}: {result.stderr}")
        with browser.make_driver() as driver:
            driver.get(page.as_uri())
            captions = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "figure figcaption")]
            for expected in ("Loss", "Learning rate", "Throughput (tokens/s)", "accuracy"):
                if expected not in captions:
                    failures.append(f"no chart '{expected}' (charts: {captions})")
            for figure in driver.find_elements(By.CSS_SELECTOR, "figure"):
                svg = figure.find_element(By.TAG_NAME, "svg")
                lines = svg.find_elements(By.TAG_NAME, "polyline")
                if not lines or not all(len(l.get_attribute("points").split()) >= 2 for l in lines):
                    failures.append(f"chart '{figure.text.splitlines()[0]}' has no drawn line")
                if svg.size["width"] < 100 or svg.size["height"] < 100:
                    failures.append(f"chart rendered at {svg.size}")
            if "87.50%" not in driver.find_element(By.TAG_NAME, "body").text:
                failures.append("the evaluation report's accuracy (87.50%) is not shown")
            try:
                browser.assert_no_console_errors(driver)
            except AssertionError as error:
                failures.append(str(error))
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print("ok: report page drew its charts and tables without console errors")


if __name__ == "__main__":
    main()
