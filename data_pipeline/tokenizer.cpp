#include "data_pipeline/tokenizer.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/spm/spm_shim.h"

namespace heed::data {
namespace fs = std::filesystem;

namespace {

// Function table of the dlopen()ed shim. Loaded once per process, never unloaded.
struct ShimApi {
  std::string path;
  decltype(&heed_spm_abi_version) abi_version = nullptr;
  decltype(&heed_spm_load) load = nullptr;
  decltype(&heed_spm_free) free = nullptr;
  decltype(&heed_spm_vocab_size) vocab_size = nullptr;
  decltype(&heed_spm_special_id) special_id = nullptr;
  decltype(&heed_spm_encode) encode = nullptr;
  decltype(&heed_spm_decode) decode = nullptr;
  decltype(&heed_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&heed_spm_train) train = nullptr;
  decltype(&heed_spm_free_buffer) free_buffer = nullptr;
};

// AddressSanitizer's runtime refuses dlopen(RTLD_DEEPBIND). Sanitizer builds load the shim only in
// processes without libtorch (heed_core_tests, the torch-free fuzz targets), where no other protobuf
// is present, so RTLD_LOCAL alone binds sentencepiece to its own; next to libtorch such a build
// refuses with an Error instead of crashing (scripts/test.sh --sanitize, docs/RELIABILITY.md).
#if defined(__SANITIZE_ADDRESS__)
#define HEED_NO_DEEPBIND 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEED_NO_DEEPBIND 1
#endif
#endif
#ifdef HEED_NO_DEEPBIND
constexpr int kDeepBind = 0;
bool libtorch_loaded() {
  return ::dl_iterate_phdr(
             [](dl_phdr_info* info, size_t, void*) {
               return info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "libtorch") != nullptr ? 1 : 0;
             },
             nullptr) != 0;
}
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
bool libtorch_loaded() { return false; }
#endif

template <typename F>
void bind_symbol(void* handle, const char* name, F& slot, const std::string& path) {
  slot = reinterpret_cast<F>(::dlsym(handle, name));
  if (slot == nullptr) throw Error("SentencePiece shim " + path + " lacks symbol " + name);
}

const ShimApi& shim() {
  static ShimApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    if (kDeepBind == 0 && libtorch_loaded()) {
      throw Error("this sanitizer build cannot load the SentencePiece shim next to libtorch (no RTLD_DEEPBIND)");
    }
    std::string tried;
    void* handle = nullptr;
    for (const auto& path : heed_library_paths("libheed_spm.so", "HEED_SPM_LIBRARY")) {
      std::error_code ec;
      if (!fs::exists(path, ec)) {
        tried += "\n  " + path + " (missing)";
        continue;
      }
      // RTLD_DEEPBIND: the shim's references resolve inside it first, so sentencepiece binds to
      // its own bundled protobuf rather than the one libtorch brought into the process.
      handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | kDeepBind);
      if (handle != nullptr) {
        api.path = path;
        break;
      }
      tried += "\n  " + path + " (" + ::dlerror() + ")";
    }
    if (handle == nullptr) {
      throw Error("cannot load the SentencePiece shim libheed_spm.so; tried:" + tried +
                  "\nset HEED_SPM_LIBRARY to its path, or rebuild with scripts/setup.sh");
    }
    bind_symbol(handle, "heed_spm_abi_version", api.abi_version, api.path);
    if (api.abi_version() != HEED_SPM_ABI_VERSION) {
      throw Error(api.path + " has ABI version " + std::to_string(api.abi_version()) + ", heed needs " +
                  std::to_string(HEED_SPM_ABI_VERSION) + "; rebuild");
    }
    bind_symbol(handle, "heed_spm_load", api.load, api.path);
    bind_symbol(handle, "heed_spm_free", api.free, api.path);
    bind_symbol(handle, "heed_spm_vocab_size", api.vocab_size, api.path);
    bind_symbol(handle, "heed_spm_special_id", api.special_id, api.path);
    bind_symbol(handle, "heed_spm_encode", api.encode, api.path);
    bind_symbol(handle, "heed_spm_decode", api.decode, api.path);
    bind_symbol(handle, "heed_spm_id_to_piece", api.id_to_piece, api.path);
    bind_symbol(handle, "heed_spm_train", api.train, api.path);
    bind_symbol(handle, "heed_spm_free_buffer", api.free_buffer, api.path);
  });
  if (api.load == nullptr) throw Error("the SentencePiece shim failed to load earlier in this process");
  return api;
}

