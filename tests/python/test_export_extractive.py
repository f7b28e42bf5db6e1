#!/usr/bin/python3
"""heed export of an extractive summarizer, checked from Python: trains a tiny extractive run with
the heed binary on synthetic articles (the summary is the first sentence), exports it, and runs the
archive's `summarize` with torch.jit.load + sentencepiece (the tokenizer read from the archive) on
the sentences `heed summarize --jsonl` read, comparing probabilities and selected flags with heed's.
An article repeating its first sentence checks that n-gram blocking agrees. Run by CTest
(PythonExportExtractive); needs python3-torch and python3-sentencepiece. Exits non-zero on failure."""

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import torch
    import sentencepiece as spm
except ImportError as error:  # never a silent pass: CTest must see this
    sys.exit(f"FAIL: {error}. Install python3-torch and python3-sentencepiece (scripts/setup.sh) "
             f"and run this with /usr/bin/python3.")

WORDS = ("the a movie film was is really very plot acting story actor director scene and but not music "
         "ending characters long short sad it this i").split()
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def sentence(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))).capitalize() + "."


def heed(args, binary, stdin=None):
    result = subprocess.run([binary] + args, capture_output=True, text=True, input=stdin)
    if result.returncode != 0:
        sys.exit(f"FAIL: heed {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def check_mode(args, folder, rng, count):
    """Trains with extractive.count `count`, exports, compares the archive's selection with heed's."""
    run = folder / f"run-{count}"
    heed(["train", "--config", f"{args.source}/configs/tiny_extractive.json", "--data-dir", str(folder),
          "--output", str(run), "--set", f"extractive.count={count}"], args.heed)
    archive = folder / f"model-{count}.pt"
    heed(["export", "--run", str(run), "--out", str(archive)], args.heed)
    articles = []
    for _ in range(12):
        article = [sentence(rng) for _ in range(rng.randint(2, 6))]
        articles.append(" ".join(article))
    first = sentence(rng)
    articles.append(f"{first} {first} {sentence(rng)}")  # a repeated sentence: blocked by trigrams
    from_heed = [json.loads(line) for line in
                 heed(["summarize", "--run", str(run), "--input", "-", "--jsonl"], args.heed,
                      stdin="\n".join(articles) + "\n").splitlines()]
    check(len(from_heed) == len(articles), f"{len(from_heed)} JSON lines for {len(articles)} articles")

    extra = {"heed/format.json": "", "heed/config.json": "", "heed/tokenizer.model": ""}
    module = torch.jit.load(str(archive), _extra_files=extra)
    fmt = json.loads(extra["heed/format.json"])
    config = json.loads(extra["heed/config.json"])
    check(fmt["kind"] == "extractive", f"format.json kind: {fmt}")
    model = extra["heed/tokenizer.model"]
    tokenizer = spm.SentencePieceProcessor(model_proto=model if isinstance(model, bytes) else model.encode())
    max_length = config["data"]["max_length"]
    for k, line in enumerate(from_heed):
        sentences = [s["text"] for s in line["article_sentences"]]
        ids = [(tokenizer.encode(" ".join(s.split()))[:max_length] or [tokenizer.unk_id()]) for s in sentences]
        longest = max(len(s) for s in ids)
        batch = torch.full((len(ids), longest), fmt["pad_id"], dtype=torch.long)
        for row, s in enumerate(ids):
            batch[row, :len(s)] = torch.tensor(s, dtype=torch.long)
        features = torch.tensor([s["features"] for s in line["article_sentences"]], dtype=torch.float32)
        with torch.no_grad():
            probabilities, selected = module.summarize(batch, torch.tensor([len(s) for s in ids]), features)
        heed_p = [s["score"] for s in line["article_sentences"]]
        heed_selected = [s["selected"] for s in line["article_sentences"]]
        difference = max(abs(a - b) for a, b in zip(probabilities.tolist(), heed_p))
        check(difference < 1e-5, f"{count}: article {k}: probabilities differ by {difference}")
        check(selected.tolist() == heed_selected, f"{count}: article {k}: selected {selected.tolist()} vs heed {heed_selected}")
    repeated = from_heed[-1]["article_sentences"]
    check(repeated[0]["selected"] and not repeated[1]["selected"],
          f"the repeated sentence must be blocked: {repeated}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--heed", required=True)
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[2]))
    args = parser.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with open(folder / "pairs.jsonl", "w") as out:
            for i in range(300):
                article = [sentence(rng) for _ in range(rng.randint(3, 5))]
                out.write(json.dumps({"article": " ".join(article), "highlights": article[0], "id": str(i)}) + "\n")
        for count in ("threshold", "ratio"):
            check_mode(args, folder, rng, count)
    if failures:
        sys.exit(f"{len(failures)} failure(s)")
    print("ok: for both extractive.count modes the archive selects what heed selects")


if __name__ == "__main__":
    main()
