// Implementation of the C ABI in spm_shim.h. This is the only translation unit that includes
// sentencepiece headers; it is built into libheed_spm.so and never linked into heed.
#include "data_pipeline/spm/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#define HEED_SPM_EXPORT extern "C" __attribute__((visibility("default")))

struct heed_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void set_error(char* err, size_t cap, const std::string& message) {
  if (err == nullptr || cap == 0) return;
  const size_t n = std::min(cap - 1, message.size());
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

// Feeds in-memory sentences to the trainer without a temporary file.
class BufferIterator : public sentencepiece::SentenceIterator {
 public:
  BufferIterator(const char* const* sentences, const size_t* lengths, size_t n)
      : sentences_(sentences), lengths_(lengths), n_(n) {
    load();
  }
  bool done() const override { return index_ >= n_; }
  void Next() override {
    ++index_;
    load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (index_ < n_) value_.assign(sentences_[index_], lengths_[index_]);
  }
  const char* const* sentences_;
  const size_t* lengths_;
  size_t n_;
  size_t index_ = 0;
  std::string value_;
};


// Debian's sentencepiece trusts the precompiled normalization map inside a model (a darts-clone
// double-array trie followed by NUL-terminated replacement strings): a corrupt map makes Encode
// read outside the model's memory (found by tests/fuzz/fuzz_spm.cpp under ASan). So before a model
// is handed over, its maps are walked here: every trie state reachable from the root, for every
// input byte, must index inside the trie, and every replacement must start inside the strings,
// which must end with a NUL. The protobuf wire format is read directly (sentencepiece's model
// headers are not installed): ModelProto field 3 = normalizer_spec, 5 = denormalizer_spec;
// NormalizerSpec field 2 = precompiled_charsmap.
bool read_varint(std::string_view& s, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !s.empty(); shift += 7) {
    const auto c = static_cast<uint8_t>(s.front());
    s.remove_prefix(1);
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) return true;
  }
  return false;
}

// Calls f(field, bytes) for every length-delimited field of a message; false when malformed.
template <typename F>
bool for_each_bytes_field(std::string_view msg, F f) {
  while (!msg.empty()) {
    uint64_t key = 0, v = 0;
    if (!read_varint(msg, key)) return false;
    switch (key & 7) {
      case 0: if (!read_varint(msg, v)) return false; break;
      case 1: if (msg.size() < 8) return false; msg.remove_prefix(8); break;
      case 5: if (msg.size() < 4) return false; msg.remove_prefix(4); break;
      case 2:
        if (!read_varint(msg, v) || v > msg.size()) return false;
        if (!f(key >> 3, msg.substr(0, v))) return false;
        msg.remove_prefix(v);
        break;
      default: return false;
    }
  }
  return true;
}

bool charsmap_ok(std::string_view blob) {
  if (blob.empty()) return true;  // no map: no normalization
  if (blob.size() <= 4) return false;
  uint32_t trie_bytes = 0;
  std::memcpy(&trie_bytes, blob.data(), 4);
  if (trie_bytes == 0 || trie_bytes % 4 != 0 || trie_bytes > blob.size() - 4) return false;
  const size_t n = trie_bytes / 4;
  std::vector<uint32_t> units(n);
  std::memcpy(units.data(), blob.data() + 4, trie_bytes);
  const std::string_view strings = blob.substr(4 + trie_bytes);
  if (!strings.empty() && strings.back() != '\0') return false;
  auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1U << 9)) >> 6); };
  std::vector<bool> seen(n, false);
  std::vector<size_t> stack = {0};
  seen[0] = true;
  while (!stack.empty()) {
    const size_t node = stack.back();
    stack.pop_back();
    const size_t base = node ^ offset(units[node]);
    if ((base | 0xff) >= n) return false;  // some input byte would step outside the trie
    for (uint32_t c = 0; c < 256; ++c) {
      const size_t child = base ^ c;
      const uint32_t u = units[child];
      if ((u & ((1U << 31) | 0xff)) != c) continue;  // not a transition on byte c
      if ((u >> 8) & 1) {  // a key ends here: its value is the offset of the replacement string
        const size_t value_at = child ^ offset(u);
        if (value_at >= n || (units[value_at] & ((1U << 31) - 1)) >= strings.size()) return false;
      }
      if (!seen[child]) {
        seen[child] = true;
        stack.push_back(child);
      }
    }
  }
  return true;
}