constexpr size_t kErrCap = 1024;

}  // namespace

std::string spm_shim_path() { return shim().path; }

struct Tokenizer::KnownCharacters {
  std::once_flag once;
  std::unordered_set<uint32_t> characters;
};

namespace {

// Byte length of the UTF-8 character that starts with `lead` (1 for a stray byte).
size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
}

uint32_t pack(std::string_view ch) {
  uint32_t key = 0;
  for (char c : ch) key = (key << 8) | static_cast<unsigned char>(c);
  return key;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<heed_spm> handle, std::string bytes)
    : handle_(std::move(handle)), bytes_(std::move(bytes)), known_(std::make_shared<KnownCharacters>()) {
  const auto& api = shim();
  vocab_size_ = api.vocab_size(handle_.get());
  unk_id_ = api.special_id(handle_.get(), 1);
  pad_id_ = api.special_id(handle_.get(), 0);
  if (pad_id_ < 0) pad_id_ = unk_id_;
  bos_id_ = api.special_id(handle_.get(), 2);
  eos_id_ = api.special_id(handle_.get(), 3);
}

Tokenizer Tokenizer::from_bytes(std::string bytes, const std::string& origin) {
  const auto& api = shim();
  char err[kErrCap] = {0};
  heed_spm* raw = api.load(bytes.data(), bytes.size(), err, kErrCap);
  if (raw == nullptr) throw InputError(origin + ": not a valid SentencePiece model (" + err + ")");
  std::shared_ptr<heed_spm> handle(raw, [free = api.free](heed_spm* p) { free(p); });
  return Tokenizer(std::move(handle), std::move(bytes));
}

Tokenizer Tokenizer::load(const std::string& path) { return from_bytes(read_file(path), path); }

std::string required_chars(const TokenizerTrainOptions& options) {
  if (options.type != "unigram") return "";
  std::string chars;
  for (char c = '!'; c <= '~'; ++c) chars.push_back(c);
  // 4 special ids + 94 characters in at most a quarter of the vocabulary; tiny test vocabularies
  // (64 pieces) could not hold them at all.
  return options.vocab_size >= 4 * (4 + static_cast<int>(chars.size())) ? chars : std::string();
}

Tokenizer Tokenizer::train(const std::vector<std::string_view>& texts, const TokenizerTrainOptions& options) {
  const auto& api = shim();
  if (texts.empty()) throw InputError("tokenizer training: no training text");
  std::vector<std::pair<std::string, std::string>> kv = {
      {"model_type", options.type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"input_sentence_size", std::to_string(options.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", std::to_string(options.max_sentence_length)},
      {"num_threads", std::to_string(std::max(1, options.threads))},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"hard_vocab_limit", "false"},
      {"minloglevel", "2"},
  };
  // Rare ASCII characters fall outside character_coverage on news text ("?", "!", "&", "Q", "X" and
  // "Z" on BBC's 1,800 training articles) and would read back as " ⁇ " in every summary that
  // copies "Xbox" or "M&S".
  const std::string required = required_chars(options);
  if (!required.empty()) kv.emplace_back("required_chars", required);
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : kv) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  std::vector<const char*> sentences;
  std::vector<size_t> lengths;
  sentences.reserve(texts.size());
  lengths.reserve(texts.size());
  for (const auto& t : texts) {
    if (t.empty()) continue;
    sentences.push_back(t.data());
    lengths.push_back(t.size());
  }
  char* model = nullptr;
  size_t model_len = 0;
  char err[kErrCap] = {0};
  if (api.train(keys.data(), values.data(), keys.size(), sentences.data(), lengths.data(), sentences.size(), &model,
                &model_len, err, kErrCap) != 0) {
    throw InputError(std::string("tokenizer training failed: ") + err);
  }
  std::string bytes(model, model_len);
  api.free_buffer(model);
  return from_bytes(std::move(bytes), "<trained tokenizer>");
}

std::vector<int32_t> Tokenizer::encode_raw(std::string_view text) const {
  const auto& api = shim();
  std::vector<int32_t> ids(text.size() / 3 + 16);
  char err[kErrCap] = {0};
  for (;;) {
    const long n = api.encode(handle_.get(), text.data(), text.size(), ids.data(), ids.size(), err, kErrCap);
    if (n < 0) throw Error(std::string("tokenizer: encode failed: ") + err);
    if (static_cast<size_t>(n) <= ids.size()) {
      ids.resize(static_cast<size_t>(n));
      return ids;
    }
    ids.resize(static_cast<size_t>(n));
  }
}

