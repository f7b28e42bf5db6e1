#!/usr/bin/python3
"""heed serve under load: requests/s and p50/p99 latency of classify at several concurrencies, the
batching gain (throughput at 32 clients over 1), and for summarize the time to the first streamed
token and tokens/s. Prints one JSON object (and writes it with --json).

    /usr/bin/python3 bench/serve.py --heed build/heed --classifier runs/imdb_classifier \
        [--summarizer runs/bbc_summarizer] [--texts reviews.txt] [--articles articles.txt] \
        [--requests 1000] [--concurrency 1,8,32,128] [--max-batch 16] [--batch-wait-ms 5] [--json out.json]

It starts `heed serve` itself on an ephemeral port (or uses --url), warms up, then for each
concurrency sends --requests classify requests (one text each, texts cycled) from that many client
threads with keep-alive connections. With --check-labels it also runs `heed classify --run` on
the texts and reports how many labels the server agrees on. Clients are Python threads: at very
high request rates on tiny models the client itself is the bottleneck (the JSON says how many
client threads ran)."""
import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

WORDS = ("the a movie film was is really very plot acting story actor director scene and but not music "
         "ending characters long short sad it this i great awful loved hated").split()


def synthetic(n, words_per_text, seed):
    import random
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words_per_text)) + "." for _ in range(n)]


def read_texts(path, limit):
    texts = [line.rstrip("\n") for line in open(path, encoding="utf-8") if line.strip()]
    return texts[:limit] if limit else texts


