// fuzz_spm: SentencePiece model bytes through the shim (data_pipeline/spm/spm_shim.*, loaded with
// dlopen by data_pipeline/tokenizer.*): heed_spm_load from bytes, then encode, decode and piece
// lookups on a short text. Input: the .model bytes. Invariants: ids are inside the vocabulary the
// model reports, the special ids are -1 or inside it; only heed::Error may escape.
// Note: sentencepiece and its bundled protobuf are Debian's (not instrumented), so libFuzzer sees
// only heed's side for coverage; crashes inside them are still caught.
#include <string>
#include <vector>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

namespace heed::fuzz {

int fuzz_spm_one(const uint8_t* data, size_t size) {
  try {
    const auto tok = data::Tokenizer::from_bytes(std::string(as_view(data, size)), "fuzz.model");
    const int n = tok.vocab_size();
    for (int id : {tok.pad_id(), tok.unk_id(), tok.bos_id(), tok.eos_id()}) {
      check(id >= -1 && id < n, "special id outside the vocabulary: " + std::to_string(id));
    }
    const auto ids = tok.encode("The movie was great, ünïcödé 字 \xff\xfe and <br /> 3.5%. ﬁ ① Ａ\t\u3000");  // NFKC-mapped too
    for (int id : ids) check(id >= 0 && id < n, "encode returned an id outside the vocabulary");
    (void)tok.decode(ids);
    for (int id = 0; id < n && id < 8; ++id) (void)tok.piece(id);
  } catch (const Error&) {
  }
  return 0;
}

// A tiny unigram and a tiny BPE model trained the way heed trains one.
size_t fuzz_spm_seeds(const std::string& dir) {
  std::vector<std::string> texts;
  const char* words[] = {"the", "movie", "was", "great", "awful", "plot", "and", "acting", "story", "film"};
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (int w = 0; w < 6; ++w) s += std::string(w ? " " : "") + words[(i * 7 + w * 3) % 10];
    texts.push_back(s + ".");
  }
  std::vector<std::string_view> views(texts.begin(), texts.end());
  size_t written = 0;
  for (const char* type : {"unigram", "bpe"}) {
    data::TokenizerTrainOptions o;
    o.type = type;
    o.vocab_size = 40;
    write_seed(dir, std::string(type) + ".model", data::Tokenizer::train(views, o).bytes());
    ++written;
  }
  return written;
}

}  // namespace heed::fuzz
