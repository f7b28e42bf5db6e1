#include "data_pipeline/dataset.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/text.h"

namespace heed::data {
namespace fs = std::filesystem;

namespace {

constexpr char kCacheMagic[8] = {'H', 'E', 'E', 'D', 'I', 'D', 'S', '1'};

std::string serialize(const std::vector<TokenIds>& corpus) {
  size_t total = sizeof(kCacheMagic) + sizeof(uint64_t);
  for (const auto& ids : corpus) total += sizeof(uint32_t) + ids.size() * sizeof(int32_t);
  std::string out;
  out.reserve(total);
  out.append(kCacheMagic, sizeof(kCacheMagic));
  const uint64_t count = corpus.size();
  out.append(reinterpret_cast<const char*>(&count), sizeof(count));
  for (const auto& ids : corpus) {
    const uint32_t n = static_cast<uint32_t>(ids.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof(n));
    out.append(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int32_t));
  }
  return out;
}

// Returns false (and leaves `out` empty) when the bytes are not a complete cache of `expected` items.
bool deserialize(const std::string& bytes, size_t expected, std::vector<TokenIds>* out) {
  size_t pos = 0;
  auto take = [&](void* dst, size_t n) {
    if (pos + n > bytes.size()) return false;
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
    return true;
  };
  char magic[sizeof(kCacheMagic)];
  uint64_t count = 0;
  if (!take(magic, sizeof(magic)) || std::memcmp(magic, kCacheMagic, sizeof(magic)) != 0) return false;
  if (!take(&count, sizeof(count)) || count != expected) return false;
  out->resize(count);
  for (auto& ids : *out) {
    uint32_t n = 0;
    if (!take(&n, sizeof(n)) || pos + size_t{n} * sizeof(int32_t) > bytes.size()) {
      out->clear();
      return false;
    }
    ids.resize(n);
    take(ids.data(), size_t{n} * sizeof(int32_t));
  }
  if (pos != bytes.size()) {
    out->clear();
    return false;
  }
  return true;
}

}  // namespace

std::string resolve_cache_dir(const std::string& configured) {
  if (configured == "none") return "";
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("HEED_CACHE_DIR"); env != nullptr && *env != '\0') return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/heed";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return std::string(home) + "/.cache/heed";
  return "";
}

std::vector<TokenIds> encode_corpus(const std::vector<std::string>& texts, const Tokenizer& tokenizer, int threads,
                                    const std::string& cache_dir, EncodeStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  EncodeStats local;
  std::vector<TokenIds> corpus;

  std::string cache_file;
  if (!cache_dir.empty()) {
    uint64_t key = fnv1a(tokenizer.bytes());
    for (const auto& t : texts) {
      const uint64_t n = t.size();
      key = fnv1a(&n, sizeof(n), key);  // lengths too, so concatenations cannot collide
      key = fnv1a(t, key);
    }
    cache_file = fmt::format("{}/ids-{:016x}-{}.bin", cache_dir, key, texts.size());
    std::error_code ec;
    if (fs::exists(cache_file, ec)) {
      try {
        if (deserialize(read_file(cache_file), texts.size(), &corpus)) local.cache_hit = true;
      } catch (const Error&) {
        corpus.clear();  // unreadable cache: recompute below
      }
    }
  }
  if (!local.cache_hit) {
    std::vector<std::string_view> views(texts.begin(), texts.end());
    corpus = tokenizer.encode_all(views, threads);
    if (!cache_file.empty()) {
      try {
        write_file_atomic(cache_file, serialize(corpus));
      } catch (const std::exception&) {
        // A cache that cannot be written (read-only home, full disk) only costs time next run.
      }
    }
  }
  for (const auto& ids : corpus) local.tokens += ids.size();
  local.cache_file = cache_file;
  local.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stats != nullptr) *stats = local;
  return corpus;
}

TruncationMode parse_truncation_mode(const std::string& value, const std::string& section) {
  return parse_choice<TruncationMode>(value, {{"head", TruncationMode::kHead}, {"head_tail", TruncationMode::kHeadTail}},
                                      section, "truncation");
}

TokenIds truncate(const TokenIds& ids, const Truncation& t) {
  const auto max_len = static_cast<size_t>(t.max_length);
  if (ids.size() <= max_len) return ids;
  if (t.mode == TruncationMode::kHeadTail) {
    const auto head = static_cast<size_t>(std::min(t.head_tokens, t.max_length));
    TokenIds out(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(head));
    out.insert(out.end(), ids.end() - static_cast<std::ptrdiff_t>(max_len - head), ids.end());
    return out;
  }
  return TokenIds(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(max_len));
}

