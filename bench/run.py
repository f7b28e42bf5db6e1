#!/usr/bin/python3
"""heed against a plain-PyTorch reference, same machine, same run, same batches, same threads.

    /usr/bin/python3 bench/run.py [--build build] [--threads N] [--quick] [--json results.json]

Prepares the data once (IMDB reviews and BBC pairs from ../shared/data, an 8k SentencePiece model
trained by `heed tokenizer train`, length-bucketed batches), then runs every case in its own
process for heed (build/heed_bench, build/heed) and for bench/reference.py, alternating, and prints
a table and JSON with the ratios. Cases and shapes are issue 5's (docs/BENCHMARKS.md).
"""
import argparse
import json
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch and python3-sentencepiece


def run(cmd):
    """Runs a preparation command; exits with its error output when it fails."""
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(map(shlex.quote, cmd))} failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}")
    return proc.stdout.decode()


def run_rss(cmd, env=None):
    """Runs cmd, returning (stdout, wall seconds, peak RSS MB) with the child's own rusage."""
    start = time.perf_counter()
    out_path = os.path.join(WORK, ".stdout")
    err_path = os.path.join(WORK, ".stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        with open(err_path, "rb") as f:
            sys.exit(f"bench: {' '.join(map(shlex.quote, cmd))} failed ({code}):\n{f.read().decode()[-3000:]}")
    with open(out_path, "rb") as f:
        return f.read().decode(), wall, usage.ru_maxrss / 1024.0


def clean(text):
    return " ".join(text.replace("<br />", " ").split())


def prepare(args):
    """Writes WORK/{texts,classifier,seq2seq,articles}.json, spm.model and a classifier run."""
    marker = os.path.join(WORK, "prepared.json")
    if os.path.exists(marker):
        return
    os.makedirs(WORK, exist_ok=True)
    data = args.data
    imdb = []
    for label in ("neg", "pos"):
        folder = os.path.join(data, "aclImdb", "train", label)
        names = sorted(os.listdir(folder))[::6][:1024]
        for n in names:
            with open(os.path.join(folder, n), encoding="utf-8", errors="replace") as f:
                imdb.append((clean(f.read()), label))
    bbc_root = os.path.join(data, "bbc-news-summary")
    pairs = []
    for topic in sorted(os.listdir(os.path.join(bbc_root, "News Articles"))):
        for n in sorted(os.listdir(os.path.join(bbc_root, "News Articles", topic)))[:60]:
            with open(os.path.join(bbc_root, "News Articles", topic, n), encoding="utf-8", errors="replace") as f:
                article = clean(f.read())
            with open(os.path.join(bbc_root, "Summaries", topic, n), encoding="utf-8", errors="replace") as f:
                summary = clean(f.read())
            pairs.append((article, summary))
    with open(os.path.join(WORK, "tokenizer_input.txt"), "w") as f:
        for t, _ in imdb:
            f.write(t + "\n")
        for a, s in pairs:
            f.write(a + "\n" + s + "\n")
    run([HEED, "tokenizer", "train", "--input", os.path.join(WORK, "tokenizer_input.txt"), "--out",
         os.path.join(WORK, "spm.model"), "--vocab-size", "8000", "--threads", str(args.threads)])

    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(WORK, "spm.model"))
    rng = random.Random(1)

    def bucketed(items, size, key):
        items = sorted(items, key=key)
        batches = [items[i:i + size] for i in range(0, len(items) - size + 1, size)]
        rng.shuffle(batches)
        return batches

    # Classifier: batch 32, at most 256 tokens, length-bucketed.
    encoded = [(ids[:256], 0 if label == "neg" else 1) for ids, (_, label) in zip(sp.encode([t for t, _ in imdb]), imdb)]
    cls_batches = [{"ids": [e[0] for e in b], "labels": [e[1] for e in b]} for b in bucketed(encoded, 32, lambda e: len(e[0]))]
    with open(os.path.join(WORK, "classifier.json"), "w") as f:
        json.dump({"vocab_size": sp.get_piece_size(), "max_length": 256, "batches": cls_batches[:24]}, f)
    # Encoder-decoder: batch 16, articles cut to 400 tokens, summaries to 127 (+ end of sequence = 128).
    src = sp.encode([a for a, _ in pairs])
    tgt = sp.encode([s for _, s in pairs])
    items = [(s[:400], t[:127]) for s, t in zip(src, tgt)]
    s2s_batches = [{"source": [e[0] for e in b], "target": [e[1] for e in b]}
                   for b in bucketed(items, 16, lambda e: len(e[0]))]
    with open(os.path.join(WORK, "seq2seq.json"), "w") as f:
        json.dump({"vocab_size": sp.get_piece_size(), "max_positions": 512, "bos_id": sp.bos_id(),
                   "eos_id": sp.eos_id(), "batches": s2s_batches[:16]}, f)
    # Generation: 16 articles of at least 400 tokens, cut to exactly 400.
    long_sources = [s[:400] for s in src if len(s) >= 400][:16]
    with open(os.path.join(WORK, "articles.json"), "w") as f:
        json.dump({"vocab_size": sp.get_piece_size(), "max_positions": 512, "bos_id": sp.bos_id(),
                   "eos_id": sp.eos_id(), "sources": long_sources}, f)
    with open(os.path.join(WORK, "texts.json"), "w") as f:
        json.dump({"texts": [t for t, _ in imdb]}, f)
    # A classifier run at the benchmark's shape (2 training steps) for `heed classify`, and the
    # reference's saved weights for its classify script.
    with open(os.path.join(WORK, "reviews.jsonl"), "w") as f:
        for t, label in imdb:
            f.write(json.dumps({"text": t, "label": label}) + "\n")
    config = {
        "task": "classification",
        "data": {"format": "jsonl", "train": os.path.join(WORK, "reviews.jsonl"), "validation_fraction": 0.05,
                 "max_length": 256, "cache_dir": "none"},
        "tokenizer": {"model": os.path.join(WORK, "spm.model")},
        "model": {"d_model": 256, "heads": 4, "encoder_layers": 4, "ff_dim": 1024, "max_positions": 512},
        "training": {"epochs": 1, "max_steps": 2, "batch_size": 32, "eval_every": 0, "threads": args.threads},
    }
    with open(os.path.join(WORK, "classifier_config.json"), "w") as f:
        json.dump(config, f)
    run([HEED, "train", "--config", os.path.join(WORK, "classifier_config.json"), "--output",
         os.path.join(WORK, "classifier_run"), "--overwrite"])
    run([PYTHON, REFERENCE, "save-classifier", WORK])
    with open(marker, "w") as f:
        json.dump({"reviews": len(imdb), "pairs": len(pairs)}, f)


