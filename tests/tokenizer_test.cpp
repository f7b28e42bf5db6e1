// The SentencePiece shim loaded next to libtorch, and the Tokenizer around it.
#include <gtest/gtest.h>
#ifndef HEED_CORE_TESTS  // heed_core_tests (no libtorch) compiles this file too
#include <torch/torch.h>
#endif

#include <dlfcn.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"
#include "data_pipeline/tokenizer.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using heed::data::Tokenizer;
using heed::data::TokenizerTrainOptions;

namespace {
const Tokenizer& shared_tokenizer() {
  static const Tokenizer tokenizer = [] {
    static const auto texts = heed::test::sentences(400);
    std::vector<std::string_view> views(texts.begin(), texts.end());
    TokenizerTrainOptions o;
    o.vocab_size = 64;
    return Tokenizer::train(views, o);
  }();
  return tokenizer;
}
}  // namespace

TEST(Tokenizer, TrainsAlongsideLibtorchAndReservesSpecialIds) {
#ifndef HEED_CORE_TESTS
  // A torch op first, so both libraries are live in this process.
  EXPECT_EQ(torch::ones({2}).sum().item<float>(), 2.0f);
#endif
  const auto& tok = shared_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 64);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 3);
  EXPECT_FALSE(heed::data::spm_shim_path().empty());
}

// heed's executables run tcmalloc (CMakeLists.txt, HEED_ALLOCATOR). The shim is loaded with
// RTLD_DEEPBIND, which binds its symbols to its own dependencies first: unless the shim links tcmalloc
// too, SentencePiece would allocate with glibc's malloc inside a tcmalloc process. A handle's dlsym()
// searches in that same order, so it names the malloc the shim's code calls.
TEST(Tokenizer, TheShimAllocatesWithTheProcessMalloc) {
  shared_tokenizer();  // loads the shim
#ifdef HEED_TCMALLOC
  EXPECT_EQ(heed::allocator_name(), "tcmalloc");
#endif
  if (heed::allocator_name() != "tcmalloc") GTEST_SKIP() << "malloc is glibc's: nothing interposes it";
  void* handle = ::dlopen(heed::data::spm_shim_path().c_str(), RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(handle, nullptr) << heed::data::spm_shim_path();
  EXPECT_EQ(::dlsym(handle, "malloc"), ::dlsym(RTLD_DEFAULT, "malloc"));
  EXPECT_EQ(::dlsym(handle, "free"), ::dlsym(RTLD_DEFAULT, "free"));
  ::dlclose(handle);  // drops the reference RTLD_NOLOAD took; the shim stays loaded
}

TEST(Tokenizer, EncodeDecodeRoundTrip) {
  const auto& tok = shared_tokenizer();
  const std::string text = "the movie was really great and the acting was wonderful.";
  const auto ids = tok.encode(text);
  ASSERT_FALSE(ids.empty());
  for (int id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, tok.vocab_size());
  }
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_FALSE(tok.piece(ids[0]).empty());
  EXPECT_THROW(tok.piece(100000), heed::InputError);
  EXPECT_THROW(tok.decode({100000}), heed::InputError);
}

TEST(Tokenizer, EncodeAllMatchesEncodeInOrder) {
  const auto& tok = shared_tokenizer();
  const auto texts = heed::test::sentences(50, 99);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  const auto batch = tok.encode_all(views, 4);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i], tok.encode(texts[i])) << i;
}

TEST(Tokenizer, HandlesLongAndInvalidUtf8Input) {
  const auto& tok = shared_tokenizer();
  std::string long_text;
  for (int i = 0; i < 2000; ++i) long_text += "wonderful ";
  EXPECT_GT(tok.encode(long_text).size(), 1000u);
  const std::string bad = "good \xff\xfe movie \xc3";
  EXPECT_NO_THROW(tok.encode(bad));
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(Tokenizer, SaveLoadGivesTheSameModel) {
  heed::test::TempDir dir;
  const auto& tok = shared_tokenizer();
  const std::string path = dir.str() + "/sub/tok.model";
  tok.save(path);
  const auto loaded = Tokenizer::load(path);
  EXPECT_EQ(loaded.bytes(), tok.bytes());
  EXPECT_EQ(loaded.encode("the plot was boring"), tok.encode("the plot was boring"));
}

TEST(Tokenizer, BadModelFilesGiveInputErrors) {
  heed::test::TempDir dir;
  EXPECT_THROW(Tokenizer::load(dir.str() + "/missing.model"), heed::InputError);
  const auto garbage = dir.write("garbage.model", "this is not a sentencepiece model");
  try {
    Tokenizer::load(garbage);
    FAIL();
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("garbage.model"), std::string::npos);
  }
}

TEST(Tokenizer, TrainingRejectsImpossibleOptions) {
  const auto texts = heed::test::sentences(20);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  TokenizerTrainOptions o;
  o.type = "wordpiece";
  EXPECT_THROW(Tokenizer::train(views, o), heed::InputError);
  EXPECT_THROW(Tokenizer::train({}, TokenizerTrainOptions{}), heed::InputError);
}

TEST(Tokenizer, BpeTrains) {
  const auto texts = heed::test::sentences(300);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  TokenizerTrainOptions o;
  o.type = "bpe";
  o.vocab_size = 60;
  const auto tok = Tokenizer::train(views, o);
  EXPECT_EQ(tok.decode(tok.encode("the best film")), "the best film");
}

// character_coverage drops characters seen once in thousands (news text: "?", "&", "Q", "X"), which
// then decode as " ⁇ ". Printable ASCII is always kept when the vocabulary has room; other rare
// characters still fall to coverage, as SentencePiece decides.
TEST(Tokenizer, RareAsciiCharactersStayInTheVocabulary) {
  auto texts = heed::test::sentences(3000);
  texts.push_back("Xbox sales rose at M&S in Qatar? Yes! {50%} #1 ~ ^ | @ [z] <q> = \\ ` _ + * / ; ; Zøe");
  std::vector<std::string_view> views(texts.begin(), texts.end());
  {
    const char* type = "unigram";
    TokenizerTrainOptions o;
    o.type = type;
    o.vocab_size = 500;
    const auto tok = Tokenizer::train(views, o);
    const std::string ascii = "Xbox & Qatar?! {a|b} #1 @home [x] <y> = z^2 ~ `c` _d_ + e * f / g; h\\i 7%";
    EXPECT_EQ(tok.decode(tok.encode(ascii)), ascii) << type;
    // 'ø' occurs once in ~100,000 characters: coverage 0.9995 leaves it out, so it encodes as unknown.
    const auto ids = tok.encode("ø");
    EXPECT_NE(std::find(ids.begin(), ids.end(), tok.unk_id()), ids.end()) << type;
  }
  TokenizerTrainOptions sized;
  sized.vocab_size = 500;
  EXPECT_EQ(heed::data::required_chars(sized).size(), 94u);
  sized.vocab_size = 64;
  EXPECT_TRUE(heed::data::required_chars(sized).empty());
  // A tiny vocabulary still trains (no room for the characters), and BPE trains without them.
  EXPECT_EQ(shared_tokenizer().vocab_size(), 64);
  TokenizerTrainOptions bpe;
  bpe.type = "bpe";
  bpe.vocab_size = 500;
  const auto tok = Tokenizer::train(views, bpe);
  EXPECT_EQ(tok.decode(tok.encode("the best film")), "the best film");
}
