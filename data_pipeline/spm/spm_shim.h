// Plain C ABI around SentencePiece.
//
// Why this exists: Debian's libsentencepiece.so.0 exports the symbols of its bundled protobuf
// 3.14, and libtorch loads protobuf 3.21. Linking both into one executable crashes at start-up.
// So sentencepiece lives alone in libheed_spm.so, which heed never links: data_pipeline/tokenizer.cpp
// dlopen()s it with RTLD_LOCAL | RTLD_DEEPBIND, so its protobuf resolves to its own copy. Nothing of
// C++ crosses this boundary: handles, ints, bytes and caller-owned buffers only. Every executable
// that loads it is compiled -fPIC (not -fPIE); see CMakeLists.txt.
//
// Conventions: functions that can fail return a negative value (or NULL) and write a NUL-terminated
// message into `err` (capacity `err_cap`). Functions that fill a buffer return the number of
// elements needed; when that exceeds the capacity, the buffer content is unspecified and the caller
// retries with a larger buffer.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct heed_spm heed_spm;

// Bumped whenever a signature below changes; the loader refuses a mismatched library.
#define HEED_SPM_ABI_VERSION 1
int heed_spm_abi_version(void);

// Loads a model from serialized bytes (the content of a .model file).
heed_spm* heed_spm_load(const char* bytes, size_t len, char* err, size_t err_cap);
void heed_spm_free(heed_spm* sp);

int heed_spm_vocab_size(const heed_spm* sp);
// which: 0 = pad, 1 = unk, 2 = bos, 3 = eos. Returns -1 when the model has no such piece.
int heed_spm_special_id(const heed_spm* sp, int which);

// Encodes UTF-8 text into ids. Returns the number of ids, or -1 on error.
long heed_spm_encode(const heed_spm* sp, const char* text, size_t len, int32_t* ids, size_t cap,
                     char* err, size_t err_cap);
// Decodes ids into UTF-8 text (not NUL-terminated). Returns the byte length, or -1 on error.
long heed_spm_decode(const heed_spm* sp, const int32_t* ids, size_t n, char* out, size_t cap,
                     char* err, size_t err_cap);
// Writes the piece of `id` (not NUL-terminated). Returns its byte length, or -1 for a bad id.
long heed_spm_id_to_piece(const heed_spm* sp, int32_t id, char* out, size_t cap);

// Trains a model from in-memory sentences. `keys`/`values` are sentencepiece trainer options
// (e.g. "vocab_size" -> "8000"). On success returns 0 and sets *model/*model_len to a malloc'ed
// serialized model that the caller releases with heed_spm_free_buffer().
int heed_spm_train(const char* const* keys, const char* const* values, size_t n_options,
                   const char* const* sentences, const size_t* lengths, size_t n_sentences,
                   char** model, size_t* model_len, char* err, size_t err_cap);
void heed_spm_free_buffer(char* buffer);

#ifdef __cplusplus
}
#endif
