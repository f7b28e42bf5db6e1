#!/usr/bin/python3
"""The plain-PyTorch reference for bench/run.py: what a user would write in Python (eager mode) for
the same models heed trains, run on the same batches with the same thread count.

  reference.py train-classifier  WORK --threads N --steps S [--precision fp32|bf16] [--data classifier.json]
  reference.py infer-classifier  WORK --threads N
  reference.py train-seq2seq     WORK --threads N --steps S [--precision fp32|bf16] [--data seq2seq.json]
  reference.py gemm-peak         WORK --threads N [--precision fp32|bf16]
  reference.py generate          WORK --threads N --batch B --cache 0|1 --new-tokens K
  reference.py tokenize          WORK --threads N
  reference.py save-classifier   WORK
  reference.py classify          WORK --text TEXT

WORK is the folder bench/run.py prepared (spm.model, classifier.json, seq2seq.json, articles.json).
Each call prints one JSON object on stdout. Models follow heed's defaults: pre-norm, GELU,
sinusoidal positions scaled by sqrt(d), mean pooling; encoder-decoder with tied embeddings; dropout
0.1 on embeddings, residuals and the feed-forward's hidden layer, none on attention weights (as
heed's). `--precision bf16` trains under `torch.autocast("cpu", dtype=torch.bfloat16)`: matrix
products in bfloat16, float32 weights, optimizer and loss, which is what heed's bf16 does.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoid(n, d):
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table


class Embed(nn.Module):
    def __init__(self, vocab, d, max_positions, dropout):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d)
        self.register_buffer("table", sinusoid(max_positions, d))
        self.scale = math.sqrt(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids, offset=0):
        return self.drop(self.tokens(ids) * self.scale + self.table[offset:offset + ids.size(1)])


class Classifier(nn.Module):
    """Embeddings -> nn.TransformerEncoder (pre-norm) -> mean over real tokens -> linear."""

    def __init__(self, vocab, d=256, heads=4, layers=4, ff=1024, classes=2, dropout=0.1, max_positions=512):
        super().__init__()
        self.embed = Embed(vocab, d, max_positions, dropout)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout, activation="gelu", batch_first=True, norm_first=True)
        # nn.TransformerEncoderLayer also drops attention weights with `dropout`; heed's configs and its
        # bench model use attention_dropout 0, so the reference does too (like for like).
        layer.self_attn.dropout = 0.0
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, ids, lengths):
        pad = torch.arange(ids.size(1)).unsqueeze(0) >= lengths.unsqueeze(1)
        h = self.encoder(self.embed(ids), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / lengths.unsqueeze(1).to(h.dtype))


class Attention(nn.Module):
    """Multi-head attention with an optional key/value cache (what a user writes for fast decoding)."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def split(self, x):
        return x.view(x.size(0), x.size(1), self.heads, self.dh).transpose(1, 2)

    def forward(self, x, memory=None, mask=None, cache=None, static=False):
        q = self.split(self.q(x))
        if static and cache is not None and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            src = x if memory is None else memory
            k, v = self.split(self.k(src)), self.split(self.v(src))
            if cache is not None and not static and "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            if cache is not None:
                cache["k"], cache["v"] = k, v
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.dh)
        if mask is not None:
            scores = scores.masked_fill(mask, -1e9)
        out = torch.softmax(scores, -1) @ v
        return self.o(out.transpose(1, 2).reshape(x.size(0), x.size(1), -1))


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, ff, dropout):
        super().__init__()
        self.att, self.n1, self.n2 = Attention(d, heads), nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        x = x + self.drop(self.att(self.n1(x), mask=mask))
        return x + self.drop(self.ff(self.n2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d, heads, ff, dropout):
        super().__init__()
        self.self_att, self.cross = Attention(d, heads), Attention(d, heads)
        self.n1, self.n2, self.n3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, memory, self_mask, memory_mask, cache=None):
        x = x + self.drop(self.self_att(self.n1(x), mask=self_mask, cache=None if cache is None else cache[0]))
        x = x + self.drop(self.cross(self.n2(x), memory, memory_mask, None if cache is None else cache[1], static=True))
        return x + self.drop(self.ff(self.n3(x)))