def heed_case(case, args, extra=()):
    out, wall, rss = run_rss([BENCH, WORK, "--threads", str(args.threads), *extra, f"--benchmark_filter=^{case}/",
                              "--benchmark_format=json"])
    b = json.loads(out)["benchmarks"][0]
    result = {"seconds": b["real_time"] / 1000.0, "peak_rss_mb": rss}
    for k in ("tokens_per_second", "mb_per_second"):
        if k in b:
            result[k] = b[k]
    if "steps" in b:
        result["ms_per_step"] = b["real_time"] / b["steps"]
    if "bf16" in b:
        result["precision"] = "bf16" if b["bf16"] else "fp32"
    return result


def interleaved(cases, repeats):
    """Runs every case (a function returning a result) `repeats` times, round-robin, one process per
    run, and returns each case's run with the median tokens/s: short generation runs are at the
    mercy of the scheduler, and interleaving spreads a slow spell over every case."""
    runs = [[] for _ in cases]
    for _ in range(repeats):
        for i, case in enumerate(cases):
            runs[i].append(case())
    medians = []
    for r in runs:
        r = sorted(r, key=lambda x: x["tokens_per_second"])
        chosen = dict(r[len(r) // 2])
        chosen["runs_tokens_per_second"] = [round(x["tokens_per_second"], 1) for x in r]
        medians.append(chosen)
    return medians


def reference_case(task, args, extra=()):
    out, wall, rss = run_rss([PYTHON, REFERENCE, task, WORK, "--threads", str(args.threads), *extra])
    result = json.loads(out)
    result["peak_rss_mb"] = rss
    return result


def classify_wall(cmd, repeats):
    times = []
    for _ in range(repeats):
        _, wall, _ = run_rss(cmd)
        times.append(wall)
    return {"seconds": statistics.median(times), "runs": [round(t, 3) for t in times]}


def main():
    global WORK, HEED, BENCH, REFERENCE
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=os.environ.get("HEED_DATA_DIR", os.path.join(ROOT, "..", "shared", "data")))
    p.add_argument("--work", default=os.path.join(ROOT, "build", "bench-work"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=10, help="training steps measured per case")
    p.add_argument("--quick", action="store_true", help="fewer steps and tokens (a smoke run, not for the record)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    WORK = os.path.abspath(args.work)
    HEED = os.path.join(args.build, "heed")
    BENCH = os.path.join(args.build, "heed_bench")
    REFERENCE = os.path.join(HERE, "reference.py")
    for path in (HEED, BENCH):
        if not os.path.exists(path):
            sys.exit(f"bench: {path} is missing; build first (scripts/setup.sh)")
    # The same BLAS kernels on both sides: heed chooses OpenBLAS's best kernels for this CPU itself
    # (data_pipeline/base/runtime.h: Debian's OpenBLAS 0.3.21 falls back to SSE3 ones on CPUs newer
    # than itself); heed_bench and the reference get that choice through the environment.
    kernels = re.search(r"OpenBLAS kernels: (\w+)", run([HEED, "--version"]))
    if kernels and "OPENBLAS_CORETYPE" not in os.environ:
        os.environ["OPENBLAS_CORETYPE"] = kernels.group(1)
    print(f"bench: OpenBLAS kernels {os.environ.get('OPENBLAS_CORETYPE', 'as detected')} on both sides", file=sys.stderr)
    steps = 3 if args.quick else args.steps
    new_tokens = 16 if args.quick else 64
    repeats = 1 if args.quick else 3  # generation: processes per side
    prepare(args)

    rows = []

    def compare(name, unit, heed, ref, higher_is_better=True):
        h, r = heed.get(unit), ref.get(unit)
        ratio = (h / r if higher_is_better else r / h) if h and r else None
        rows.append({"case": name, "unit": unit, "heed": heed, "reference": ref, "speedup": ratio})
        print(f"  {name:34s} {unit:18s} heed {h:10.2f}  reference {r:10.2f}  x{ratio:.2f}", file=sys.stderr)

    print(f"bench: {args.threads} threads, work folder {WORK}", file=sys.stderr)
    s = ["--steps", str(steps)]
    # heed as configured by default (training.precision "auto": bf16 on CPUs with AVX-512 BF16 or
    # AMX, fp32 elsewhere), then forced to fp32; the reference is plain float32 PyTorch.
    ref = reference_case("train-classifier", args, s)
    compare("train classifier (4x256, b32, 256)", "tokens_per_second", heed_case("train_classifier", args, s), ref)
    compare("  same, heed precision fp32", "tokens_per_second",
            heed_case("train_classifier", args, s + ["--precision", "fp32"]), ref)
    compare("infer classifier (evaluate-style)", "tokens_per_second",
            heed_case("infer_classifier", args), reference_case("infer-classifier", args))
    ref = reference_case("train-seq2seq", args, s)
    compare("train enc-dec (3+3x256, b16, 400->128)", "tokens_per_second", heed_case("train_seq2seq", args, s), ref)
    compare("  same, heed precision fp32", "tokens_per_second",
            heed_case("train_seq2seq", args, s + ["--precision", "fp32"]), ref)
    for batch in (1, 16):
        g = ["--batch", str(batch), "--new-tokens", str(new_tokens)]
        greedy, ref_cached, beam = interleaved([lambda: heed_case("generate_greedy", args, g),
                                                lambda: reference_case("generate", args, g + ["--cache", "1"]),
                                                lambda: heed_case("generate_beam4", args, g)], repeats)
        compare(f"greedy, batch {batch} (ref: cached)", "tokens_per_second", greedy, ref_cached)
        ratio = greedy["tokens_per_second"] / beam["tokens_per_second"]
        rows.append({"case": f"beam 4 / greedy time, batch {batch} (heed)", "unit": "ratio", "heed": beam,
                     "value": ratio})
        print(f"  {'beam 4 / greedy time, batch ' + str(batch):34s} {'x':18s} heed {ratio:10.2f}", file=sys.stderr)
        if not args.quick:
            compare(f"greedy uncached, batch {batch}", "tokens_per_second",
                    heed_case("generate_greedy_nocache", args, g), reference_case("generate", args, g + ["--cache", "0"]))
    compare("tokenizer", "mb_per_second", heed_case("tokenize", args), reference_case("tokenize", args))
    with open(os.path.join(WORK, "texts.json")) as f:
        review = json.load(f)["texts"][7]
    compare("classify one review, wall", "seconds",
            classify_wall([HEED, "classify", "--run", os.path.join(WORK, "classifier_run"), review], 2 * repeats - 1),
            classify_wall([PYTHON, REFERENCE, "classify", WORK, "--text", review], 2 * repeats - 1),
            higher_is_better=False)

    result = {"threads": args.threads, "openblas_kernels": os.environ.get("OPENBLAS_CORETYPE"), "steps": steps, "new_tokens": new_tokens, "cases": rows}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
