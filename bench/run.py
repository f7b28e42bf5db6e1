#!/usr/bin/python3
"""heed against a plain-PyTorch reference, same machine, same run, same batches, same threads.

    /usr/bin/python3 bench/run.py [--build build] [--threads N] [--quick] [--json results.json]

Prepares the data once (IMDB reviews and BBC pairs from ../shared/data, an 8k SentencePiece model
trained by `heed tokenizer train`, length-bucketed batches), then runs every case in its own
process for heed (build/heed_bench, build/heed) and for bench/reference.py, alternating, and prints
a table and JSON with the ratios. Cases and shapes are issue 5's, plus 1,024-token inputs
(docs/BENCHMARKS.md). Training rows are like for like (issue 15): both sides at the same precision
(fp32, and bf16 = CPU autocast where the CPU has it), the same model and dropout, the same batches,
threads and malloc (heed's); each also reports model FLOP/s and its share of the
matrix-product peak measured in the same run.
"""
import argparse
import functools
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


# heed's settings for glibc's malloc (data_pipeline/base/runtime.cpp, tune_allocator: mallopt
# M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB, M_TOP_PAD 64 MiB) as glibc tunables, for a heed built with
# HEED_ALLOCATOR=system.
ALLOCATOR_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864"


def allocator_env(version):
    """The reference's environment for heed's malloc (named by `heed --version`): heed's own tcmalloc
    preloaded, or glibc with heed's settings. Returns (environment additions, description)."""
    m = re.search(r"malloc: (\w+)", version)
    if m and m.group(1) == "tcmalloc":
        lib = re.search(r"(/\S*libtcmalloc\S*\.so\S*)", run(["ldd", BENCH]))
        if not lib:
            sys.exit("bench: heed runs tcmalloc but ldd does not show heed_bench's")
        return {"LD_PRELOAD": lib.group(1)}, f"tcmalloc on both sides (the reference: LD_PRELOAD={lib.group(1)})"
    return {"GLIBC_TUNABLES": ALLOCATOR_TUNABLES}, "glibc with heed's mallopt settings on both sides"

# The bench models (bench/heed_bench.cpp model_options, bench/reference.py): d_model 256, 4 heads,
# feed-forward 1024; the classifier has 4 layers and 2 classes, the encoder-decoder 3 + 3 layers and a
# tied output table.
D_MODEL, FF_DIM = 256, 1024


def encoder_flops(n, layers):
    """Forward multiply-adds x 2 of `layers` pre-norm encoder layers over one sequence of n real
    tokens: four d x d projections, the feed-forward, and the n x n scores and their weighted sum."""
    return layers * (2 * n * (4 * D_MODEL * D_MODEL + 2 * D_MODEL * FF_DIM) + 2 * 2 * n * n * D_MODEL)


def training_flops(data_file, steps):
    """Model FLOPs of `steps` training steps over the prepared batches (cycled, as both sides run them):
    3 x the forward's (the backward is twice the forward), real tokens only (padding is not useful
    work), causal self-attention counted as the lower triangle."""
    with open(os.path.join(WORK, data_file)) as f:
        data = json.load(f)
    batches, total = data["batches"], 0
    d, v = D_MODEL, data["vocab_size"]
    for i in range(steps):
        b = batches[i % len(batches)]
        if "ids" in b:  # classifier: 4 layers, mean pooling, a 2-class head
            total += sum(encoder_flops(len(ids), 4) + 2 * d * 2 for ids in b["ids"])
            continue
        for src, tgt in zip(b["source"], b["target"]):
            s, t = len(src), len(tgt) + 1  # BOS + target in, target + EOS out
            dec = 3 * (2 * t * (4 * d * d + 2 * d * FF_DIM)          # self-attention q, k, v, o; feed-forward
                       + 2 * 2 * d * t * (t + 1) // 2                # causal scores and weighted sum
                       + 2 * t * 2 * d * d + 2 * s * 2 * d * d       # cross-attention q, o; k, v of the source
                       + 2 * 2 * t * s * d)                          # cross scores and weighted sum
            total += encoder_flops(s, 3) + dec + 2 * t * d * v      # + the output table
    return 3 * total


