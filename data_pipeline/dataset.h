// Token ids for a corpus: encoding with all threads, an on-disk cache keyed by corpus text and
// tokenizer, truncation, and the deterministic train/validation split.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data_pipeline/tokenizer.h"

namespace heed::data {

using TokenIds = std::vector<int32_t>;

// Where token-id caches live: `configured` when non-empty, else $HEED_CACHE_DIR, else
// $XDG_CACHE_HOME/heed, else ~/.cache/heed. "none" disables caching (returns "").
std::string resolve_cache_dir(const std::string& configured);

struct EncodeStats {
  bool cache_hit = false;
  std::string cache_file;  // empty when caching is off
  double seconds = 0.0;
  size_t tokens = 0;       // before truncation
};

// Encodes every text (full length, no truncation) with `threads` threads. When cache_dir is
// non-empty, results are cached in cache_dir under a key hashed from the texts and the tokenizer
// model, so a second run over the same corpus with the same tokenizer reads them back.
std::vector<TokenIds> encode_corpus(const std::vector<std::string>& texts, const Tokenizer& tokenizer, int threads,
                                    const std::string& cache_dir, EncodeStats* stats = nullptr);

// Truncation of a sequence to `max_length` ids.
//   kHead ("head"): keep the first max_length ids;
//   kHeadTail ("head_tail"): keep the first head_tokens and the last max_length - head_tokens ids
//   (the end of a review often carries its verdict).
enum class TruncationMode { kHead, kHeadTail };
// data.truncation as an enum; InputError("config: <section>.truncation: must be one of ...") otherwise.
TruncationMode parse_truncation_mode(const std::string& value, const std::string& section = "data");

struct Truncation {
  int64_t max_length = 512;
  TruncationMode mode = TruncationMode::kHead;
  int64_t head_tokens = 128;
};
TokenIds truncate(const TokenIds& ids, const Truncation& truncation);

// Bytes of text kept from each end that `truncation` keeps (the start; with head_tail the start and
// the end) before encoding: max(4096, 64 * max_length). A SentencePiece piece covers at most 16
// characters (64 bytes) and a run of unknown characters is first cut to 64 bytes, so the cut text
// still holds more than max_length tokens on each kept side.
size_t text_byte_budget(const Truncation& truncation);

// `text` cut to its byte budget before encoding, so that a 20 MB text costs no more than one of a
// few KB: runs of unknown characters shortened (Tokenizer::compact_unknown_runs), then, when still
// longer than the budget, "head" keeps the first budget bytes and "head_tail" the first and the last
// budget bytes joined by a space. Cuts fall on whitespace when there is some in the last 256 bytes
// before the cut, else on a UTF-8 character boundary. truncate(encode(cut)) equals
// truncate(encode(text)) (tested), since SentencePiece tokenizes words independently.
std::string cut_to_budget(const Tokenizer& tokenizer, std::string_view text, const Truncation& truncation);

// encode_corpus over the texts cut to their budget (cut_to_budget), each result truncated; an empty
// sequence becomes [unk] so every row has a length.
std::vector<TokenIds> encode_truncated_corpus(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                                              const Truncation& truncation, int threads, const std::string& cache_dir,
                                              EncodeStats* stats = nullptr);

// Raw texts -> model inputs exactly as training prepared them: cleaned (clean_text), cut to the
// byte budget (cut_to_budget), encoded with `threads` threads, truncated; an empty text becomes
// [unk] so it still gets an answer.
std::vector<TokenIds> encode_for_inference(const Tokenizer& tokenizer, const Truncation& truncation,
                                           const std::vector<std::string>& texts, int threads);

// Deterministic split of n items: a permutation from `seed`; its first round(fraction * n) go to
// `validation`, the next round(test_fraction * n) to `test`, the rest to `train` (each sorted).
// Same arguments -> same split, and a test fraction never changes which items validate.
struct Split {
  std::vector<size_t> train, validation, test;
};
Split split_indices(size_t n, double fraction, uint64_t seed, double test_fraction = 0.0);

}  // namespace heed::data
