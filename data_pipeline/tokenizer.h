// Tokenizer: the one place heed meets SentencePiece. Wraps the C shim (spm_shim.h), loaded with
// dlopen, and turns its status codes into heed::Error / heed::InputError.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct heed_spm;

namespace heed::data {

// Options for training a SentencePiece model on the training text.
struct TokenizerTrainOptions {
  std::string type = "unigram";         // "unigram" or "bpe"
  int vocab_size = 16000;               // number of pieces, specials included
  double character_coverage = 0.9995;   // share of characters the vocabulary must cover
  int input_sentence_size = 200000;     // cap on sentences sampled for training (0 = all)
  int max_sentence_length = 16384;      // longer inputs (bytes) are skipped by the trainer
  int threads = 1;                      // trainer threads
  uint32_t seed = 1;                    // sampling seed
};

// The characters Tokenizer::train(texts, options) always puts in the vocabulary whatever
// character_coverage leaves out: for a unigram model, the printable ASCII characters ("!" to "~");
// empty for BPE (SentencePiece's BPE trainer aborts the process on a required character its sampled
// sentences lack) and when vocab_size is too small to spare room for them.
std::string required_chars(const TokenizerTrainOptions& options);

class Tokenizer {
 public:
  // Loads a serialized model (.model file). Throws InputError naming the file when unreadable.
  static Tokenizer load(const std::string& path);
  static Tokenizer from_bytes(std::string bytes, const std::string& origin = "<memory>");
  // Trains a model on `texts`; reserves pad=0, unk=1, bos=2, eos=3.
  static Tokenizer train(const std::vector<std::string_view>& texts, const TokenizerTrainOptions& options);

  // Ids of `text`. Runs of characters the model does not know are shortened first
  // (compact_unknown_runs), which leaves the ids unchanged and keeps the time linear in the text.
  std::vector<int32_t> encode(std::string_view text) const;

  // SentencePiece encodes a run of consecutive unknown characters as one unknown id, whatever its
  // length, but its time grows with the square of the run (5 MB of an unknown character: ~15
  // minutes). Longer runs are cut to this many bytes (on a character boundary) before encoding.
  static constexpr size_t kMaxUnknownRunBytes = 64;
  // `text` with every run of unknown characters longer than kMaxUnknownRunBytes shortened to at most
  // that many bytes: encode() gives the same ids for both. Only whitespace-free spans longer than
  // that are examined (every sentence of a language written without spaces); a character that
  // occurs in a piece is known, any other is encoded on its own once per call to find out.
  std::string compact_unknown_runs(std::string_view text) const;
  // One SentencePiece call on `text` as it is: quadratic in runs of unknown characters, so for
  // measurements and tests; everything else calls encode().
  std::vector<int32_t> encode_raw(std::string_view text) const;
  // Encodes many texts using `threads` threads; order is preserved.
  std::vector<std::vector<int32_t>> encode_all(const std::vector<std::string_view>& texts, int threads) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;

  int vocab_size() const { return vocab_size_; }
  // Padding id; models without a pad piece pad with unk (padding is always masked out).
  int pad_id() const { return pad_id_; }
  int unk_id() const { return unk_id_; }
  int bos_id() const { return bos_id_; }  // -1 when absent
  int eos_id() const { return eos_id_; }  // -1 when absent

  // The serialized model: what save() writes, what export bundles, what cache keys hash.
  const std::string& bytes() const { return bytes_; }
  // Writes the model atomically (temporary file, then rename).
  void save(const std::string& path) const;

 private:
  Tokenizer(std::shared_ptr<heed_spm> handle, std::string bytes);
  // Writes the compacted text to *out and returns true when compact_unknown_runs changes `text`.
  bool compact(std::string_view text, std::string* out) const;
  std::shared_ptr<heed_spm> handle_;
  std::string bytes_;
  // Characters (UTF-8 bytes packed into 32 bits) that occur in the vocabulary's pieces, built on
  // first use by compact(); shared by copies of this Tokenizer.
  struct KnownCharacters;
  std::shared_ptr<KnownCharacters> known_;
  int vocab_size_ = 0, pad_id_ = 0, unk_id_ = 0, bos_id_ = -1, eos_id_ = -1;
};

// Path of the loaded shim library (for diagnostics and tests).
std::string spm_shim_path();

}  // namespace heed::data