// "" when every normalization map of the serialized model is sound (or the model does not parse:
// sentencepiece reports that itself), else what is wrong.
std::string check_charsmaps(std::string_view model) {
  bool sound = true;
  for_each_bytes_field(model, [&](uint64_t field, std::string_view spec) {
    if (field != 3 && field != 5) return true;
    return for_each_bytes_field(spec, [&](uint64_t f, std::string_view blob) {
      if (f == 2 && !charsmap_ok(blob)) sound = false;
      return true;
    });
  });
  return sound ? "" : "corrupt precompiled normalization map";
}

}  // namespace

HEED_SPM_EXPORT int heed_spm_abi_version(void) { return HEED_SPM_ABI_VERSION; }

HEED_SPM_EXPORT heed_spm* heed_spm_load(const char* bytes, size_t len, char* err, size_t err_cap) {
  try {
    if (const auto problem = check_charsmaps(std::string_view(bytes, len)); !problem.empty()) {
      set_error(err, err_cap, problem);
      return nullptr;
    }
    auto* sp = new heed_spm();
    const auto status = sp->processor.LoadFromSerializedProto(std::string(bytes, len));
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      delete sp;
      return nullptr;
    }
    return sp;
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
    return nullptr;
  }
}

HEED_SPM_EXPORT void heed_spm_free(heed_spm* sp) { delete sp; }

HEED_SPM_EXPORT int heed_spm_vocab_size(const heed_spm* sp) { return sp->processor.GetPieceSize(); }

HEED_SPM_EXPORT int heed_spm_special_id(const heed_spm* sp, int which) {
  switch (which) {
    case 0: return sp->processor.pad_id();
    case 1: return sp->processor.unk_id();
    case 2: return sp->processor.bos_id();
    case 3: return sp->processor.eos_id();
    default: return -1;
  }
}

HEED_SPM_EXPORT long heed_spm_encode(const heed_spm* sp, const char* text, size_t len, int32_t* ids,
                                     size_t cap, char* err, size_t err_cap) {
  try {
    std::vector<int> out;
    const auto status = sp->processor.Encode(std::string_view(text, len), &out);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    if (out.size() <= cap) {
      for (size_t i = 0; i < out.size(); ++i) ids[i] = out[i];
    }
    return static_cast<long>(out.size());
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
    return -1;
  }
}

HEED_SPM_EXPORT long heed_spm_decode(const heed_spm* sp, const int32_t* ids, size_t n, char* out,
                                     size_t cap, char* err, size_t err_cap) {
  try {
    const int size = sp->processor.GetPieceSize();
    std::vector<int> in(ids, ids + n);
    for (int id : in) {
      if (id < 0 || id >= size) {
        set_error(err, err_cap, "id " + std::to_string(id) + " is outside the vocabulary of size " +
                                    std::to_string(size));
        return -1;
      }
    }
    std::string text;
    const auto status = sp->processor.Decode(in, &text);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    if (text.size() <= cap) std::memcpy(out, text.data(), text.size());
    return static_cast<long>(text.size());
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
    return -1;
  }
}

HEED_SPM_EXPORT long heed_spm_id_to_piece(const heed_spm* sp, int32_t id, char* out, size_t cap) {
  if (id < 0 || id >= sp->processor.GetPieceSize()) return -1;
  const std::string& piece = sp->processor.IdToPiece(id);
  if (piece.size() <= cap) std::memcpy(out, piece.data(), piece.size());
  return static_cast<long>(piece.size());
}

HEED_SPM_EXPORT int heed_spm_train(const char* const* keys, const char* const* values, size_t n_options,
                                   const char* const* sentences, const size_t* lengths,
                                   size_t n_sentences, char** model, size_t* model_len, char* err,
                                   size_t err_cap) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    for (size_t i = 0; i < n_options; ++i) kwargs[keys[i]] = values[i];
    BufferIterator iterator(sentences, lengths, n_sentences);
    std::string serialized;
    const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, &iterator, &serialized);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    *model = static_cast<char*>(std::malloc(serialized.size()));
    if (*model == nullptr) {
      set_error(err, err_cap, "out of memory");
      return -1;
    }
    std::memcpy(*model, serialized.data(), serialized.size());
    *model_len = serialized.size();
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
    return -1;
  }
}

HEED_SPM_EXPORT void heed_spm_free_buffer(char* buffer) { std::free(buffer); }
