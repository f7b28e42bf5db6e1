#!/usr/bin/env python3
"""Data-parallel step time on this machine: 1 process x T threads vs N processes x T/N threads.

Runs `heed train` on a config for a fixed number of steps both ways, reads metrics.jsonl (train
records every --log-every steps: elapsed_seconds, and for the torchrun run allreduce_seconds_per_step)
and the "MB per step" the distributed run logs, and prints step time, all-reduce time per step,
bytes moved and the all-reduce bandwidth. Results go to docs/RESULTS.md by hand.

    /usr/bin/python3 bench/distributed.py --config configs/imdb_classifier.json --steps 60
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile


def run(cmd, env=None):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-4000:]}")
    return p.stdout


def train_records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["type"] == "train"]


def step_seconds(records):
    # The first window holds start-up effects (allocator warm-up): skip it.
    if len(records) < 3:
        sys.exit("too few train records: raise --steps or lower --log-every")
    a, b = records[1], records[-1]
    return (b["elapsed_seconds"] - a["elapsed_seconds"]) / (b["step"] - a["step"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heed", default="build/heed")
    ap.add_argument("--config", required=True)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="threads of the one-process run (split over --procs)")
    ap.add_argument("--machines", type=int, default=8, help="machines of the on-paper estimate")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    sets = [f"training.max_steps={args.steps}", f"training.log_every={args.log_every}", "training.eval_every=0"] + args.set
    flags = sum((["--set", s] for s in sets), [])
    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one")
        run([args.heed, "train", "--config", args.config, "--threads", str(args.threads), "--output", one] + flags)
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, args.threads // args.procs)))
        many = os.path.join(tmp, "many")
        # --redirects 1 --tee 1: Debian 12 torchrun bug, docs/DISTRIBUTED.md
        out = run(["torchrun", "--no_python", "--standalone", "--nproc_per_node", str(args.procs), "--redirects", "1",
                   "--tee", "1", args.heed, "train",
                   "--config", args.config, "--threads", str(max(1, args.threads // args.procs)), "--output", many]
                  + flags, env=env)
        mb = float(re.search(r"([0-9.]+) MB per step", out).group(1))
        r1, rn = train_records(one), train_records(many)
        s1, sn = step_seconds(r1), step_seconds(rn)
        ar = sum(r["allreduce_seconds_per_step"] for r in rn[1:]) / len(rn[1:])
        n = args.procs
        moved = 2 * (n - 1) / n * mb  # ring all-reduce: each rank sends (and receives) this much
        # On paper: M machines like this one, 1 process x --threads each, the same global batch. Each
        # machine computes 1/M of the batch (step time taken as proportional to the rows: optimistic
        # for small per-machine batches) and then all-reduces the gradients over a ring (each sends
        # and receives 2(M-1)/M of them), not overlapped with backward (heed overlaps the all-reduce
        # only with packing the next bucket). Latency terms are left out: at these gradient sizes the
        # transfer dominates.
        m = args.machines
        links = {"measured_here": moved / ar if ar > 0 else None, "10GbE": 1100.0, "1GbE": 117.0}
        estimate = {}
        for name, mb_s in links.items():
            if not mb_s:
                continue
            allreduce = 2 * (m - 1) / m * mb / mb_s
            step = s1 / m + allreduce
            estimate[name] = {"link_mb_s": round(mb_s, 1), "compute_seconds": round(s1 / m, 4),
                              "allreduce_seconds": round(allreduce, 4), "step_seconds": round(step, 4),
                              "speedup_vs_1_machine": round(s1 / step, 2)}
        print(json.dumps({
            "config": args.config, "steps": args.steps,
            f"step_seconds_1x{args.threads}": round(s1, 4),
            f"step_seconds_{n}x{max(1, args.threads // n)}": round(sn, 4),
            "allreduce_seconds_per_step": round(ar, 4),
            "gradient_mb_per_rank": mb,
            "mb_sent_per_rank_per_step_ring": round(moved, 3),
            "allreduce_bandwidth_mb_s": round(moved / ar, 1) if ar > 0 else None,
            f"estimate_{m}_machines": estimate,
        }, indent=2))


if __name__ == "__main__":
    main()