size_t text_byte_budget(const Truncation& t) {
  return std::max<size_t>(4096, 64 * static_cast<size_t>(std::max<int64_t>(t.max_length, 1)));
}

namespace {

constexpr size_t kWhitespaceWindow = 256;  // how far a cut moves to land on whitespace

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Length of the head to keep: at most `budget` bytes, ending before whitespace when some is near.
size_t head_cut(std::string_view text, size_t budget) {
  if (text.size() <= budget) return text.size();
  for (size_t i = budget; i > 0 && budget - i < kWhitespaceWindow; --i) {
    if (is_space(text[i])) return i;
  }
  size_t cut = budget;
  while (cut > 0 && is_continuation(text[cut])) --cut;
  return cut;
}

// Start of the tail to keep: at most `budget` bytes from the end, starting at whitespace when some is near.
size_t tail_start(std::string_view text, size_t budget) {
  if (text.size() <= budget) return 0;
  const size_t start = text.size() - budget;
  for (size_t i = start; i < text.size() && i - start < kWhitespaceWindow; ++i) {
    if (is_space(text[i])) return i;
  }
  size_t cut = start;
  while (cut < text.size() && is_continuation(text[cut])) ++cut;
  return cut;
}

}  // namespace

std::string cut_to_budget(const Tokenizer& tokenizer, std::string_view text, const Truncation& t) {
  const size_t budget = text_byte_budget(t);
  const bool head_tail = t.mode == TruncationMode::kHeadTail;
  const size_t keep = head_tail ? 2 * budget : budget;
  if (text.size() <= keep) return std::string(text);
  const std::string compacted = tokenizer.compact_unknown_runs(text);
  const std::string_view c = compacted;
  if (c.size() <= keep) return compacted;
  std::string out(c.substr(0, head_cut(c, budget)));
  if (head_tail) {
    out += ' ';
    out += c.substr(tail_start(c, budget));
  }
  return out;
}

std::vector<TokenIds> encode_truncated_corpus(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                                              const Truncation& truncation, int threads, const std::string& cache_dir,
                                              EncodeStats* stats) {
  const size_t keep = (truncation.mode == TruncationMode::kHeadTail ? 2 : 1) * text_byte_budget(truncation);
  const bool any_long = std::any_of(texts.begin(), texts.end(), [&](const std::string& s) { return s.size() > keep; });
  std::vector<TokenIds> ids;
  if (any_long) {
    std::vector<std::string> cut(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      cut[i] = texts[i].size() > keep ? cut_to_budget(tokenizer, texts[i], truncation) : texts[i];
    }
    ids = encode_corpus(cut, tokenizer, threads, cache_dir, stats);
  } else {
    ids = encode_corpus(texts, tokenizer, threads, cache_dir, stats);
  }
  for (auto& s : ids) {
    s = truncate(s, truncation);
    if (s.empty()) s.push_back(static_cast<int32_t>(tokenizer.unk_id()));
  }
  return ids;
}

Split split_indices(size_t n, double fraction, uint64_t seed, double test_fraction) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  // Fisher-Yates with our own index draw: std::shuffle's use of the engine is not specified
  // identically across standard libraries, and a split must not change with the toolchain.
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  const auto n_val = std::min(n, static_cast<size_t>(std::llround(fraction * static_cast<double>(n))));
  const auto n_test =
      std::min(n - n_val, static_cast<size_t>(std::llround(test_fraction * static_cast<double>(n))));
  const auto at = [&order](size_t i) { return order.begin() + static_cast<std::ptrdiff_t>(i); };
  Split split;
  split.validation.assign(order.begin(), at(n_val));
  split.test.assign(at(n_val), at(n_val + n_test));
  split.train.assign(at(n_val + n_test), order.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.test.begin(), split.test.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

std::vector<TokenIds> encode_for_inference(const Tokenizer& tokenizer, const Truncation& truncation,
                                           const std::vector<std::string>& texts, int threads) {
  std::vector<std::string> cleaned;
  cleaned.reserve(texts.size());
  for (const auto& t : texts) cleaned.push_back(cut_to_budget(tokenizer, clean_text(t), truncation));
  std::vector<std::string_view> views(cleaned.begin(), cleaned.end());
  auto ids = tokenizer.encode_all(views, threads);
  for (auto& s : ids) {
    s = truncate(s, truncation);
    if (s.empty()) s.push_back(static_cast<int32_t>(tokenizer.unk_id()));
  }
  return ids;
}

}  // namespace heed::data