class Seq2Seq(nn.Module):
    """Encoder-decoder, pre-norm, tied input/output embeddings."""

    def __init__(self, vocab, d=256, heads=4, layers=3, ff=1024, dropout=0.1, max_positions=512):
        super().__init__()
        self.embed = Embed(vocab, d, max_positions, dropout)
        self.encoder = nn.ModuleList(EncoderLayer(d, heads, ff, dropout) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderLayer(d, heads, ff, dropout) for _ in range(layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.out = nn.Linear(d, vocab, bias=False)  # the output projection: the embedding table, tied
        self.out.weight = self.embed.tokens.weight

    def encode(self, src, src_lengths):
        pad = torch.arange(src.size(1)).unsqueeze(0) >= src_lengths.unsqueeze(1)
        mask = pad[:, None, None, :]
        h = self.embed(src)
        for layer in self.encoder:
            h = layer(h, mask)
        return self.enc_norm(h), mask

    def decode(self, tgt, memory, memory_mask, caches=None, offset=0):
        t = tgt.size(1)
        causal = None if caches is not None else torch.ones(t, t, dtype=torch.bool).triu(1)
        h = self.embed(tgt, offset)
        for i, layer in enumerate(self.decoder):
            h = layer(h, memory, causal, memory_mask, None if caches is None else caches[i])
        return self.out(self.dec_norm(h))  # [B, T, V]


def load(work, name):
    with open(os.path.join(work, name)) as f:
        return json.load(f)


def padded(rows, pad=0):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return ids, torch.tensor([len(r) for r in rows], dtype=torch.long)


def autocast(a):
    """The one line a PyTorch user adds for bf16 on CPU (a no-op context for fp32)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16")


def timed_steps(batches, steps, step_fn, warmup=2):
    for b in batches[:warmup]:
        step_fn(b)
    tokens, start = 0, time.perf_counter()
    for i in range(steps):
        tokens += step_fn(batches[i % len(batches)])
    seconds = time.perf_counter() - start
    return {"steps": steps, "seconds": seconds, "ms_per_step": 1000 * seconds / steps, "tokens_per_second": tokens / seconds}


def train_classifier(a):
    data = load(a.work, a.data or "classifier.json")
    torch.manual_seed(1)
    model = Classifier(data["vocab_size"], max_positions=data["max_length"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
    batches = [(padded(b["ids"]), torch.tensor(b["labels"])) for b in data["batches"]]
    model.train()

    def step(batch):
        (ids, lengths), labels = batch
        with autocast(a):
            loss = F.cross_entropy(model(ids, lengths).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return int(lengths.sum())

    return timed_steps(batches, a.steps, step)


def quantize_dynamic_int8(model):
    """What PyTorch offers in one line: dynamic quantization of every nn.Linear (per-channel int8
    weights, int8 activations quantized per call). nn.MultiheadAttention's projections are not
    nn.Linear modules, so in nn.TransformerEncoderLayer it reaches the feed-forward layers only."""
    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "onednn"
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear: qconfig}, dtype=torch.qint8)


def infer_classifier(a):
    data = load(a.work, "classifier.json")
    torch.manual_seed(1)
    model = Classifier(data["vocab_size"], max_positions=data["max_length"]).eval()
    if a.quantize == "int8":
        model = quantize_dynamic_int8(model)
        for layer in model.encoder.layers:
            # The fused inference path of nn.TransformerEncoderLayer reads linear1.weight as a tensor;
            # quantized, it is a method (torch 1.13 raises), so these layers take their module path.
            layer.activation_relu_or_gelu = 0
    # bf16: the whole model in bfloat16, as the bf16 generate case (torch 1.13's fused encoder layer and
    # attention ignore autocast and fail on its mixed inputs in inference).
    if a.quantize == "bf16":
        model = model.bfloat16()
    batches = [padded(b["ids"]) for b in data["batches"]]

    def step(batch):
        with torch.inference_mode():
            model(*batch).argmax(-1)
        return int(batch[1].sum())

    return timed_steps(batches, len(batches), step, warmup=1)


def train_seq2seq(a):
    data = load(a.work, a.data or "seq2seq.json")
    torch.manual_seed(1)
    model = Seq2Seq(data["vocab_size"], max_positions=data["max_positions"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
    bos, eos = data["bos_id"], data["eos_id"]
    batches = []
    for b in data["batches"]:
        src = padded(b["source"])
        tgt_in = padded([[bos] + t for t in b["target"]])
        tgt_out = padded([t + [eos] for t in b["target"]], pad=-100)
        batches.append((src, tgt_in[0], tgt_out[0]))
    model.train()

    def step(batch):
        (src, src_len), tgt_in, tgt_out = batch
        with autocast(a):
            memory, mask = model.encode(src, src_len)
            logits = model.decode(tgt_in, memory, mask)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), tgt_out.reshape(-1),
                                   ignore_index=-100, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return int((tgt_out != -100).sum())

    return timed_steps(batches, a.steps, step)


def generate(a):
    """Greedy decoding of exactly K new tokens per article (EOS ignored, as heed's bench does)."""
    data = load(a.work, "articles.json")
    torch.manual_seed(1)
    model = Seq2Seq(data["vocab_size"], max_positions=data["max_positions"]).eval()
    if a.quantize == "int8":
        model = quantize_dynamic_int8(model)  # the output projection included
    elif a.quantize == "bf16":
        model = model.to(torch.bfloat16)  # weights and activations in bfloat16
    sources = data["sources"][:a.batch]
    src, src_len = padded(sources)
    bos = data["bos_id"]

    def run():
        with torch.inference_mode():
            memory, mask = model.encode(src, src_len)
            out = torch.full((src.size(0), 1), bos, dtype=torch.long)
            caches = [[{}, {}] for _ in model.decoder] if a.cache else None
            for t in range(a.new_tokens):
                if a.cache:
                    logits = model.decode(out[:, -1:], memory, mask, caches, offset=t)
                else:
                    logits = model.decode(out, memory, mask)
                out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], 1)
        return out

    run()  # warm-up
    runs = []
    for _ in range(3):  # median of three timed runs (as heed_bench)
        start = time.perf_counter()
        run()
        runs.append(time.perf_counter() - start)
    seconds = sorted(runs)[1]
    tokens = a.new_tokens * src.size(0)
    return {"batch": src.size(0), "new_tokens": a.new_tokens, "seconds": seconds, "tokens_per_second": tokens / seconds}


def gemm_peak(a):
    """The best matrix-product rate this process reaches at the given precision: square products of a
    few sizes, each timed over repeats after a warm-up; the highest GFLOP/s is the peak the training
    rows are measured against (model FLOPs utilisation). In float32 both libraries libtorch carries are
    measured - torch.mm (the system BLAS) and oneDNN (torch's mkldnn linear, the library heed's float32
    products call) - and the faster counts: where OpenBLAS is pinned to narrower kernels than the CPU
    has, oneDNN's product is the machine's real float32 limit. In bf16 torch.mm already runs oneDNN."""
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
    products = {"torch.mm": lambda x, y: torch.mm(x, y)}
    if a.precision == "fp32" and torch.backends.mkldnn.is_available():
        products["onednn"] = lambda x, y: torch._C._nn.mkldnn_linear(x, y, None)
    best, rates = 0.0, {}
    for library, product in products.items():
        for n in (512, 1024, 2048, 3072):
            x, y = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
            if library == "onednn":
                x, y = x.to_mkldnn(), y.to_mkldnn()
            product(x, y)
            reps = max(3, int(2e10 / (2 * n ** 3)))
            start = time.perf_counter()
            for _ in range(reps):
                product(x, y)
            rate = 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9
            rates[f"{library} {n}"] = round(rate, 1)
            best = max(best, rate)
    return {"precision": a.precision, "gflops": best, "gflops_by_size": rates}


def tokenize(a):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.work, "spm.model"))
    texts = load(a.work, "texts.json")["texts"]
    size = sum(len(t.encode("utf-8")) for t in texts)
    start = time.perf_counter()
    sp.encode(texts, num_threads=a.threads)
    seconds = time.perf_counter() - start
    return {"bytes": size, "seconds": seconds, "mb_per_second": size / seconds / 1e6}


