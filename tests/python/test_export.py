#!/usr/bin/python3
"""heed export, checked from Python: trains a tiny classifier and a tiny summarizer with the heed
binary on synthetic data, exports both, runs the archives with torch.jit.load + sentencepiece (the
tokenizer read from the archive's extra files) and compares with `heed classify --run` /
`heed summarize --run`. Run by CTest (PythonExport); needs Debian's python3-torch and
python3-sentencepiece (scripts/setup.sh installs them). Exits non-zero on any failure."""

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import torch
    import sentencepiece as spm
except ImportError as error:  # never a silent pass: CTest must see this
    sys.exit(f"FAIL: {error}. Install python3-torch and python3-sentencepiece (scripts/setup.sh) "
             f"and run this with /usr/bin/python3.")

WORDS = ("the a movie film was is really very plot acting story actor director scene and but not music "
         "ending characters long short sad it this i").split()
POSITIVE = "great wonderful loved best funny brilliant".split()
NEGATIVE = "awful terrible hated worst boring dull".split()
EXTRA_FILES = ("heed/format.json", "heed/config.json", "heed/tokenizer.model", "heed/labels.json")

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def sentence(rng):
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 10))]
    return " ".join(words).capitalize() + "."


def write_fixtures(folder, rng):
    with open(folder / "train.jsonl", "w") as out:
        for _ in range(160):
            positive = rng.random() < 0.5
            words = sentence(rng)[:-1].split() + rng.sample(POSITIVE if positive else NEGATIVE, 2)
            rng.shuffle(words)
            out.write(json.dumps({"text": " ".join(words), "label": "pos" if positive else "neg"}) + "\n")
    with open(folder / "pairs.jsonl", "w") as out:
        for i in range(160):
            article = [sentence(rng) for _ in range(rng.randint(3, 5))]
            out.write(json.dumps({"article": " ".join(article), "highlights": article[0], "id": str(i)}) + "\n")


