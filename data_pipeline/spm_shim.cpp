// Implementation of the C ABI in spm_shim.h. This is the only translation unit that includes
// sentencepiece headers; it is built into libheed_spm.so and never linked into heed.
#include "data_pipeline/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
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

}  // namespace

HEED_SPM_EXPORT int heed_spm_abi_version(void) { return HEED_SPM_ABI_VERSION; }

HEED_SPM_EXPORT heed_spm* heed_spm_load(const char* bytes, size_t len, char* err, size_t err_cap) {
  try {
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