def save_classifier(a):
    """Random weights at the benchmark's shape, saved for the classify case."""
    data = load(a.work, "classifier.json")
    torch.manual_seed(1)
    model = Classifier(data["vocab_size"], max_positions=data["max_length"])
    torch.save(model.state_dict(), os.path.join(a.work, "reference_classifier.pt"))
    return {"saved": "reference_classifier.pt"}


def classify(a):
    """What `heed classify` does for one review, as a Python script: load, tokenize, predict."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.work, "spm.model"))
    data = load(a.work, "classifier.json")
    model = Classifier(data["vocab_size"], max_positions=data["max_length"])
    model.load_state_dict(torch.load(os.path.join(a.work, "reference_classifier.pt")))
    model.eval()
    ids = sp.encode(a.text)[:data["max_length"]] or [sp.unk_id()]
    with torch.inference_mode():
        probs = torch.softmax(model(torch.tensor([ids]), torch.tensor([len(ids)])), -1)[0]
    return {"label": ["neg", "pos"][int(probs.argmax())], "probabilities": probs.tolist()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("task", choices=["train-classifier", "infer-classifier", "train-seq2seq", "generate", "tokenize",
                                    "save-classifier", "classify", "gemm-peak"])
    p.add_argument("work")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--cache", type=int, default=1)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--text", default="")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--quantize", choices=["none", "bf16", "int8"], default="none",
                   help="generate, infer-classifier (none or int8 there): weight storage")
    p.add_argument("--data", help="batches file in WORK (training cases; default classifier.json / seq2seq.json)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    fn = {"train-classifier": train_classifier, "infer-classifier": infer_classifier, "train-seq2seq": train_seq2seq,
          "generate": generate, "tokenize": tokenize, "save-classifier": save_classifier, "classify": classify,
          "gemm-peak": gemm_peak}[a.task]
    json.dump(fn(a), sys.stdout)
    print()


if __name__ == "__main__":
    main()