def heed(args, binary):
    result = subprocess.run([binary] + args, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAIL: heed {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def load_archive(path):
    """The module, its extra files (str or bytes) and a SentencePiece processor from the bundled model."""
    extra = {name: "" for name in EXTRA_FILES}
    module = torch.jit.load(str(path), _extra_files=extra)
    tokenizer = spm.SentencePieceProcessor(model_proto=extra["heed/tokenizer.model"])
    return module, extra, tokenizer


def text_of(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def encode(tokenizer, config, text):
    """heed's clean-up (whitespace normalised) and truncation ("head", the tiny configs' default)."""
    ids = tokenizer.encode(" ".join(text.split()))[: config["data"]["max_length"]]
    return ids or [tokenizer.unk_id()]


def padded(sequences, pad_id):
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, s in enumerate(sequences):
        ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, torch.tensor([len(s) for s in sequences], dtype=torch.long)


def check_classifier(binary, run, archive, texts_file, texts):
    module, extra, tokenizer = load_archive(archive)
    fmt = json.loads(text_of(extra["heed/format.json"]))
    config = json.loads(text_of(extra["heed/config.json"]))
    labels = json.loads(text_of(extra["heed/labels.json"]))
    check(fmt["format"] == 1 and fmt["kind"] == "classifier", f"classifier format.json: {fmt}")
    ids, lengths = padded([encode(tokenizer, config, t) for t in texts], fmt["pad_id"])
    with torch.no_grad():
        predicted, probabilities = module.predict(ids, lengths)
    from_run = [json.loads(line) for line in heed(["classify", "--run", run, "--input", texts_file], binary).splitlines()]
    from_model = [json.loads(line) for line in heed(["classify", "--model", archive, "--input", texts_file], binary).splitlines()]
    check(len(from_run) == len(texts) == len(from_model), "classify: one line per text")
    for i, (a, b) in enumerate(zip(from_run, from_model)):
        check(labels[predicted[i].item()] == a["label"] == b["label"], f"classify text {i}: labels differ")
        for c, label in enumerate(labels):
            p = probabilities[i, c].item()
            check(abs(p - a["probabilities"][label]) < 1e-5, f"classify text {i} {label}: python {p} vs --run")
            check(abs(b["probabilities"][label] - a["probabilities"][label]) < 1e-5, f"classify text {i}: --model vs --run")
    print(f"classifier: {len(texts)} texts agree (python, --model, --run)")


# Summaries agree exactly, scores to rounding: heed's decoding step uses matrix-vector attention and
# its own few-rows linear kernel, the exported model bmm and addmm (as tests/export_test.cpp).
SCORE_TOLERANCE = 1e-5


def check_summarizer(binary, run, archive, articles_file, articles):
    module, extra, tokenizer = load_archive(archive)
    fmt = json.loads(text_of(extra["heed/format.json"]))
    config = json.loads(text_of(extra["heed/config.json"]))
    check(fmt["format"] == 1 and fmt["kind"] == "summarizer", f"summarizer format.json: {fmt}")
    max_length = config["decoding"]["max_length"]
    # (heed flags, generate arguments after ids/lengths): greedy as configured, and beam search
    settings = [([], (1, max_length, 0, 1.0, 0)),
                (["--method", "beam", "--beam", "3", "--no-repeat-ngram", "2", "--length-penalty", "0.8",
                  "--min-length", "2"], (3, max_length, 2, 0.8, 2))]
    for flags, args in settings:
        # One article per batch on both sides, so every tensor has the same shape.
        run_lines = heed(["summarize", "--run", run, "--jsonl", "--batch-size", "1", "--input", articles_file] + flags,
                         binary).splitlines()
        model_lines = heed(["summarize", "--model", archive, "--jsonl", "--batch-size", "1", "--input", articles_file]
                           + flags, binary).splitlines()
        check(len(run_lines) == len(model_lines) == len(articles), f"summarize {flags}: one line per article")
        for i, (a, b) in enumerate(zip(run_lines, model_lines)):
            a, b = json.loads(a), json.loads(b)
            check(abs(a.pop("score") - b.pop("score")) < SCORE_TOLERANCE, f"summarize {flags} article {i}: --model score")
            check(a == b, f"summarize {flags} article {i}: --model {b} vs --run {a}")
        for i, article in enumerate(articles):
            ids, lengths = padded([encode(tokenizer, config, article)], fmt["pad_id"])
            with torch.no_grad():
                tokens = module.generate(ids, lengths, *args)[0].tolist()
                _, counts, scores = module.search(ids, lengths, *args, True)
            tokens = tokens[: counts[0].item()]
            expected = json.loads(run_lines[i])
            # heed prints sentences split (a space may be added after a glued full stop) on one line
            summary = tokenizer.decode(tokens)
            check("".join(summary.split()) == "".join(expected["summary"].split()),
                  f"summarize {flags} article {i}: python {summary!r} vs --run {expected['summary']!r}")
            check(abs(scores[0] - expected["score"]) < SCORE_TOLERANCE, f"summarize {flags} article {i}: scores differ")
    print(f"summarizer: {len(articles)} articles x {len(settings)} settings agree (python, --model, --run)")


def max_difference(tensor, nested):
    return (tensor - torch.tensor(nested, dtype=tensor.dtype)).abs().max().item()


def check_attention(binary, archives, text, article):
    """The archives' `attention` methods from Python against `heed attention --model ... --json`
    (docs/ATTENTION.md): the same tokens, the same weights (JSON rounded to 6 decimals)."""
    module, extra, tokenizer = load_archive(archives["classifier"])
    config = json.loads(text_of(extra["heed/config.json"]))
    shown = json.loads(heed(["attention", "--model", archives["classifier"], text, "--json"], binary))
    ids, lengths = padded([encode(tokenizer, config, text)], 0)
    with torch.no_grad():
        probabilities, attention = module.attention(ids, lengths)
    check(len(shown["tokens"]) == ids.size(1), "attention: classifier token count")
    check(len(attention) == len(shown["encoder_attention"]), "attention: classifier layers")
    for layer, weights in enumerate(attention):
        check(max_difference(weights[0], shown["encoder_attention"][layer]) < 1e-5, f"attention: classifier layer {layer}")
        check((weights.sum(-1) - 1).abs().max().item() < 1e-5, f"attention: classifier layer {layer} rows sum to 1")
    labels = json.loads(text_of(extra["heed/labels.json"]))
    for c, label in enumerate(labels):
        check(abs(probabilities[0, c].item() - shown["scores"][label]) < 1e-5, f"attention: score of {label}")

    module, extra, tokenizer = load_archive(archives["summarizer"])
    config = json.loads(text_of(extra["heed/config.json"]))
    fmt = json.loads(text_of(extra["heed/format.json"]))
    shown = json.loads(heed(["attention", "--model", archives["summarizer"], article, "--json"], binary))
    ids, lengths = padded([encode(tokenizer, config, article)], fmt["pad_id"])
    with torch.no_grad():
        # the run's decoding (greedy, as configured): search's tokens and count
        tokens, counts, _ = module.search(ids, lengths, 1, config["decoding"]["max_length"], 0, 1.0, 0, True)
        summary = tokens[0].tolist()[: max(0, counts[0].item())]
        target_in = torch.tensor([[fmt["bos_id"]] + summary[:-1]], dtype=torch.long)
        encoder, cross, copy_probability, copy_attention = module.attention(ids, lengths, target_in)
    check(len(shown["decoder_tokens"]) == len(summary), "attention: summary length")
    if summary:
        for layer, weights in enumerate(cross):
            check(max_difference(weights[0], shown["cross_attention"][layer]) < 1e-5, f"attention: cross layer {layer}")
        check(max_difference(copy_probability[0], shown["copy_probability"]) < 1e-5, "attention: copy probability")
        check(copy_attention is not None and max_difference(copy_attention[0], shown["copy_attention"]) < 1e-5,
              "attention: copy distribution")
    for layer, weights in enumerate(encoder):
        check(max_difference(weights[0], shown["encoder_attention"][layer]) < 1e-5, f"attention: encoder layer {layer}")
    print(f"attention: archives' attention methods agree with heed attention ({len(summary)} summary tokens)")


def evaluate_report(binary, args, report):
    heed(["evaluate"] + args + ["--report", report], binary)
    return json.loads(Path(report).read_text())


def check_quantized(binary, tmp, texts_file, texts, articles_file):
    """heed export --quantize bf16|int8: format 2 archives that torch.jit.load runs, smaller than the
    float32 one, whose answers `heed classify/summarize --model` reproduce exactly (the same TorchScript)
    and stay close to the float32 archive's; `heed evaluate --model` scores them."""
    module, extra, tokenizer = load_archive(tmp + "/classifier.pt")
    config = json.loads(text_of(extra["heed/config.json"]))
    pad_id = json.loads(text_of(extra["heed/format.json"]))["pad_id"]
    ids, lengths = padded([encode(tokenizer, config, t) for t in texts], pad_id)
    with torch.no_grad():
        float_logits = module.forward(ids, lengths)
    float_accuracy = evaluate_report(binary, ["--run", tmp + "/classifier", "--data", tmp + "/train.jsonl"],
                                     tmp + "/eval_run.json")["accuracy"]
    float_rouge = evaluate_report(binary, ["--model", tmp + "/summarizer.pt", "--data", tmp + "/pairs.jsonl", "--limit",
                                           "24"], tmp + "/eval_float.json")["model"]["rouge1"]["f1"]["mid"]
    refused = subprocess.run([binary, "evaluate", "--model", tmp + "/classifier.pt", "--data", tmp + "/train.jsonl",
                              "--quantize", "int8"], capture_output=True, text=True)
    check(refused.returncode == 2 and "--quantize applies to --run only" in refused.stderr,
          f"evaluate --model --quantize: exit {refused.returncode}, {refused.stderr!r}")
    # evaluate --model's default report beside the archive never replaces a file it did not write
    foreign = Path(tmp + "/classifier.eval.train.jsonl.json")
    foreign.write_text("my notes\n")
    refused = subprocess.run([binary, "evaluate", "--model", tmp + "/classifier.pt", "--data", tmp + "/train.jsonl"],
                             capture_output=True, text=True)
    check(refused.returncode == 2 and "refusing to overwrite" in refused.stderr and foreign.read_text() == "my notes\n",
          f"evaluate --model over a foreign default report: exit {refused.returncode}, {refused.stderr!r}")
    foreign.unlink()
    heed(["evaluate", "--model", tmp + "/classifier.pt", "--data", tmp + "/train.jsonl"], binary)
    heed(["evaluate", "--model", tmp + "/classifier.pt", "--data", tmp + "/train.jsonl"], binary)  # its own: replaced
    check(json.loads(foreign.read_text())["archive"] == tmp + "/classifier.pt", "evaluate --model: default report")
    for weights in ("bf16", "int8"):
        for kind in ("classifier", "summarizer"):
            archive = f"{tmp}/{kind}_{weights}.pt"
            heed(["export", "--run", f"{tmp}/{kind}", "--out", archive, "--quantize", weights], binary)
            module, extra, _ = load_archive(archive)
            fmt = json.loads(text_of(extra["heed/format.json"]))
            check(fmt["format"] == 2 and fmt["weights"] == weights, f"{weights} {kind} format.json: {fmt}")
            check(Path(archive).stat().st_size < Path(f"{tmp}/{kind}.pt").stat().st_size,
                  f"{weights} {kind}: the archive is not smaller than the float32 one")
        module, extra, _ = load_archive(f"{tmp}/classifier_{weights}.pt")
        with torch.no_grad():
            _, probabilities = module.predict(ids, lengths)
            logits = module.forward(ids, lengths)
        difference = (logits - float_logits).abs().max().item()
        check(difference < 0.02 * float_logits.abs().max().item(), f"{weights} classifier: logits {difference} from float32")
        check(difference > 0, f"{weights} classifier: the same logits as float32 (not quantized?)")
        lines = heed(["classify", "--model", f"{tmp}/classifier_{weights}.pt", "--input", texts_file], binary).splitlines()
        labels = json.loads(text_of(extra["heed/labels.json"]))
        for i, line in enumerate(lines):
            answer = json.loads(line)
            for c, label in enumerate(labels):
                check(abs(answer["probabilities"][label] - probabilities[i, c].item()) < 1e-6,
                      f"{weights} classify --model text {i} {label}: heed vs python")
        accuracy = evaluate_report(binary, ["--model", f"{tmp}/classifier_{weights}.pt", "--data", tmp + "/train.jsonl"],
                                   f"{tmp}/eval_{weights}.json")["accuracy"]
        check(abs(accuracy - float_accuracy) <= 0.02, f"{weights} evaluate --model: accuracy {accuracy} vs {float_accuracy}")

        archive = f"{tmp}/summarizer_{weights}.pt"
        module, extra, tokenizer = load_archive(archive)
        config = json.loads(text_of(extra["heed/config.json"]))
        pad_id = json.loads(text_of(extra["heed/format.json"]))["pad_id"]
        lines = heed(["summarize", "--model", archive, "--jsonl", "--batch-size", "1", "--input", articles_file],
                     binary).splitlines()
        articles = Path(articles_file).read_text().splitlines()
        for i, article in enumerate(articles):
            ids_s, lengths_s = padded([encode(tokenizer, config, article)], pad_id)
            with torch.no_grad():
                tokens, counts, _ = module.search(ids_s, lengths_s, 1, config["decoding"]["max_length"], 0, 1.0, 0, True)
            summary = tokenizer.decode(tokens[0].tolist()[: counts[0].item()])
            expected = json.loads(lines[i])["summary"]
            check("".join(summary.split()) == "".join(expected.split()),
                  f"{weights} summarize --model article {i}: python {summary!r} vs heed {expected!r}")
        rouge = evaluate_report(binary, ["--model", archive, "--data", tmp + "/pairs.jsonl", "--limit", "24"],
                                f"{tmp}/eval_{weights}_s.json")["model"]["rouge1"]["f1"]["mid"]
        check(abs(rouge - float_rouge) < 0.05, f"{weights} evaluate --model: ROUGE-1 {rouge} vs float32 {float_rouge}")
        print(f"{weights}: archives load in python; classifier logits within {difference:.2g} of float32, "
              f"accuracy {accuracy:.3f} (float32 {float_accuracy:.3f}); ROUGE-1 {rouge:.3f} (float32 {float_rouge:.3f})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--heed", required=True, help="the heed executable")
    parser.add_argument("--configs", required=True, help="heed's configs/ folder (tiny_*.json)")
    options = parser.parse_args()
    start = time.time()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="heed_export_py_") as tmp:
        folder = Path(tmp)
        write_fixtures(folder, rng)
        configs = Path(options.configs)
        heed(["train", "--config", str(configs / "tiny_classifier.json"), "--data-dir", tmp, "--output",
              tmp + "/classifier", "--set", "training.epochs=2"], options.heed)
        heed(["train", "--config", str(configs / "tiny_summarizer.json"), "--data-dir", tmp, "--output",
              tmp + "/summarizer", "--set", "training.epochs=3", "--set", "training.rouge_samples=4"], options.heed)
        heed(["export", "--run", tmp + "/classifier", "--out", tmp + "/classifier.pt"], options.heed)
        heed(["export", "--run", tmp + "/summarizer", "--out", tmp + "/summarizer.pt"], options.heed)

        texts = ["a great and wonderful film", "the worst, most boring plot", "", "it was the   best music"]
        (folder / "texts.txt").write_text("\n".join(texts) + "\n")
        check_classifier(options.heed, tmp + "/classifier", tmp + "/classifier.pt", str(folder / "texts.txt"), texts)

        articles = [" ".join(sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(6)]
        (folder / "articles.txt").write_text("\n".join(articles) + "\n")
        check_summarizer(options.heed, tmp + "/summarizer", tmp + "/summarizer.pt", str(folder / "articles.txt"),
                         articles)
        check_attention(options.heed, {"classifier": tmp + "/classifier.pt", "summarizer": tmp + "/summarizer.pt"},
                        texts[0], articles[0])
        check_quantized(options.heed, tmp, str(folder / "texts.txt"), texts, str(folder / "articles.txt"))
    print(f"{len(failures)} failure(s), {time.time() - start:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