bool Tokenizer::compact(std::string_view text, std::string* out) const {
  constexpr size_t kRun = kMaxUnknownRunBytes;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  // Cheap test first: most texts have no whitespace-free span longer than kRun.
  bool long_span = false;
  for (size_t i = 0, span = 0; i < text.size() && !long_span; ++i) {
    span = is_space(text[i]) ? 0 : span + 1;
    long_span = span > kRun;
  }
  if (!long_span) return false;

  std::call_once(known_->once, [this] {
    for (int id = 0; id < vocab_size_; ++id) {
      if (id == unk_id_ || id == pad_id_ || id == bos_id_ || id == eos_id_) continue;  // "<unk>" is no text
      const std::string p = piece(id);
      for (size_t i = 0; i < p.size();) {
        const size_t len = std::min(utf8_length(static_cast<unsigned char>(p[i])), p.size() - i);
        known_->characters.insert(pack(std::string_view(p).substr(i, len)));
        i += len;
      }
    }
  });
  std::unordered_map<uint32_t, bool> unknown;  // characters in no piece (packed) -> encodes as the unknown id
  auto is_unknown = [&](std::string_view ch) {
    const uint32_t key = pack(ch);
    if (known_->characters.count(key) != 0) return false;
    auto it = unknown.find(key);
    if (it != unknown.end()) return it->second;
    const auto ids = encode_raw(ch);
    const bool unk = !ids.empty() && ids.back() == unk_id_;
    unknown.emplace(key, unk);
    return unk;
  };
  out->clear();
  out->reserve(text.size());
  bool changed = false;
  size_t run = 0;  // bytes of unknown characters kept in the current run
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(utf8_length(static_cast<unsigned char>(text[i])), text.size() - i);
    const std::string_view ch = text.substr(i, len);
    i += len;
    if (len == 1 && is_space(ch[0])) {
      run = 0;
      out->append(ch);
      continue;
    }
    if (!is_unknown(ch)) {
      run = 0;
      out->append(ch);
    } else if (run + len <= kRun) {
      run += len;
      out->append(ch);
    } else {
      changed = true;  // dropped: the run is already one unknown id
    }
  }
  return changed;
}

std::string Tokenizer::compact_unknown_runs(std::string_view text) const {
  std::string out;
  return compact(text, &out) ? out : std::string(text);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::string compacted;
  return encode_raw(compact(text, &compacted) ? std::string_view(compacted) : text);
}

std::vector<std::vector<int32_t>> Tokenizer::encode_all(const std::vector<std::string_view>& texts,
                                                        int threads) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  const size_t n_threads = std::clamp<size_t>(static_cast<size_t>(std::max(1, threads)), 1, std::max<size_t>(1, texts.size()));
  if (n_threads == 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i]);
    return out;
  }
  // Interleaved assignment keeps the threads balanced when long texts cluster.
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(n_threads);
  for (size_t t = 0; t < n_threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        for (size_t i = t; i < texts.size(); i += n_threads) out[i] = encode(texts[i]);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const auto& api = shim();
  std::string out(ids.size() * 8 + 16, '\0');
  char err[kErrCap] = {0};
  for (;;) {
    const long n = api.decode(handle_.get(), ids.data(), ids.size(), out.data(), out.size(), err, kErrCap);
    if (n < 0) throw InputError(std::string("tokenizer: decode failed: ") + err);
    if (static_cast<size_t>(n) <= out.size()) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    out.resize(static_cast<size_t>(n));
  }
}

std::string Tokenizer::piece(int32_t id) const {
  const auto& api = shim();
  std::string out(64, '\0');
  long n = api.id_to_piece(handle_.get(), id, out.data(), out.size());
  if (n < 0) throw InputError("tokenizer: id " + std::to_string(id) + " is outside the vocabulary");
  if (static_cast<size_t>(n) > out.size()) {
    out.resize(static_cast<size_t>(n));
    n = api.id_to_piece(handle_.get(), id, out.data(), out.size());
  }
  out.resize(static_cast<size_t>(n));
  return out;
}

void Tokenizer::save(const std::string& path) const { write_file_atomic(path, bytes_); }

}  // namespace heed::data
