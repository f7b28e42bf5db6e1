#!/usr/bin/env python3
"""Self time per op from `heed_bench ... --profile FILE` (libtorch's profiler events).

    bench/profile_ops.py FILE [--by-caller] [--top N]

Self time: an op's time minus the time of the ops it called. Ops heed runs through its own autograd
functions (linear layers, fused attention, dropout, the feed-forward middle) show up by their backward
node only: their forward runs outside the dispatcher, so the profile's total is below the wall time
and the difference is mostly those forwards. --by-caller keys each op by itself and its three callers,
with input shapes.
"""
import argparse
import collections


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("--by-caller", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    stacks = collections.defaultdict(list)
    self_us = collections.Counter()
    calls = collections.Counter()
    with open(args.events) as f:
        for line in f:
            kind, name, thread, us, shapes = line.rstrip("\n").split("\t")
            stack = stacks[thread]
            if kind == "push":
                stack.append([name, float(us), 0.0, shapes])
            elif kind == "pop" and stack:
                op, start, children, op_shapes = stack.pop()
                took = float(us) - start
                key = op
                if args.by_caller:
                    key = " < ".join([op + op_shapes] + [s[0] + s[3] for s in reversed(stack)][:3])
                self_us[key] += took - children
                calls[key] += 1
                if stack:
                    stack[-1][2] += took
    total = sum(self_us.values())
    print(f"total self time {total / 1000:.1f} ms")
    for key, us in self_us.most_common(args.top):
        print(f"{us / 1000:9.1f} ms {100 * us / total:5.1f}% {calls[key]:7d}  {key[:200]}")


if __name__ == "__main__":
    main()
