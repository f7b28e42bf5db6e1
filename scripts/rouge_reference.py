#!/usr/bin/env python3
"""Cross-check heed's ROUGE with Google's rouge-score package (pip install rouge-score).

Scores each (reference, candidate) pair with rouge_score.rouge_scorer.RougeScorer, the
implementation heed's app/evaluation/rouge.cpp reproduces, and prints the corpus means as JSON in the
layout of heed's to_json(CorpusRouge): fractions in [0, 1], "mid" = the mean over pairs.

Inputs are two files with one text per record, in the same order:
  - JSON Lines (*.jsonl, or --format jsonl): each line a JSON string, or an object whose text is
    in --ref-field / --cand-field (default: the object's only string value);
  - plain text (--format lines): one text per line. A text can then hold no newline, so
    ROUGE-Lsum (sentences split on '\\n') equals ROUGE-L; use JSON Lines
    with one sentence per line inside each text for a meaningful ROUGE-Lsum.

  scripts/rouge_reference.py references.jsonl candidates.jsonl
  scripts/rouge_reference.py refs.txt cands.txt --format lines --no-stemmer
  scripts/rouge_reference.py refs.jsonl preds.jsonl --bootstrap 1000   # adds low/high

This script holds no ROUGE code of its own; it needs the rouge-score package installed.
"""

import argparse
import json
import sys


def read_texts(path, fmt, field):
    if fmt == "auto":
        fmt = "jsonl" if path.endswith((".jsonl", ".json")) else "lines"
    texts = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if fmt == "lines":
                texts.append(line.rstrip("\r"))
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{number}: not JSON ({e})")
            if isinstance(value, dict):
                if field is None:
                    strings = [k for k, v in value.items() if isinstance(v, str)]
                    if len(strings) != 1:
                        sys.exit(f"{path}:{number}: say which field holds the text (keys: {sorted(value)})")
                    value = value[strings[0]]
                elif field in value:
                    value = value[field]
                else:
                    sys.exit(f"{path}:{number}: no field '{field}' (keys: {sorted(value)})")
            if not isinstance(value, str):
                sys.exit(f"{path}:{number}: the text is not a string")
            texts.append(value)
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references")
    parser.add_argument("candidates")
    parser.add_argument("--format", choices=["auto", "jsonl", "lines"], default="auto")
    parser.add_argument("--ref-field", default=None, help="JSON field of the reference text")
    parser.add_argument("--cand-field", default=None, help="JSON field of the candidate text")
    parser.add_argument("--no-stemmer", action="store_true", help="score without the Porter stemmer")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="also report rouge-score's BootstrapAggregator low/high over N resamples")
    parser.add_argument("--seed", type=int, default=42, help="numpy seed for --bootstrap")
    args = parser.parse_args()

    try:
        from rouge_score import rouge_scorer, scoring
    except ImportError:
        sys.exit("this needs Google's rouge-score package: pip install rouge-score")

    refs = read_texts(args.references, args.format, args.ref_field)
    cands = read_texts(args.candidates, args.format, args.cand_field)
    if len(refs) != len(cands):
        sys.exit(f"{len(refs)} references but {len(cands)} candidates")

    metrics = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(metrics, use_stemmer=not args.no_stemmer)
    sums = {m: [0.0, 0.0, 0.0] for m in metrics}
    aggregator = scoring.BootstrapAggregator(n_samples=args.bootstrap) if args.bootstrap > 0 else None
    for ref, cand in zip(refs, cands):
        scores = scorer.score(ref, cand)  # target first, prediction second
        for m in metrics:
            for k, value in enumerate(scores[m]):
                sums[m][k] += value
        if aggregator is not None:
            aggregator.add_scores(scores)

    n = len(refs)
    out = {"pairs": n, "resamples": args.bootstrap}
    for m in metrics:
        out[m] = {name: {"mid": sums[m][k] / n if n else 0.0} for k, name in enumerate(["precision", "recall", "f1"])}
    if aggregator is not None and n:
        import numpy as np
        np.random.seed(args.seed)
        for m, agg in aggregator.aggregate().items():
            for k, name in enumerate(["precision", "recall", "f1"]):
                out[m][name]["low"] = float(agg.low[k])
                out[m][name]["high"] = float(agg.high[k])
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
