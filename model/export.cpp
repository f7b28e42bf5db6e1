// The TorchScript twin of model/*.cpp (see export.h). Change a module and its twin together:
// docs/EXPORT.md, "The TorchScript twin", then build/heed_tests --gtest_filter='ExportTwin.*'.
#include "model/export.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <ATen/native/quantized/PackedParams.h>
#include <fmt/format.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>

#include "data_pipeline/base/errors.h"
#include "model/quantize.h"
#include "model/tensor_checksum.h"

namespace heed::model {
namespace {

// ---------------------------------------------------------------------------------------------
// TorchScript twins. Every op below is the op the C++ module runs, with the same arguments, so the
// exported model computes the same numbers (eval mode: dropout is the identity). Parameters are
// reached through the generated accessors (_encoder_weights() etc., see accessors_source), which
// list each layer's tensors in the orders kEncoderLayer / kDecoderLayer give.
// Only `torch.<aten op>` and `quantized.<op>` resolve here (ExportResolver): no torch.nn.functional, no math,
// no dtype constants, no Exception (errors are asserts).
// ---------------------------------------------------------------------------------------------

// attention.cpp, layers.cpp: attention, feed-forward, layer norm, embeddings, encoder.
constexpr const char* kLayersSource = R"JIT(
def _split_heads(self, x: Tensor, heads: int) -> Tensor:
    # [B, T, D] -> [B, H, T, Dh]
    return x.view([x.size(0), x.size(1), heads, x.size(2) // heads]).transpose(1, 2)

def _linear(self, x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    # x W^T + b for a stored weight (docs/EXPORT.md, "Quantized archives"): float32 [out, in]; bfloat16
    # [out, in] (--quantize bf16: the product in bfloat16, float32 out, the bias added in float32); or
    # an int8 handle, a 1-d int64 tensor whose first element indexes self._int8_packs (--quantize int8:
    # per-channel int8 weights prepacked with their bias, so `b` is already in; the input quantized
    # per call to 8 bits, quantized::linear_dynamic without reduce_range: docs/EXPORT.md)
    if w.dim() == 1:
        return quantized.linear_dynamic(x, self._int8_packs[int(w[0])], False)
    if w.dtype != x.dtype:
        y = torch.linear(x.type_as(w), w).type_as(x)
        if b is not None:
            y = y + b
        return y
    if b is not None:
        return torch.linear(x, w, b)
    return torch.matmul(x, w.t())

def _project(self, x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    # linear.cpp project(): x W^T + b; float32 weights over up to 4 rows as one matrix-vector product per row
    rows = x.numel() // x.size(-1)
    if rows >= 1 and rows <= 4 and w.dim() == 2 and w.dtype == x.dtype:
        flat = x.reshape([rows, x.size(-1)])
        ys: List[Tensor] = []
        for r in range(rows):
            if b is not None:
                ys.append(torch.addmv(b, w, flat[r]))
            else:
                ys.append(torch.mv(w, flat[r]))
        shape = x.size()
        shape[-1] = w.size(0)
        return torch.stack(ys).view(shape)
    return self._linear(x, w, b)

def _attend(self, q: Tensor, k: Tensor, v: Tensor, forbidden: Optional[Tensor], scale: float,
            out_w: Tensor, out_b: Tensor) -> Tuple[Tensor, Tensor]:
    # q [B, H, Tq, Dh], k/v [B, H, Tk, Dh]; forbidden bool broadcastable to [B, H, Tq, Tk]
    scores = torch.matmul(q * scale, k.transpose(-2, -1))  # [B, H, Tq, Tk]
    if forbidden is not None:
        scores = scores.masked_fill(forbidden, -1e9)
    weights = torch.softmax(scores, -1)
    out = torch.matmul(weights, v)  # [B, H, Tq, Dh]
    out = out.transpose(1, 2).reshape([q.size(0), q.size(2), q.size(1) * q.size(3)])  # [B, Tq, D]
    return self._project(out, out_w, out_b), weights

def _self_attention(self, x: Tensor, w: List[Tensor], i: int, forbidden: Optional[Tensor],
                    past_k: Optional[Tensor], past_v: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    # w[i:i+4] = in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias. x [B, T, D].
    # Returns the output [B, T, D], the keys/values [B, H, T_past + T, Dh] (the new cache) and the
    # attention probabilities [B, H, T, T_past + T].
    qkv = self._project(x, w[i], w[i + 1]).chunk(3, -1)  # 3 x [B, T, D]
    q = self._split_heads(qkv[0], self.heads)
    k = self._split_heads(qkv[1], self.heads)
    v = self._split_heads(qkv[2], self.heads)
    if past_k is not None and past_v is not None:
        k = torch.cat([past_k, k], 2)
        v = torch.cat([past_v, v], 2)
    out, weights = self._attend(q, k, v, forbidden, self.attention_scale, w[i + 2], w[i + 3])
    return out, k, v, weights

def _cross_kv(self, memory: Tensor, in_w: Tensor, in_b: Tensor, heads: int) -> List[Tensor]:
    # The key/value rows of the packed projection over the other sequence: [B, S, D] -> 2 x [B, H, S, Dh]
    if in_w.dim() == 1:  # an int8 handle [q, kv] (_linear)
        kv = self._linear(memory, in_w[1:2], None).chunk(2, -1)
    else:
        d = memory.size(2)
        w = in_w.split(d, 0)
        b = in_b.split(d, 0)
        kv = self._linear(memory, torch.cat([w[1], w[2]], 0), torch.cat([b[1], b[2]], 0)).chunk(2, -1)
    return [self._split_heads(kv[0], heads), self._split_heads(kv[1], heads)]

def _cross_attention(self, x: Tensor, in_w: Tensor, in_b: Tensor, out_w: Tensor, out_b: Tensor, heads: int,
                     scale: float, kv: List[Tensor], forbidden: Tensor) -> Tuple[Tensor, Tensor]:
    # x [B, T, D] queries over cached keys/values kv (from _cross_kv) -> ([B, T, D], weights [B, H, T, S])
    if in_w.dim() == 1:  # an int8 handle [q, kv] (_linear)
        q = self._split_heads(self._project(x, in_w[0:1], None), heads)
    else:
        w = in_w.split(x.size(2), 0)
        b = in_b.split(x.size(2), 0)
        q = self._split_heads(self._project(x, w[0], b[0]), heads)
    return self._attend(q, kv[0], kv[1], forbidden, scale, out_w, out_b)

def _feed_forward(self, x: Tensor, w: List[Tensor], i: int) -> Tensor:
    # w[i:i+4] = fc1 weight, bias, fc2 weight, bias; [B, T, D] -> [B, T, D]
    h = self._project(x, w[i], w[i + 1])
    if self.gelu:
        h = torch.gelu(h)
    else:
        h = torch.relu(h)
    return self._project(h, w[i + 2], w[i + 3])

def _norm(self, x: Tensor, w: List[Tensor], i: int) -> Tensor:
    return torch.layer_norm(x, [self.d_model], w[i], w[i + 1], 1e-5)

def _embed(self, ids: Tensor, offset: int) -> Tensor:
    # ids [B, T] int64 -> [B, T, D]; offset = position of ids[:, 0]
    length = ids.size(1)
    assert offset + length <= self.max_positions, ("sequence of " + str(offset + length) +
                                                   " tokens exceeds model.max_positions (" +
                                                   str(self.max_positions) + ")")
    x = torch.embedding(self.embeddings__tokens__weight, ids)
    if self.embedding_scale != 1.0:
        x = x * self.embedding_scale
    return x + self._position_table()[offset:offset + length].unsqueeze(0)

def _padding_mask(self, lengths: Tensor, max_len: int) -> Tensor:
    # lengths [B] -> [B, max_len] bool, true at padded positions
    return torch.arange(max_len).unsqueeze(0) >= lengths.long().unsqueeze(1)

def _encoder_layer(self, x: Tensor, forbidden: Tensor, w: List[Tensor]) -> Tuple[Tensor, Tensor]:
    # w: self-attention [0:4], norm1 [4:6], norm2 [6:8], feed-forward [8:12]
    # -> (output [B, T, D], self-attention probabilities [B, H, T, T])
    if self.pre_norm:
        h = self._norm(x, w, 4)
        a, _, _, weights = self._self_attention(h, w, 0, forbidden, None, None)
        y = x + a
        return y + self._feed_forward(self._norm(y, w, 6), w, 8), weights
    a, _, _, weights = self._self_attention(x, w, 0, forbidden, None, None)
    y = self._norm(x + a, w, 4)
    return self._norm(y + self._feed_forward(y, w, 8), w, 6), weights

def _encode_attending(self, ids: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor, List[Tensor]]:
    # ids [B, S], lengths [B] -> (memory [B, S, D], padding [B, S] bool, per layer [B, H, S, S])
    padding = self._padding_mask(lengths, ids.size(1))
    forbidden = padding.view([ids.size(0), 1, 1, ids.size(1)])  # [B, 1, 1, S]
    h = self._embed(ids, 0)
    attention: List[Tensor] = []
    for w in self._encoder_weights():
        h, weights = self._encoder_layer(h, forbidden, w)
        attention.append(weights)
    final = self._encoder_final_norm()
    if len(final) == 2:
        h = self._norm(h, final, 0)
    return h, padding, attention

def _encode(self, ids: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
    # ids [B, S], lengths [B] -> (memory [B, S, D], padding [B, S] bool)
    h, padding, _ = self._encode_attending(ids, lengths)
    return h, padding
)JIT";

// classifier.cpp: pooling and head.
constexpr const char* kClassifierSource = R"JIT(
def _pool(self, h: Tensor, padding: Tensor, lengths: Tensor) -> Tensor:
    # h [B, T, D], padding [B, T] -> [B, D]
    if self.pooling == "first":
        return h.select(1, 0)
    if self.pooling == "attention":
        w = self._attention_pool_weights()
        scores = torch.linear(h, w[0], w[1]).squeeze(-1).masked_fill(padding, -1e9)  # [B, T]
        weights = torch.softmax(scores, -1).unsqueeze(-1)  # [B, T, 1]
        return (h * weights).sum(1)
    keep = padding.logical_not().unsqueeze(-1).to(h.dtype)  # [B, T, 1]
    count = lengths.to(h.dtype).clamp_min(1.0).unsqueeze(-1)  # [B, 1]
    return (h * keep).sum(1) / count

def _with_ngrams(self, ids: Tensor, lengths: Tensor, logits: Tensor) -> Tensor:
    # classifier.cpp, ngrams.cpp: mix[0] x logits + mix[1] x the n-gram head's logits, when the model has one
    w = self._ngram_weights()
    if len(w) == 0:
        return logits
    T = ids.size(1)
    V = self.ngram_vocab
    p = 2147483647
    parts: List[Tensor] = []
    offset = 0
    power = 1
    for n in range(1, self.ngram_order + 1):
        if n > T:
            break
        count = T - n + 1
        key = ids.narrow(1, 0, count)
        for k in range(1, n):
            key = key * V + ids.narrow(1, k, count)
        bucket = ((key + offset) % p) * 48271 % p % self.ngram_buckets
        valid = torch.arange(count, device=ids.device).unsqueeze(0) < (lengths.long().unsqueeze(1) - (n - 1))
        parts.append(bucket.masked_fill(valid.logical_not(), -1))
        power = power * V
        offset = offset + power
    if len(parts) == 0:
        return w[2][0] * logits.float() + w[2][1] * w[1]
    buckets, _ = torch.sort(torch.cat(parts, 1), 1)  # [B, K]
    K = buckets.size(1)
    if K > 1:
        repeat = buckets.narrow(1, 1, K - 1) == buckets.narrow(1, 0, K - 1)
        buckets = torch.cat([buckets.narrow(1, 0, 1), buckets.narrow(1, 1, K - 1).masked_fill(repeat, -1)], 1)
    present = (buckets >= 0).unsqueeze(-1).to(w[0].dtype)
    rows = w[0].index_select(0, buckets.clamp_min(0).flatten()).view([buckets.size(0), K, w[0].size(1)])
    return w[2][0] * logits.float() + w[2][1] * ((rows * present).sum(1) + w[1])

def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
    # ids [B, T] int64 (padded), lengths [B] int64 -> logits [B, C]
    ids = ids.long()
    h, padding = self._encode(ids, lengths)
    logits = torch.linear(self._pool(h, padding, lengths), self.head__weight, self.head__bias)
    return self._with_ngrams(ids, lengths, logits)

def predict(self, ids: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
    # -> (labels [B] int64, probabilities [B, C])
    probs = torch.softmax(self.forward(ids, lengths), -1)
    return probs.argmax(1), probs

def attention(self, ids: Tensor, lengths: Tensor) -> Tuple[Tensor, List[Tensor]]:
    # ClassifierImpl::forward with its attention: -> (probabilities [B, C], per encoder layer the
    # self-attention probabilities [B, H, T, T])
    ids = ids.long()
    h, padding, attention = self._encode_attending(ids, lengths)
    logits = torch.linear(self._pool(h, padding, lengths), self.head__weight, self.head__bias)
    return torch.softmax(self._with_ngrams(ids, lengths, logits), -1), attention
)JIT";

// seq2seq.cpp: encode, and one decoding step over an explicit cache (Seq2Seq::decode with a state).
constexpr const char* kSeq2SeqSource = R"JIT(
def encode(self, ids: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
    # ids [B, S] int64, lengths [B] -> (memory [B, S, D], padding [B, S] bool)
    return self._encode(ids.long(), lengths)

def _previous_tokens(self, ids: Tensor) -> Tensor:
    # Seq2Seq::encode's copy keys are memory + this: [B, S] -> [B, S, D], the sqrt(d)-scaled embedding
    # of each source token's predecessor (zeros at position 0)
    embedded = torch.embedding(self.embeddings__tokens__weight, ids) * self.copy_key_scale
    return torch.cat([torch.zeros_like(embedded[:, 0:1]), embedded[:, 0:ids.size(1) - 1]], 1)

def empty_cache(self) -> Tuple[List[Tensor], List[Tensor], List[Tensor], int]:
    self_kv: List[Tensor] = []
    cross_kv: List[Tensor] = []
    copy_kv: List[Tensor] = []
    return self_kv, cross_kv, copy_kv, 0

def _decoder_layer(self, x: Tensor, w: List[Tensor], causal: Optional[Tensor], memory_forbidden: Tensor,
                   past_k: Optional[Tensor], past_v: Optional[Tensor],
                   cross_kv: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    # w: self-attention [0:4], cross-attention [4:8], norm1-3 [8:14], feed-forward [14:18].
    # x [N, T, D]; causal [T, T] bool (None for one new position, which may see every key).
    # -> (output [N, T, D], self-attention keys, values, cross-attention probabilities [N, H, T, S])
    if self.pre_norm:
        a, k, v, _ = self._self_attention(self._norm(x, w, 8), w, 0, causal, past_k, past_v)
        y = x + a
        c, cross = self._cross_attention(self._norm(y, w, 10), w[4], w[5], w[6], w[7], self.heads,
                                         self.attention_scale, cross_kv, memory_forbidden)
        y = y + c
        return y + self._feed_forward(self._norm(y, w, 12), w, 14), k, v, cross
    a, k, v, _ = self._self_attention(x, w, 0, causal, past_k, past_v)
    y = self._norm(x + a, w, 8)
    c, cross = self._cross_attention(y, w[4], w[5], w[6], w[7], self.heads, self.attention_scale, cross_kv,
                                     memory_forbidden)
    y = self._norm(y + c, w, 10)
    return self._norm(y + self._feed_forward(y, w, 14), w, 12), k, v, cross

def _reweight(self, attention: Tensor, z: Tensor) -> Tensor:
    # seq2seq.cpp reweight: attention * exp(z) renormalised over the source, z shifted by its row maximum
    z = z.expand_as(attention)
    z = z - torch.max(z, -1, True)[0]
    a = attention * z.exp()
    return a / a.sum(-1, True).clamp_min(1e-30)

def _span_runs(self, runs: Optional[Tensor], tokens: Tensor, source_ids: Tensor) -> Tensor:
    # seq2seq.cpp copy_span_runs: [N, S], how long a span ending just before each source position
    # the rows have copied, after `tokens` [N]
    n = source_ids.size(1)
    continues = torch.zeros_like(source_ids).float()
    before = torch.zeros_like(continues)
    if n > 1:
        continues[:, 1:] = source_ids[:, :n - 1].eq(tokens.long().view([-1, 1])).float()
        if runs is not None:
            before[:, 1:] = runs[:, :n - 1]
    return continues * (before + 1.0)

def _copy_mix(self, h: Tensor, x: Tensor, logits: Tensor, source_ids: Tensor, copy_kv: List[Tensor],
              forbidden: Tensor, past_coverage: Optional[Tensor],
              log_bias: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    # Copy attention: one head over the source; a gate mixes it with the generator (seq2seq.cpp).
    # h, x [N, T, D], logits [N, T, V], past_coverage [N, S] or None, log_bias (the copy span bonus)
    # [N, 1, S] or None -> (log-probabilities [N, T, V], copy probability [N, T], copy distribution
    # over the source [N, T, S], the coverage after these positions [N, S] (coverage models; None
    # otherwise))
    cw = self._copy_weights()
    out, weights = self._cross_attention(h, cw[0], cw[1], cw[2], cw[3], 1, self.copy_scale, copy_kv[0:2], forbidden)
    attention = weights.squeeze(1)  # [N, T, S]
    coverage_after: Optional[Tensor] = None
    cov = self._coverage_weight()
    if len(cov) == 1:
        # seq2seq.cpp: a0 * exp(w c) / sum, c = the attention of earlier positions before reweighting
        coverage = attention.cumsum(1) - attention
        consumed = attention.sum(1)
        if past_coverage is not None:
            coverage = coverage + past_coverage.unsqueeze(1)
            coverage_after = past_coverage + consumed
        else:
            coverage_after = consumed
        attention = self._reweight(attention, coverage * cov[0])
    if log_bias is not None:
        attention = self._reweight(attention, log_bias)
    p_generate = torch.sigmoid(torch.linear(torch.cat([h, out, x], -1), cw[4], cw[5]))  # [N, T, 1]
    probs = torch.softmax(logits, -1) * p_generate  # [N, T, V]
    source = source_ids.unsqueeze(1).expand([source_ids.size(0), h.size(1), source_ids.size(1)])  # [N, T, S]
    probs = probs.scatter_add(2, source, attention * (1.0 - p_generate))
    return probs.clamp_min(1e-10).log(), (1.0 - p_generate).squeeze(-1), attention, coverage_after

def decode_step(self, tokens: Tensor, memory: Tensor, padding: Tensor, source_ids: Tensor,
                cache: Tuple[List[Tensor], List[Tensor], List[Tensor], int]
                ) -> Tuple[Tensor, Tuple[List[Tensor], List[Tensor], List[Tensor], int]]:
    # tokens [N] (the latest token of each row; BOS first), memory [N, S, D], padding [N, S],
    # source_ids [N, S] -> (log-probabilities of the next token [N, V], the cache one position on)
    self_kv, cross_kv, copy_kv, position = cache
    first = len(cross_kv) == 0
    x = self._embed(tokens.long().view([-1, 1]), position)  # [N, 1, D]
    forbidden = padding.view([padding.size(0), 1, 1, padding.size(1)])  # [N, 1, 1, S]
    new_self: List[Tensor] = []
    new_cross: List[Tensor] = []
    h = x
    i = 0
    for w in self._decoder_weights():
        past_k: Optional[Tensor] = None
        past_v: Optional[Tensor] = None
        if len(self_kv) > 0:
            past_k = self_kv[2 * i]
            past_v = self_kv[2 * i + 1]
        if first:
            kv = self._cross_kv(memory, w[4], w[5], self.heads)
        else:
            kv = [cross_kv[2 * i], cross_kv[2 * i + 1]]
        h, k, v, _ = self._decoder_layer(h, w, None, forbidden, past_k, past_v, kv)
        new_self += [k, v]
        new_cross += kv
        i += 1
    final = self._decoder_final_norm()
    if len(final) == 2:
        h = self._norm(h, final, 0)
    # The output projection is the embedding table transposed (_output_weight: the table itself, or its
    # quantized copy): [N, 1, D] x [D, V] -> [N, 1, V]
    logits = self._project(h, self._output_weight(), None) + self.output_bias
    cw = self._copy_weights()
    if len(cw) == 0:
        return torch.log_softmax(logits, -1).select(1, 0), (new_self, new_cross, copy_kv, position + 1)
    # copy_kv: the copy attention's keys and values, then the coverage (coverage models) and the copy
    # span runs (copy_span_bonus > 0) after the first step
    past_coverage: Optional[Tensor] = None
    past_runs: Optional[Tensor] = None
    spans = self.copy_span_bonus > 0.0
    if first:
        copy_kv = self._cross_kv(memory + self._previous_tokens(source_ids), cw[0], cw[1], 1)
    else:
        if len(self._coverage_weight()) == 1:
            past_coverage = copy_kv[2]
        if spans:
            past_runs = copy_kv[len(copy_kv) - 1]
    runs: Optional[Tensor] = None
    log_bias: Optional[Tensor] = None
    if spans:
        runs = self._span_runs(past_runs, tokens, source_ids)
        log_bias = (runs.clamp_max(float(self.copy_span_limit)) * self.copy_span_bonus).unsqueeze(1)
    log_probs, _, _, coverage = self._copy_mix(h, x, logits, source_ids, copy_kv, forbidden, past_coverage, log_bias)
    new_copy = [copy_kv[0], copy_kv[1]]
    if coverage is not None:
        new_copy.append(coverage)
    if runs is not None:
        new_copy.append(runs)
    return log_probs.select(1, 0), (new_self, new_cross, new_copy, position + 1)

def attention(self, ids: Tensor, lengths: Tensor,
              target_in: Tensor) -> Tuple[List[Tensor], List[Tensor], Tensor, Optional[Tensor]]:
    # Seq2SeqImpl::encode and ::decode (teacher forcing, no cache) with their attention:
    # ids [B, S], lengths [B], target_in [B, T] (BOS, then the summary shifted right) ->
    # (encoder self-attention per layer [B, H, S, S], cross-attention per decoder layer [B, H, T, S],
    #  copy probability [B, T]: the copy gate's 1 - p(generate), zeros without copy attention,
    #  copy distribution over the source [B, T, S], None without copy attention)
    ids = ids.long()
    memory, padding, encoder_attention = self._encode_attending(ids, lengths)
    target_in = target_in.long()
    length = target_in.size(1)
    x = self._embed(target_in, 0)  # [B, T, D]
    forbidden = padding.view([padding.size(0), 1, 1, padding.size(1)])  # [B, 1, 1, S]
    positions = torch.arange(length)
    causal = positions.unsqueeze(0) > positions.unsqueeze(1)  # [T, T], masks.cpp causal_mask
    cross: List[Tensor] = []
    h = x
    for w in self._decoder_weights():
        kv = self._cross_kv(memory, w[4], w[5], self.heads)
        h, _, _, weights = self._decoder_layer(h, w, causal, forbidden, None, None, kv)
        cross.append(weights)
    final = self._decoder_final_norm()
    if len(final) == 2:
        h = self._norm(h, final, 0)
    cw = self._copy_weights()
    if len(cw) == 0:
        return encoder_attention, cross, torch.zeros([target_in.size(0), length]), None
    logits = self._project(h, self._output_weight(), None) + self.output_bias
    copy_kv = self._cross_kv(memory + self._previous_tokens(ids), cw[0], cw[1], 1)
    _, copy_probability, copy_attention, _ = self._copy_mix(h, x, logits, ids, copy_kv, forbidden, None, None)
    return encoder_attention, cross, copy_probability, copy_attention
)JIT";

// decoding.cpp: greedy and beam search over decode_step, the same bookkeeping in the same order.
// extractive.cpp: sentence vectors, inter-sentence layers, scores; select_sentences.
constexpr const char* kExtractiveSource = R"JIT(
def forward(self, ids: Tensor, lengths: Tensor, features: Tensor) -> Tensor:
    # ids [S, T], lengths [S], features [S, F]: the sentences of ONE article, in order -> probabilities [S]
    S = ids.size(0)
    if S == 0:
        return torch.zeros([0])
    assert S <= self.max_sentences, ("an article of " + str(S) + " sentences exceeds extractive.max_sentences (" +
                                     str(self.max_sentences) + ")")
    h, padding = self._encode(ids, lengths)  # [S, T, D]
    keep = padding.logical_not().unsqueeze(-1).type_as(h)
    pooled = (h * keep).sum(1) / lengths.type_as(h).clamp_min(1.0).unsqueeze(-1)  # [S, D]
    x = (pooled + torch.embedding(self.sentence_positions__weight, torch.arange(S)) +
         torch.embedding(self.sentence_lengths__weight, lengths.long().clamp_max(self.max_positions)) +
         torch.linear(features.type_as(pooled), self.feature_projection__weight, self.feature_projection__bias)).unsqueeze(0)
    forbidden = (torch.arange(S) >= S).view([1, 1, 1, S])  # one article: nothing padded
    for w in self._sentence_weights():
        x, _ = self._encoder_layer(x, forbidden, w)
    final = self._sentence_final_norm()
    if len(final) == 2:
        x = self._norm(x, final, 0)
    logits = torch.linear(x, self.scorer__weight, self.scorer__bias).squeeze(-1).squeeze(0)  # [S]
    return torch.sigmoid(logits)

def _ngrams(self, row: List[int], length: int) -> List[str]:
    n = self.block_ngrams
    grams: List[str] = []
    if n > 0 and length >= n:
        for j in range(length - n + 1):
            key = ""
            for t in range(n):
                key = key + str(row[j + t]) + ","
            grams.append(key)
    return grams

def summarize(self, ids: Tensor, lengths: Tensor, features: Tensor) -> Tuple[Tensor, Tensor]:
    # -> (probabilities [S], selected [S] bool): model::select_sentences with the run's options
    # and the calibrated threshold (the selection_threshold buffer)
    p = self.forward(ids, lengths, features)
    S = p.size(0)
    probs: List[float] = p.tolist()
    order: List[int] = torch.sort(p, stable=True, dim=0, descending=True)[1].tolist()
    sizes: List[int] = lengths.tolist()
    threshold = float(self.selection_threshold[0].item())
    ratio = float(self.selection_ratio[0].item())
    cap = self.max_selected
    if ratio > 0.0:
        cap = int(ratio * float(S) + 0.5)
        if cap < self.min_sentences:
            cap = self.min_sentences
        if self.max_selected > 0 and cap > self.max_selected:
            cap = self.max_selected
    chosen: List[bool] = []
    for i in range(S):
        chosen.append(False)
    seen: Dict[str, bool] = {}
    k = 0
    for i in order:
        if (self.max_selected > 0 or ratio > 0.0) and k >= cap:
            break
        if ratio <= 0.0 and k >= self.min_sentences and probs[i] < threshold:
            break
        row: List[int] = ids[i].tolist()
        grams = self._ngrams(row, sizes[i])
        blocked = False
        for g in grams:
            if g in seen:
                blocked = True
        if blocked:
            continue
        for g in grams:
            seen[g] = True
        chosen[i] = True
        k += 1
    return p, torch.tensor(chosen)
)JIT";

constexpr const char* kSearchSource = R"JIT(
def _reorder(self, index: Tensor, memory: Tensor, padding: Tensor, source_ids: Tensor,
             cache: Tuple[List[Tensor], List[Tensor], List[Tensor], int]
             ) -> Tuple[Tensor, Tensor, Tensor, Tuple[List[Tensor], List[Tensor], List[Tensor], int]]:
    # Keeps rows `index` [M] of the encoder output and of every cache (DecoderState::reorder)
    self_kv, cross_kv, copy_kv, position = cache
    self_kv = [t.index_select(0, index) for t in self_kv]
    cross_kv = [t.index_select(0, index) for t in cross_kv]
    copy_kv = [t.index_select(0, index) for t in copy_kv]
    return (memory.index_select(0, index), padding.index_select(0, index), source_ids.index_select(0, index),
            (self_kv, cross_kv, copy_kv, position))

def _banned_ngrams(self, history: List[List[int]], n: int) -> Tuple[List[int], List[int]]:
    # (row, token) pairs that would complete an n-gram already in the row's generated tokens
    rows: List[int] = []
    tokens: List[int] = []
    for r in range(len(history)):
        h = history[r]
        length = len(h)
        if length + 1 < n:
            continue
        start = length - (n - 1)
        for i in range(length - n + 1):
            same = True
            for j in range(n - 1):
                if h[i + j] != h[start + j]:
                    same = False
                    break
            if same:
                rows.append(r)
                tokens.append(h[i + n - 1])
    return rows, tokens

def _process(self, log_probs: Tensor, generated: int, history: List[List[int]], min_length: int,
             no_repeat_ngram_size: int) -> Tensor:
    # never_generate, min_length and no_repeat_ngram_size, out of place: forbidden entries become -inf
    if len(self.never_generate) > 0:
        log_probs = log_probs.index_fill(1, torch.tensor(self.never_generate), float("-inf"))
    if generated < min_length:
        log_probs = log_probs.index_fill(1, torch.tensor([self.eos_id]), float("-inf"))
    if no_repeat_ngram_size > 0:
        rows, tokens = self._banned_ngrams(history, no_repeat_ngram_size)
        if len(rows) > 0:
            index: List[Optional[Tensor]] = [torch.tensor(rows), torch.tensor(tokens)]
            log_probs = log_probs.index_put(index, torch.tensor(float("-inf")).to(log_probs.dtype))
    return log_probs

def _score_column(self, scores: List[float], like: Tensor) -> Tensor:
    # running scores -> [rows, 1] in the log-probabilities' dtype (exact: they came from it)
    return torch.tensor(scores, dtype=like.dtype).unsqueeze(1)

def _normalised(self, log_prob: float, length: int, length_penalty: float) -> float:
    return log_prob / (float(length) ** length_penalty)

def _worst(self, scores: List[float]) -> int:
    worst = 0
    for i in range(1, len(scores)):
        if scores[i] < scores[worst]:
            worst = i
    return worst

def _add_finished(self, scores: List[float], hypotheses: List[List[int]], tokens: List[int], log_prob: float,
                  length: int, length_penalty: float, capacity: int):
    # One input's K best finished hypotheses (decoding.cpp FinishedHypotheses::add)
    if log_prob == float("-inf"):
        return
    score = self._normalised(log_prob, length, length_penalty)
    if len(scores) >= capacity and not score > scores[self._worst(scores)]:
        return
    scores.append(score)
    hypotheses.append(tokens)
    if len(scores) > capacity:
        worst = self._worst(scores)
        scores.pop(worst)
        hypotheses.pop(worst)

def _greedy(self, memory: Tensor, padding: Tensor, source_ids: Tensor, max_length: int, min_length: int,
            length_penalty: float, no_repeat_ngram_size: int) -> Tuple[List[List[int]], List[float], List[bool]]:
    # model::greedy_search: per row the argmax of running log-prob + log-probs; finished rows are dropped
    batch = memory.size(0)
    out_tokens: List[List[int]] = []
    out_scores: List[float] = []
    found: List[bool] = []
    inputs: List[int] = []
    history: List[List[int]] = []
    last: List[int] = []
    log_prob: List[float] = []
    for b in range(batch):
        none: List[int] = []
        out_tokens.append(none)
        out_scores.append(0.0)
        found.append(False)
        inputs.append(b)
        row: List[int] = []
        history.append(row)
        last.append(self.bos_id)
        log_prob.append(0.0)
    cache = self.empty_cache()
    t = 1
    while t <= max_length and len(inputs) > 0:
        log_probs, cache = self.decode_step(torch.tensor(last), memory, padding, source_ids, cache)
        log_probs = self._process(log_probs, t - 1, history, min_length, no_repeat_ngram_size)
        best = (log_probs + self._score_column(log_prob, log_probs)).max(1)
        values: List[float] = best[0].double().tolist()
        chosen: List[int] = best[1].tolist()
        keep: List[int] = []
        for r in range(len(inputs)):
            total = values[r]
            if total != total:
                total = float("-inf")
            token = chosen[r]
            if total == float("-inf"):
                continue
            if token == self.eos_id:
                out_tokens[inputs[r]] = history[r]
                out_scores[inputs[r]] = self._normalised(total, t, length_penalty)
                found[inputs[r]] = True
                continue
            history[r].append(token)
            log_prob[r] = total
            last[r] = token
            if t == max_length:
                out_tokens[inputs[r]] = history[r]
                out_scores[inputs[r]] = self._normalised(total, t, length_penalty)
                found[inputs[r]] = True
                continue
            keep.append(r)
        if len(keep) == 0:
            inputs = []
        elif len(keep) != len(inputs):
            inputs = [inputs[r] for r in keep]
            history = [history[r] for r in keep]
            last = [last[r] for r in keep]
            log_prob = [log_prob[r] for r in keep]
            memory, padding, source_ids, cache = self._reorder(torch.tensor(keep), memory, padding, source_ids, cache)
        t += 1
    return out_tokens, out_scores, found

def _top_candidates(self, totals: Tensor, n: int) -> Tuple[List[List[float]], List[List[int]]]:
    # Each row's n best (NaN counts as -inf), of equal values the lowest indices, as decoding.cpp's
    # top_candidates picks them (topk alone may return any of more than n tied values)
    totals = torch.where(torch.isnan(totals), torch.full_like(totals, float("-inf")), totals)
    cut = totals.topk(n, 1)[0][:, n - 1:n]  # [A, 1]: the n-th best value
    above = totals > cut
    equal = totals == cut
    take = above | (equal & (equal.cumsum(1) <= n - above.sum(1, keepdim=True)))  # n per row
    index = take.nonzero()[:, 1].view([totals.size(0), n])  # ascending within each row
    values: List[List[float]] = totals.gather(1, index).double().tolist()
    indices: List[List[int]] = index.tolist()
    return values, indices

def _sorted_candidates(self, scores: List[float], flat: List[int]) -> List[int]:
    # Candidate order: higher score first, then lower beam * V + token (insertion sort; 2K entries)
    order: List[int] = []
    for c in range(len(scores)):
        s = scores[c]
        if s != s:
            s = float("-inf")
            scores[c] = s
        pos = len(order)
        while pos > 0 and (scores[order[pos - 1]] < s or (scores[order[pos - 1]] == s and flat[order[pos - 1]] > flat[c])):
            pos -= 1
        order.insert(pos, c)
    return order

def _beam(self, memory: Tensor, padding: Tensor, source_ids: Tensor, K: int, max_length: int, min_length: int,
          length_penalty: float, no_repeat_ngram_size: int,
          early_stopping: bool) -> Tuple[List[List[int]], List[float], List[bool]]:
    # model::beam_search (Hugging Face's BeamSearchScorer): input a of `active` owns rows [a*K, (a+1)*K)
    batch = memory.size(0)
    finished_scores: List[List[float]] = []
    finished: List[List[List[int]]] = []
    active: List[int] = []
    for b in range(batch):
        s: List[float] = []
        h: List[List[int]] = []
        finished_scores.append(s)
        finished.append(h)
        active.append(b)
    history: List[List[int]] = []
    last: List[int] = []
    scores: List[float] = []
    for r in range(batch * K):
        row: List[int] = []
        history.append(row)
        last.append(self.bos_id)
        if r % K == 0:
            scores.append(0.0)
        else:
            scores.append(float("-inf"))  # only beam 0 is live at the first step
    cache = self.empty_cache()
    if K > 1:
        memory, padding, source_ids, cache = self._reorder(torch.arange(batch).repeat_interleave(K), memory,
                                                           padding, source_ids, cache)
    t = 1
    while t <= max_length and len(active) > 0:
        log_probs, cache = self.decode_step(torch.tensor(last), memory, padding, source_ids, cache)
        log_probs = self._process(log_probs, t - 1, history, min_length, no_repeat_ngram_size)  # [A*K, V]
        A = len(active)
        V = log_probs.size(1)
        totals = (log_probs + self._score_column(scores, log_probs)).view([A, K * V])  # [A, K*V]
        top_values, top_indices = self._top_candidates(totals, min(2 * K, K * V))
        next_active: List[int] = []
        parents: List[int] = []
        next_last: List[int] = []
        next_history: List[List[int]] = []
        next_scores: List[float] = []
        for a in range(A):
            inp = active[a]
            cand_scores = top_values[a]
            cand_flat = top_indices[a]
            order = self._sorted_candidates(cand_scores, cand_flat)
            # Best first: EOS among the first K ranks finishes a hypothesis, the rest fill K live beams
            chosen: List[int] = []
            rank = 0
            while rank < len(order) and len(chosen) < K:
                c = order[rank]
                if cand_flat[c] % V == self.eos_id:
                    if rank < K and cand_scores[c] > float("-inf"):
                        parent_row = a * K + cand_flat[c] // V
                        self._add_finished(finished_scores[inp], finished[inp], history[parent_row].copy(),
                                           cand_scores[c], t, length_penalty, K)
                else:
                    chosen.append(c)
                rank += 1
            kept = finished_scores[inp]
            done = len(chosen) == 0 or cand_scores[chosen[0]] == float("-inf")
            if len(kept) >= K:
                if early_stopping:
                    done = True
                elif kept[self._worst(kept)] >= self._normalised(cand_scores[order[0]], t, length_penalty):
                    done = True
            if done:
                continue
            for c in chosen:
                parent = a * K + cand_flat[c] // V
                tokens = history[parent].copy()
                tokens.append(cand_flat[c] % V)
                if t == max_length:  # out of length: live beams are hypotheses too
                    self._add_finished(finished_scores[inp], finished[inp], tokens, cand_scores[c], t,
                                       length_penalty, K)
                    continue
                parents.append(parent)
                next_history.append(tokens)
                next_last.append(cand_flat[c] % V)
                next_scores.append(cand_scores[c])
            if t < max_length:
                next_active.append(inp)
        if len(next_active) == 0:
            break
        memory, padding, source_ids, cache = self._reorder(torch.tensor(parents), memory, padding, source_ids, cache)
        active = next_active
        history = next_history
        last = next_last
        scores = next_scores
        t += 1
    out_tokens: List[List[int]] = []
    out_scores: List[float] = []
    found: List[bool] = []
    for b in range(batch):
        # the best kept hypothesis; equal scores: the one kept first (a stable sort)
        best = -1
        for i in range(len(finished_scores[b])):
            if best < 0 or finished_scores[b][i] > finished_scores[b][best]:
                best = i
        if best < 0:
            none: List[int] = []
            out_tokens.append(none)
            out_scores.append(0.0)
            found.append(False)
        else:
            out_tokens.append(finished[b][best])
            out_scores.append(finished_scores[b][best])
            found.append(True)
    return out_tokens, out_scores, found

def search(self, ids: Tensor, lengths: Tensor, beam_size: int, max_length: int, min_length: int,
           length_penalty: float, no_repeat_ngram_size: int, early_stopping: bool) -> Tuple[Tensor, Tensor, List[float]]:
    # -> (tokens [B, L] int64 padded with pad_id, token counts [B] int64 (-1: no hypothesis), scores)
    assert beam_size >= 1 and beam_size <= 64, "beam_size must be in [1, 64], got " + str(beam_size)
    assert max_length >= 1, "max_length must be >= 1, got " + str(max_length)
    assert min_length >= 0 and min_length <= max_length, "min_length must be in [0, max_length], got " + str(min_length)
    assert no_repeat_ngram_size >= 0, "no_repeat_ngram_size must be >= 0, got " + str(no_repeat_ngram_size)
    ids = ids.long()
    memory, padding = self._encode(ids, lengths)
    if beam_size == 1 and early_stopping:
        tokens, scores, found = self._greedy(memory, padding, ids, max_length, min_length, length_penalty,
                                             no_repeat_ngram_size)
    else:
        tokens, scores, found = self._beam(memory, padding, ids, beam_size, max_length, min_length, length_penalty,
                                           no_repeat_ngram_size, early_stopping)
    longest = 0
    counts: List[int] = []
    for b in range(len(tokens)):
        longest = max(longest, len(tokens[b]))
        if found[b]:
            counts.append(len(tokens[b]))
        else:
            counts.append(-1)
    out = torch.full([len(tokens), longest], self.pad_id).long()
    for b in range(len(tokens)):
        if len(tokens[b]) > 0:
            out[b, 0:len(tokens[b])] = torch.tensor(tokens[b])
    return out, torch.tensor(counts).long(), scores

def generate(self, ids: Tensor, lengths: Tensor, beam_size: int, max_length: int, min_length: int,
             length_penalty: float, no_repeat_ngram_size: int) -> Tensor:
    # ids [B, S] int64, lengths [B] -> [B, L] int64: the best hypothesis per input (no BOS/EOS),
    # padded with pad_id. beam_size 1 is greedy search.
    return self.search(ids, lengths, beam_size, max_length, min_length, length_penalty, no_repeat_ngram_size,
                       True)[0]
)JIT";

// Parameter suffixes of one layer, in the order the TorchScript above indexes them.
const std::vector<std::string> kEncoderLayer = {
    "self_attention.in_proj_weight", "self_attention.in_proj_bias", "self_attention.out_proj.weight",
    "self_attention.out_proj.bias",  "norm1.weight",                "norm1.bias",
    "norm2.weight",                  "norm2.bias",                  "feed_forward.fc1.weight",
    "feed_forward.fc1.bias",         "feed_forward.fc2.weight",     "feed_forward.fc2.bias"};
const std::vector<std::string> kDecoderLayer = {
    "self_attention.in_proj_weight",  "self_attention.in_proj_bias",  "self_attention.out_proj.weight",
    "self_attention.out_proj.bias",   "cross_attention.in_proj_weight", "cross_attention.in_proj_bias",
    "cross_attention.out_proj.weight", "cross_attention.out_proj.bias", "norm1.weight",
    "norm1.bias",                     "norm2.weight",                  "norm2.bias",
    "norm3.weight",                   "norm3.bias",                    "feed_forward.fc1.weight",
    "feed_forward.fc1.bias",          "feed_forward.fc2.weight",       "feed_forward.fc2.bias"};

// TorchScript attribute names cannot contain dots: "encoder.layers.0.norm1.weight" -> "encoder__layers__0__norm1__weight".
std::string flat_name(const std::string& dotted) {
  std::string out;
  for (const char ch : dotted) out += ch == '.' ? std::string("__") : std::string(1, ch);
  return out;
}

// "[self.a, self.b]" for the dotted names prefix + each suffix.
std::string tensor_list(const std::string& prefix, const std::vector<std::string>& suffixes) {
  std::string out = "[";
  for (size_t i = 0; i < suffixes.size(); ++i) out += (i ? ", self." : "self.") + flat_name(prefix + suffixes[i]);
  return out + "]";
}

std::string method(const std::string& name, const std::string& type, const std::string& value) {
  return fmt::format("\ndef {}(self) -> {}:\n    return {}\n", name, type, value);
}

// The per-model part of the source: which flat attributes make up each layer.
std::string stack_accessor(const std::string& name, const std::string& prefix, int64_t layers,
                           const std::vector<std::string>& suffixes) {
  std::string value = "[";
  for (int64_t i = 0; i < layers; ++i) {
    value += (i ? ", " : "") + tensor_list(fmt::format("{}.layers.{}.", prefix, i), suffixes);
  }
  return method(name, "List[List[Tensor]]", value + "]");
}

std::string optional_pair(const std::string& name, bool present, const std::string& prefix) {
  return method(name, "List[Tensor]", present ? tensor_list(prefix, {"weight", "bias"}) : "[]");
}

// --quantize: the weight matrices the TorchScript reads through _linear / _project, stored narrow
// (docs/EXPORT.md, "Quantized archives"). bf16: the matrix as a bfloat16 tensor under its own name.
// int8: the matrix (per-channel int8, model::quantize_weight) prepacked with its bias into
// _int8_packs, and under its own name a handle, an int64 tensor of indices into that list: [whole]
// for a self-attention's packed projection and the feed-forward and output matrices, [query rows,
// key/value rows] for cross- and copy attention, whose queries and keys/values come from different
// sequences. The float32 biases stay registered (the bf16 path adds them; the int8 packs hold a copy).
class NarrowWeights {
 public:
  explicit NarrowWeights(WeightFormat format) : format_(format), packs_(c10::impl::GenericList(pack_type())) {}

  static c10::TypePtr pack_type() {
    return c10::getCustomClassType<c10::intrusive_ptr<LinearPackedParamsBase>>();
  }

  // The tensor to register in place of the float32 matrix `w` (bias `b`, possibly undefined);
  // `split` marks a packed in-projection read as query rows and key/value rows.
  torch::Tensor narrow(const torch::Tensor& w, const torch::Tensor& b, bool split) {
    matrices_ += 1;
    bytes_before_ += weight_bytes(w);
    if (format_ == WeightFormat::kBFloat16) {
      auto narrowed = quantize_weight(w, format_);
      bytes_after_ += weight_bytes(narrowed);
      return narrowed;
    }
    if (!split) return torch::tensor({pack(w, b)}, torch::kInt64);
    const int64_t d = w.size(1);
    const auto bias_rows = [&](int64_t from, int64_t count) { return b.defined() ? b.narrow(0, from, count) : b; };
    const int64_t q = pack(w.narrow(0, 0, d), bias_rows(0, d));
    const int64_t kv = pack(w.narrow(0, d, w.size(0) - d), bias_rows(d, w.size(0) - d));
    return torch::tensor({q, kv}, torch::kInt64);
  }

  const c10::impl::GenericList& packs() const { return packs_; }
  QuantizeReport report() const { return {matrices_, bytes_before_, bytes_after_}; }

 private:
  int64_t pack(const torch::Tensor& w, const torch::Tensor& b) {
    const auto q = quantize_weight(w.contiguous(), WeightFormat::kInt8);
    bytes_after_ += weight_bytes(q);
    torch::jit::Stack stack{q, b.defined() ? c10::IValue(b.detach().contiguous()) : c10::IValue()};
    static const auto prepack = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
    prepack.callBoxed(&stack);
    packs_.push_back(stack.at(0));
    return static_cast<int64_t>(packs_.size()) - 1;
  }

  WeightFormat format_;
  c10::impl::GenericList packs_;
  int64_t matrices_ = 0, bytes_before_ = 0, bytes_after_ = 0;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Copies every parameter and buffer (detached) under its flat name, plus the shared attributes;
// with `narrow`, the matrices model::narrowed_matrices lists in its format. Cross- and copy
// attention's in-projections are read split (queries from one sequence, keys/values from another).
void register_common(torch::jit::Module& m, torch::nn::Module& model, const ModelOptions& o, NarrowWeights* narrow) {
  std::map<std::string, NarrowedMatrix> narrowed;
  if (narrow) {
    for (auto& matrix : narrowed_matrices(model)) narrowed.emplace(matrix.name, matrix);
  }
  for (const auto& p : model.named_parameters()) {
    const auto found = narrowed.find(p.key());
    if (found == narrowed.end()) {
      m.register_parameter(flat_name(p.key()), p.value().detach(), false);
      continue;
    }
    const auto& matrix = found->second;
    const bool split = ends_with(matrix.name, "cross_attention.in_proj_weight") ||
                       ends_with(matrix.name, "copy_attention.in_proj_weight");
    const auto bias = matrix.bias.defined() ? matrix.bias.detach() : torch::Tensor();
    m.register_buffer(flat_name(p.key()), narrow->narrow(p.value().detach(), bias, split));
  }
  for (const auto& b : model.named_buffers()) m.register_buffer(flat_name(b.key()), b.value().detach());
  m.register_attribute("_int8_packs", c10::ListType::create(NarrowWeights::pack_type()),
                       narrow ? narrow->packs() : c10::impl::GenericList(NarrowWeights::pack_type()));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_attribute("d_model", c10::IntType::get(), o.d_model);
  m.register_attribute("heads", c10::IntType::get(), o.heads);
  m.register_attribute("max_positions", c10::IntType::get(), o.max_positions);
  m.register_attribute("pre_norm", c10::BoolType::get(), o.norm == "pre");
  m.register_attribute("gelu", c10::BoolType::get(), o.activation == "gelu");
  // The very doubles the C++ modules multiply by (attention.cpp, layers.cpp).
  m.register_attribute("attention_scale", c10::FloatType::get(),
                       1.0 / std::sqrt(static_cast<double>(o.d_model / o.heads)));
  m.register_attribute("embedding_scale", c10::FloatType::get(),
                       o.positions == "sinusoidal" ? std::sqrt(static_cast<double>(o.d_model)) : 1.0);
}

std::string common_accessors(const ModelOptions& o) {
  return method("_position_table", "Tensor",
                o.positions == "learned" ? "self.embeddings__positions__weight" : "self.embeddings__sinusoid") +
         stack_accessor("_encoder_weights", "encoder", o.encoder_layers, kEncoderLayer) +
         optional_pair("_encoder_final_norm", o.norm == "pre", "encoder.final_norm.");
}

// C++'s native resolver plus `quantized.<op>` -> the quantized:: operators (_linear's int8 path).
struct ExportResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

void define(torch::jit::Module& m, const std::string& source, const char* what) {
  try {
    m.define(source, std::make_shared<ExportResolver>());
  } catch (const std::exception& e) {  // torch::jit::ErrorReport or c10::Error
    throw Error(fmt::format("export: the TorchScript {} does not compile: {}", what, e.what()));
  }
}

}  // namespace

std::string exported_weights_digest(const torch::jit::Module& module) {
  std::vector<std::pair<std::string, c10::IValue>> attributes;
  for (const auto& a : module.named_attributes(/*recurse=*/true)) {
    if (a.name == "training" || (a.name.size() > 9 && a.name.compare(a.name.size() - 9, 9, ".training") == 0)) continue;
    attributes.emplace_back(a.name, a.value);
  }
  std::sort(attributes.begin(), attributes.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Xxh3 h;
  for (const auto& [name, value] : attributes) {
    if (value.isTensor()) {
      hash_tensor(h, name, value.toTensor());
    } else if (value.isInt() || value.isBool()) {
      h.update(name);
      h.update_int(value.isInt() ? value.toInt() : static_cast<int64_t>(value.toBool()));
    } else if (value.isDouble()) {
      h.update(name);
      const double d = value.toDouble();
      h.update(&d, sizeof(d));
    } else if (value.isString()) {
      h.update(name);
      h.update(value.toStringRef());
    } else if (value.isList()) {  // _int8_packs: each matrix as it was quantized, and its bias
      const auto list = value.toList();
      for (size_t i = 0; i < list.size(); ++i) {
        const c10::IValue item = list.get(i);
        if (!item.isCustomClass()) continue;
        const auto [w, b] = item.toCustomClass<LinearPackedParamsBase>()->unpack();
        const std::string at = fmt::format("{}[{}]", name, i);
        hash_tensor(h, at + ".int8", w.int_repr());
        hash_tensor(h, at + ".scales", w.q_per_channel_scales());
        hash_tensor(h, at + ".zero_points", w.q_per_channel_zero_points());
        hash_tensor(h, at + ".bias", b.has_value() ? *b : torch::Tensor());
      }
    }
  }
  return h.hex();
}

torch::jit::Module export_classifier(ClassifierImpl& model, WeightFormat weights, QuantizeReport* report) {
  const auto& o = model.options();
  torch::jit::Module m("heed_classifier");
  NarrowWeights narrow(weights);
  register_common(m, model, o, weights == WeightFormat::kFloat32 ? nullptr : &narrow);
  if (report) *report = narrow.report();
  m.register_attribute("pooling", c10::StringType::get(), o.pooling);
  m.register_attribute("num_classes", c10::IntType::get(), model.num_classes());
  m.register_attribute("ngram_order", c10::IntType::get(), o.ngram_order);
  m.register_attribute("ngram_buckets", c10::IntType::get(), o.ngram_buckets);
  m.register_attribute("ngram_vocab", c10::IntType::get(), model.vocab_size());
  const std::string accessors =
      common_accessors(o) + optional_pair("_attention_pool_weights", o.pooling == "attention", "attention_pool.") +
      method("_ngram_weights", "List[Tensor]", model.has_ngram_head() ? tensor_list("", {"ngram_table", "ngram_bias", "ngram_mix"}) : "[]");
  define(m, accessors + kLayersSource + kClassifierSource, "classifier");
  return m;
}

torch::jit::Module export_seq2seq(Seq2SeqImpl& model, int64_t pad_id, int64_t bos_id, int64_t eos_id,
                                  const std::vector<int64_t>& never_generate, WeightFormat weights,
                                  QuantizeReport* report, CopySpan span) {
  TORCH_CHECK(span.bonus <= 0.0 || model.copy_attention, "copy_span_bonus needs a model with copy attention");
  const auto& o = model.options();
  torch::jit::Module m("heed_summarizer");
  NarrowWeights narrow(weights);
  register_common(m, model, o, weights == WeightFormat::kFloat32 ? nullptr : &narrow);
  // The output projection reads the embedding table; narrowed, it gets its own copy (the lookup
  // keeps the float32 table), as model::quantize_for_inference does.
  const bool own_output = weights != WeightFormat::kFloat32;
  if (own_output) {
    m.register_buffer("output_projection", narrow.narrow(model.embeddings->tokens->weight.detach(), torch::Tensor(), false));
  }
  if (report) *report = narrow.report();
  m.register_attribute("copy_scale", c10::FloatType::get(), 1.0 / std::sqrt(static_cast<double>(o.d_model)));
  m.register_attribute("copy_key_scale", c10::FloatType::get(), std::sqrt(static_cast<double>(o.d_model)));
  m.register_attribute("vocab_size", c10::IntType::get(), model.vocab_size());
  m.register_attribute("pad_id", c10::IntType::get(), pad_id);
  m.register_attribute("bos_id", c10::IntType::get(), bos_id);
  m.register_attribute("eos_id", c10::IntType::get(), eos_id);
  m.register_attribute("never_generate", c10::ListType::ofInts(), c10::List<int64_t>(never_generate));
  m.register_attribute("copy_span_bonus", c10::FloatType::get(), span.bonus);
  m.register_attribute("copy_span_limit", c10::IntType::get(), span.limit);
  std::string accessors = common_accessors(o) +
                          stack_accessor("_decoder_weights", "decoder", o.decoder_layers, kDecoderLayer) +
                          optional_pair("_decoder_final_norm", o.norm == "pre", "decoder.final_norm.") +
                          method("_output_weight", "Tensor",
                                 own_output ? "self.output_projection" : "self.embeddings__tokens__weight");
  accessors += method("_copy_weights", "List[Tensor]",
                      o.copy_attention ? tensor_list("", {"copy_attention.in_proj_weight", "copy_attention.in_proj_bias",
                                                          "copy_attention.out_proj.weight", "copy_attention.out_proj.bias",
                                                          "copy_gate.weight", "copy_gate.bias"})
                                       : "[]");
  accessors += method("_coverage_weight", "List[Tensor]", model.coverage_weight.defined() ? "[self.coverage_weight]" : "[]");
  define(m, accessors + kLayersSource + kSeq2SeqSource + kSearchSource, "summarizer");
  return m;
}

torch::jit::Module export_extractive(ExtractiveImpl& model, const SelectionOptions& selection, WeightFormat weights,
                                     QuantizeReport* report) {
  const auto& o = model.options();
  torch::jit::Module m("heed_extractive");
  NarrowWeights narrow(weights);
  register_common(m, model, o, weights == WeightFormat::kFloat32 ? nullptr : &narrow);
  if (report) *report = narrow.report();
  m.register_attribute("max_sentences", c10::IntType::get(), model.max_sentences());
  m.register_attribute("block_ngrams", c10::IntType::get(), selection.block_ngrams);
  m.register_attribute("min_sentences", c10::IntType::get(), selection.min_sentences);
  m.register_attribute("max_selected", c10::IntType::get(), selection.max_selected);
  const std::string accessors =
      common_accessors(o) +
      stack_accessor("_sentence_weights", "sentence_encoder", model.sentence_layers(), kEncoderLayer) +
      optional_pair("_sentence_final_norm", o.norm == "pre", "sentence_encoder.final_norm.");
  define(m, accessors + kLayersSource + kExtractiveSource, "extractive summarizer");
  return m;
}

}  // namespace heed::model