def start_server(args, models):
    log_path = Path(args.log)
    log = open(log_path, "w")
    cmd = [args.heed, "serve", "--port", "0", "--max-batch", str(args.max_batch), "--batch-wait-ms",
           str(args.batch_wait_ms), "--max-queue", str(max(256, 2 * max(args.concurrency))),
           "--threads", str(args.threads)]
    for name, path in models.items():
        cmd += ["--model", f"{name}={path}"]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        match = re.search(r"listening on (http://[0-9.]+:\d+)", log_path.read_text())
        if match:
            try:
                conn = http.client.HTTPConnection(urllib.parse.urlparse(match.group(1)).netloc, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return process, match.group(1)
            except OSError:
                pass
        time.sleep(0.2)
    process.kill()
    sys.exit(f"bench/serve.py: heed serve did not become healthy:\n{log_path.read_text()[-3000:]}")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def classify_load(netloc, model, texts, requests, concurrency):
    """`requests` classify requests from `concurrency` threads; returns stats and the labels by text index."""
    latencies, labels, errors = [], {}, []
    lock = threading.Lock()
    next_index = [0]

    def client():
        conn = http.client.HTTPConnection(netloc, timeout=120)
        while True:
            with lock:
                i = next_index[0]
                if i >= requests:
                    return
                next_index[0] += 1
            body = json.dumps({"inputs": texts[i % len(texts)]})
            start = time.perf_counter()
            try:
                conn.request("POST", f"/v1/models/{model}/classify", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    errors.append(str(error))
                conn = http.client.HTTPConnection(netloc, timeout=120)
                continue
            elapsed = time.perf_counter() - start
            with lock:
                if response.status != 200:
                    errors.append(f"HTTP {response.status}: {payload[:200]!r}")
                    continue
                latencies.append(elapsed)
                labels[i % len(texts)] = json.loads(payload)[0]["label"]

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": requests,
        "answered": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(wall, 4),
        "requests_per_s": round(len(latencies) / wall, 2),
        "latency_p50_ms": round(1000 * percentile(latencies, 0.5), 2) if latencies else None,
        "latency_p99_ms": round(1000 * percentile(latencies, 0.99), 2) if latencies else None,
    }, labels


def stream_summary(netloc, model, article):
    """One streamed summary: seconds to the first token event, to the end, and tokens generated."""
    conn = http.client.HTTPConnection(netloc, timeout=600)
    start = time.perf_counter()
    conn.request("POST", f"/v1/models/{model}/summarize", json.dumps({"inputs": article, "stream": True}),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        sys.exit(f"bench/serve.py: summarize answered {response.status}: {response.read()[:300]!r}")
    first, tokens, text = None, 0, ""
    while True:
        line = response.readline()
        if not line:
            break
        line = line.decode().strip()
        if not line.startswith("data:"):
            continue
        event = json.loads(line[5:])
        if first is None:
            first = time.perf_counter() - start
        if event.get("generated_text") is not None:
            tokens = event["details"]["generated_tokens"]
            text = event["generated_text"]
    total = time.perf_counter() - start
    return first, total, tokens, text


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heed", default="build/heed")
    parser.add_argument("--url", help="an already running server (then --classifier/--summarizer are model names)")
    parser.add_argument("--classifier", help="run directory or .pt (or the model name with --url)")
    parser.add_argument("--summarizer", help="run directory or .pt (or the model name with --url)")
    parser.add_argument("--texts", help="classify inputs, one per line (default: synthetic)")
    parser.add_argument("--articles", help="summarize inputs, one per line (default: synthetic)")
    parser.add_argument("--requests", type=int, default=1000, help="classify requests per concurrency")
    parser.add_argument("--concurrency", default="1,8,32,128")
    parser.add_argument("--summaries", type=int, default=10, help="streamed summaries measured")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--batch-wait-ms", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--check-labels", action="store_true", help="compare labels with `heed classify --run`")
    parser.add_argument("--log", default="/tmp/heed-serve-bench.log")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if not args.classifier and not args.summarizer:
        sys.exit("bench/serve.py: give --classifier and/or --summarizer")

    texts = read_texts(args.texts, 0) if args.texts else synthetic(500, 40, 1)
    articles = read_texts(args.articles, args.summaries) if args.articles else synthetic(args.summaries, 120, 2)
    process = None
    if args.url:
        base = args.url
        names = {"clf": args.classifier, "sum": args.summarizer}
    else:
        models = {}
        if args.classifier:
            models["clf"] = args.classifier
        if args.summarizer:
            models["sum"] = args.summarizer
        process, base = start_server(args, models)
        names = {k: k if v else None for k, v in (("clf", args.classifier), ("sum", args.summarizer))}
    netloc = urllib.parse.urlparse(base).netloc
    info_conn = http.client.HTTPConnection(netloc)
    info_conn.request("GET", "/info")
    info = json.loads(info_conn.getresponse().read())
    results = {"server": {k: info[k] for k in ("version", "max_batch", "batch_wait_ms")}, "client": "python threads"}
    try:
        if names["clf"]:
            classify_load(netloc, names["clf"], texts, min(50, args.requests), 4)  # warm-up
            levels, all_labels = [], {}
            for c in args.concurrency:
                stats, labels = classify_load(netloc, names["clf"], texts, args.requests, c)
                levels.append(stats)
                all_labels.update(labels)
                print(json.dumps(stats), file=sys.stderr)
            results["classify"] = levels
            by_c = {s["concurrency"]: s["requests_per_s"] for s in levels}
            if 1 in by_c and 32 in by_c and by_c[1] > 0:
                results["batching_gain_32_vs_1"] = round(by_c[32] / by_c[1], 2)
            if args.check_labels and not args.url:
                tmp = Path(args.log).with_suffix(".texts")
                tmp.write_text("".join(t.replace("\n", " ") + "\n" for t in texts))
                out = subprocess.run([args.heed, "classify", "--run", args.classifier, "--input", str(tmp)],
                                     capture_output=True, text=True, check=True).stdout.splitlines()
                cli = [json.loads(line)["label"] for line in out]
                same = sum(1 for i, label in all_labels.items() if cli[i] == label)
                results["labels_same_as_heed_classify"] = f"{same}/{len(all_labels)}"
        if names["sum"]:
            stream_summary(netloc, names["sum"], articles[0])  # warm-up
            firsts, rates = [], []
            for article in articles:
                first, total, tokens, _ = stream_summary(netloc, names["sum"], article)
                firsts.append(first)
                if total > first and tokens > 1:
                    rates.append((tokens - 1) / (total - first))
            results["summarize_stream"] = {
                "summaries": len(articles),
                "first_token_p50_s": round(statistics.median(firsts), 4),
                "first_token_max_s": round(max(firsts), 4),
                "tokens_per_s_mean": round(statistics.mean(rates), 1) if rates else None,
            }
    finally:
        if process:
            process.terminate()
            results["server_exit_code"] = process.wait(timeout=120)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
