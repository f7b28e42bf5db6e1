#!/usr/bin/env python3
"""Regenerates tests/fuzz/seeds/<target>/ from tests/fixtures (run by hand when fixtures change).

Each seed is an input in the format its target expects (see the comment at the top of
tests/fuzz/fuzz_<target>.cpp). Targets whose seeds must be produced by code (fuzz_flat_weights,
fuzz_spm, fuzz_checkpoint, fuzz_export) generate them themselves; scripts/fuzz.sh asks for them.
"""
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "tests", "fuzz", "seeds")
READERS = 14  # fuzz_readers.cpp kReaders


def read(*parts):
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def named(name, content):
    return name.encode() + b"\n" + content


def main():
    for target in ("fuzz_config", "fuzz_text", "fuzz_readers"):
        shutil.rmtree(os.path.join(OUT, target), ignore_errors=True)

    # fuzz_config: config file, then NUL-separated --set overrides.
    for name in ("tiny_classifier.json", "tiny_summarizer.json"):
        cfg = read(ROOT, "configs", name)
        write("fuzz_config", name, cfg)
        write("fuzz_config", name + ".set", cfg + b"\0training.epochs=2\0model.pooling=attention\0data.truncation=head_tail")
    write("fuzz_config", "set_only", b'{"data": {"train": "x.jsonl"}}\0task=summarization\0decoding.beam_size=4\0data.format=bbc')

    # fuzz_text: fixture texts.
    texts = [read(FIX, "aclImdb_mini", "train", "pos", "0_10.txt"), read(FIX, "news", "stories", "0001a.story"),
             read(FIX, "news", "bbc", "Summaries", "business", "001.txt"),
             "Ünïcödé “quotes” rose 5%.The firm said<br />\n\n  U.S. e.g. 3.5 www.bbc.co.uk".encode() + b"\xff\xc3"]
    for i, t in enumerate(texts):
        write("fuzz_text", f"text{i}", t[:4096])

    # fuzz_readers: byte 0 = reader, then NUL-separated parts.
    def reader(sel, name, parts):
        write("fuzz_readers", name, bytes([sel]) + b"\0".join(parts))

    rows = [("a great film, \"really\"", "pos"), ("awful\tplot", "neg"), ("fine", "pos")]
    jsonl = b"".join(json.dumps({"text": t, "label": l}).encode() + b"\n" for t, l in rows)
    csv = b"text,label\n" + b"".join(('"' + t.replace('"', '""') + '",' + l + "\n").encode() for t, l in rows)
    tsv = b"text\tlabel\n" + b"".join((t.replace("\t", " ") + "\t" + l + "\n").encode() for t, l in rows)
    reader(0, "classify_jsonl", [jsonl])
    reader(1, "classify_csv", [csv])
    reader(2, "classify_tsv", [tsv])
    reader(3, "classify_auto_json", [jsonl])
    imdb = []
    for label in ("pos", "neg"):
        d = os.path.join(FIX, "aclImdb_mini", "train", label)
        imdb += [named(n, read(d, n)) for n in sorted(os.listdir(d))]
    reader(4, "imdb", imdb)
    sd = os.path.join(FIX, "news", "stories")
    stories = [named(n, read(sd, n)) for n in sorted(os.listdir(sd))]
    reader(5, "stories", stories)
    reader(6, "one_story", [read(sd, "0001a.story")])
    reader(7, "cnndm_jsonl", [read(FIX, "news", "cnndm.jsonl")])
    bbc = []
    for topic in ("business", "tech"):
        for n in ("001.txt", "002.txt"):
            art = os.path.join(FIX, "news", "bbc", "News Articles", topic, n)
            summ = os.path.join(FIX, "news", "bbc", "Summaries", topic, n)
            if os.path.exists(art):
                bbc.append(named(n, read(art)))
                bbc.append(named(n, read(summ)) if os.path.exists(summ) else b"")
    reader(8, "bbc_summary", bbc)
    reader(9, "bbc_headline", bbc)
    reader(10, "aligned", [read(FIX, "news", "aligned.source"), read(FIX, "news", "aligned.target")])
    pairs = [json.loads(l) for l in read(FIX, "news", "cnndm.jsonl").decode().splitlines() if l.strip()]
    sjsonl = b"".join(json.dumps({"article": p["article"], "highlights": p["highlights"]}).encode() + b"\n" for p in pairs)
    scsv = b"article,highlights\n" + b"".join(
        ('"' + p["article"].replace('"', '""') + '","' + p["highlights"].replace('"', '""') + '"\n').encode() for p in pairs)
    stsv = b"article\thighlights\n" + b"".join(
        (p["article"] + "\t" + p["highlights"].replace("\n", " ") + "\n").encode() for p in pairs)
    reader(11, "summary_jsonl", [sjsonl])
    reader(12, "summary_csv", [scsv])
    reader(13, "summary_tsv", [stsv])
    reader(224 + 4, "auto_folder", imdb)  # high values: format "auto"
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote seeds under {OUT} ({total} bytes)")


if __name__ == "__main__":
    sys.exit(main())