def cpu_has_bf16():
    """The test heed's `precision: auto` makes (data_pipeline/base/runtime.cpp, cpu_has_bf16)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return bool({"avx512_bf16", "amx_bf16"} & set(line.split()))
    return False


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


@functools.lru_cache(maxsize=None)
def read_corpora(data):
    """2,048 IMDB train reviews (every 6th file of each label) and 300 BBC article/summary pairs (read
    once: prepare() and prepare_long() both use them)."""
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
    return imdb, pairs


def prepare_long(args):
    """Writes WORK/classifier_long.json and seq2seq_long.json: the 1,024-token cases. Few reviews or
    articles are that long, so inputs are consecutive texts joined and cut to exactly 1,024 tokens
    (speed does not depend on what the tokens say); batch 8 (8,192 input tokens a batch)."""
    if all(os.path.exists(os.path.join(WORK, n)) for n in ("classifier_long.json", "seq2seq_long.json")):
        return
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(WORK, "spm.model"))
    imdb, pairs = read_corpora(args.data)

    def pieces(texts, n):
        stream = [t for ids in sp.encode(texts) for t in ids]
        return [stream[i:i + 1024] for i in range(0, len(stream) - 1023, 1024)][:n]

    ids = pieces([t for t, _ in imdb], 8 * 16)
    batches = [{"ids": ids[i:i + 8], "labels": [(i + j) % 2 for j in range(8)]} for i in range(0, len(ids), 8)]
    with open(os.path.join(WORK, "classifier_long.json"), "w") as f:
        json.dump({"vocab_size": sp.get_piece_size(), "max_length": 1024, "batches": batches}, f)
    sources = pieces([a for a, _ in pairs], 8 * 12)
    targets = [t[:127] for t in sp.encode([s for _, s in pairs])]
    batches = [{"source": sources[i:i + 8], "target": targets[i:i + 8]} for i in range(0, len(sources), 8)]
    with open(os.path.join(WORK, "seq2seq_long.json"), "w") as f:
        json.dump({"vocab_size": sp.get_piece_size(), "max_positions": 1024, "bos_id": sp.bos_id(),
                   "eos_id": sp.eos_id(), "batches": batches}, f)


def prepare(args):
    """Writes WORK/{texts,classifier,seq2seq,articles}.json, spm.model and a classifier run."""
    marker = os.path.join(WORK, "prepared.json")
    if os.path.exists(marker):
        return
    os.makedirs(WORK, exist_ok=True)
    imdb, pairs = read_corpora(args.data)
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
    env = dict(os.environ, **REFERENCE_ENV)
    out, wall, rss = run_rss([PYTHON, REFERENCE, task, WORK, "--threads", str(args.threads), *extra], env=env)
    result = json.loads(out)
    result["peak_rss_mb"] = rss
    return result


def classify_wall(cmd, repeats, env=None):
    times = []
    for _ in range(repeats):
        _, wall, _ = run_rss(cmd, env)
        times.append(wall)
    return {"seconds": statistics.median(times), "runs": [round(t, 3) for t in times]}


def main():
    global WORK, HEED, BENCH, REFERENCE, REFERENCE_ENV
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=os.environ.get("HEED_DATA_DIR", os.path.join(ROOT, "..", "shared", "data")))
    p.add_argument("--work", default=os.path.join(ROOT, "build", "bench-work"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=10, help="training steps measured per case")
    p.add_argument("--quick", action="store_true", help="fewer steps and tokens (a smoke run, not for the record)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--precisions", help="training precisions, comma-separated (default: fp32, and bf16 where the CPU has it)")
    p.add_argument("--only-training", action="store_true", help="run the training cases only")
    p.add_argument("--only-inference", action="store_true",
                   help="skip the training cases (and the GEMM peak they are measured against)")
    args = p.parse_args()
    if args.only_training and args.only_inference:
        sys.exit("bench: --only-training and --only-inference exclude each other")
    WORK = os.path.abspath(args.work)
    HEED = os.path.join(args.build, "heed")
    BENCH = os.path.join(args.build, "heed_bench")
    REFERENCE = os.path.join(HERE, "reference.py")
    for path in (HEED, BENCH):
        if not os.path.exists(path):
            sys.exit(f"bench: {path} is missing; build first (scripts/setup.sh)")
    version = run([HEED, "--version"])
    REFERENCE_ENV, allocator = allocator_env(version)
    print(f"bench: malloc: {allocator}", file=sys.stderr)
    # The same BLAS kernels on both sides: heed chooses OpenBLAS's best kernels for this CPU itself
    # (data_pipeline/base/runtime.h: Debian's OpenBLAS 0.3.21 falls back to SSE3 ones on CPUs newer
    # than itself); heed_bench and the reference get that choice through the environment.
    kernels = re.search(r"OpenBLAS kernels: (\w+)", version)
    if kernels and "OPENBLAS_CORETYPE" not in os.environ:
        os.environ["OPENBLAS_CORETYPE"] = kernels.group(1)
    print(f"bench: OpenBLAS kernels {os.environ.get('OPENBLAS_CORETYPE', 'as detected')} on both sides", file=sys.stderr)
    steps = 3 if args.quick else args.steps
    new_tokens = 16 if args.quick else 64
    repeats = 1 if args.quick else 3  # generation: processes per side
    prepare(args)
    prepare_long(args)
    precisions = args.precisions.split(",") if args.precisions else (["fp32", "bf16"] if cpu_has_bf16() else ["fp32"])

    rows = []

    def compare(name, unit, heed, ref, higher_is_better=True):
        h, r = heed.get(unit), ref.get(unit)
        ratio = (h / r if higher_is_better else r / h) if h and r else None
        rows.append({"case": name, "unit": unit, "heed": heed, "reference": ref, "speedup": ratio})
        print(f"  {name:44s} {unit:18s} heed {h:10.2f}  reference {r:10.2f}  x{ratio:.2f}", file=sys.stderr)

    print(f"bench: {args.threads} threads, work folder {WORK}", file=sys.stderr)
    s = ["--steps", str(steps)]
    # The matrix-product peak each training row is measured against, per precision, in this run:
    # the best of a few square products (torch.mm; in float32 also oneDNN, which heed calls),
    # measured before and after the training cases; the higher of the two counts.
    peak = {} if args.only_inference else {p: reference_case("gemm-peak", args, ["--precision", p])["gflops"]
                                           for p in precisions}
    # Training, like for like: the same batches, model (dropout 0.1, none on attention weights),
    # precision (bf16 = CPU autocast on both sides), threads and allocator settings.
    training = [("train classifier (4x256, b32, <=256)", "train_classifier", "train-classifier", "classifier.json"),
                ("train classifier (4x256, b8, 1024)", "train_classifier", "train-classifier", "classifier_long.json"),
                ("train enc-dec (3+3x256, b16, 400->128)", "train_seq2seq", "train-seq2seq", "seq2seq.json"),
                ("train enc-dec (3+3x256, b8, 1024->128)", "train_seq2seq", "train-seq2seq", "seq2seq_long.json")]
    training_rows = []
    for name, heed_name, ref_name, data_file in ([] if args.only_inference else training):
        flops = training_flops(data_file, steps)
        for precision in precisions:
            extra = s + ["--precision", precision, "--data", data_file]
            ref = reference_case(ref_name, args, extra)
            heed = heed_case(heed_name, args, extra)
            for side in (heed, ref):
                side["model_gflops"] = flops / side["seconds"] / 1e9
            compare(f"{name} {precision}", "tokens_per_second", heed, ref)
            rows[-1]["precision"] = precision
            training_rows.append(rows[-1])
    for p in peak:
        peak[p] = max(peak[p], reference_case("gemm-peak", args, ["--precision", p])["gflops"])
    if peak:
        print("  GEMM peak, GFLOP/s: " + ", ".join(f"{p} {peak[p]:.0f}" for p in precisions), file=sys.stderr)
    for row in training_rows:
        for side in ("heed", "reference"):
            row[side]["peak_share"] = row[side]["model_gflops"] / peak[row["precision"]]
        print(f"  {row['case']:44s} model GFLOP/s heed {row['heed']['model_gflops']:6.1f} "
              f"({100 * row['heed']['peak_share']:4.1f}% of peak)  reference {row['reference']['model_gflops']:6.1f} "
              f"({100 * row['reference']['peak_share']:4.1f}%)  RSS MB heed {row['heed']['peak_rss_mb']:.0f} "
              f"reference {row['reference']['peak_rss_mb']:.0f}", file=sys.stderr)
    if args.only_training:
        finish(args, rows, steps, new_tokens, peak)
        return
    compare("infer classifier (evaluate-style)", "tokens_per_second",
            heed_case("infer_classifier", args), reference_case("infer-classifier", args))
    # heed classify --quantize int8 (every encoder product on int8) against PyTorch's dynamic int8
    # quantization (which reaches only nn.Linear modules: the feed-forward layers of
    # nn.TransformerEncoderLayer), and, labelled, against the float32 reference.
    q8 = ["--quantize", "int8"]
    heed8, ref8, ref32 = interleaved([lambda: heed_case("infer_classifier", args, q8),
                                      lambda: reference_case("infer-classifier", args, q8),
                                      lambda: reference_case("infer-classifier", args)], repeats)
    compare("infer classifier, int8 (ref: dynamic int8)", "tokens_per_second", heed8, ref8)
    compare("infer classifier, int8 vs ref float32 (not like for like)", "tokens_per_second", heed8, ref32)
    if cpu_has_bf16():
        # heed classify --quantize bf16 (the encoder's products in bf16, the rest float32) against the
        # reference with the whole model in bf16 (the same weight format; its activations narrower).
        b16 = ["--quantize", "bf16"]
        heed16, ref16 = interleaved([lambda: heed_case("infer_classifier", args, b16),
                                     lambda: reference_case("infer-classifier", args, b16)], repeats)
        compare("infer classifier, bf16 (ref: whole model bf16)", "tokens_per_second", heed16, ref16)
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
    # Narrow weights (heed summarize --quantize), greedy batch 1: against the reference with the same
    # weight format (bf16: the whole model in bfloat16; int8: torch's dynamic quantization of every
    # nn.Linear, activations int8 too; PyTorch has no weight-only variant, so neither is like for
    # like), and, labelled, against the float32 reference.
    g = ["--batch", "1", "--new-tokens", str(new_tokens)]
    for q in ("bf16", "int8"):
        narrow, ref_narrow, ref_fp32 = interleaved(
            [lambda: heed_case("generate_greedy", args, g + ["--quantize", q]),
             lambda: reference_case("generate", args, g + ["--cache", "1", "--quantize", q]),
             lambda: reference_case("generate", args, g + ["--cache", "1"])], repeats)
        compare(f"greedy, batch 1, {q} weights (ref: {q}, cached)", "tokens_per_second", narrow, ref_narrow)
        compare(f"greedy, batch 1, {q} weights vs ref float32 (not like for like)", "tokens_per_second", narrow,
                ref_fp32)
    compare("tokenizer", "mb_per_second", heed_case("tokenize", args), reference_case("tokenize", args))
    with open(os.path.join(WORK, "texts.json")) as f:
        review = json.load(f)["texts"][7]
    compare("classify one review, wall", "seconds",
            classify_wall([HEED, "classify", "--run", os.path.join(WORK, "classifier_run"), review], 2 * repeats - 1),
            classify_wall([PYTHON, REFERENCE, "classify", WORK, "--text", review], 2 * repeats - 1,
                          dict(os.environ, **REFERENCE_ENV)),
            higher_is_better=False)

    finish(args, rows, steps, new_tokens, peak)


def finish(args, rows, steps, new_tokens, peak):
    result = {"threads": args.threads, "openblas_kernels": os.environ.get("OPENBLAS_CORETYPE"),
              "reference_environment": REFERENCE_ENV, "gemm_peak_gflops": peak, "steps": steps,
              "new_tokens": new_tokens, "cases": rows}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
