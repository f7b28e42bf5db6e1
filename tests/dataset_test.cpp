// Token-id cache, truncation and the deterministic split.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/dataset.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using namespace heed::data;

TEST(Truncate, HeadAndHeadTail) {
  TokenIds ids = {1, 2, 3, 4, 5, 6, 7, 8};
  const auto head = TruncationMode::kHead, head_tail = TruncationMode::kHeadTail;
  EXPECT_EQ(truncate(ids, {4, head, 0}), (TokenIds{1, 2, 3, 4}));
  EXPECT_EQ(truncate(ids, {5, head_tail, 2}), (TokenIds{1, 2, 6, 7, 8}));
  EXPECT_EQ(truncate(ids, {5, head_tail, 0}), (TokenIds{4, 5, 6, 7, 8}));
  EXPECT_EQ(truncate(ids, {20, head_tail, 2}), ids);
  EXPECT_EQ(parse_truncation_mode("head"), head);
  EXPECT_EQ(parse_truncation_mode("head_tail"), head_tail);
  try {
    parse_truncation_mode("tail");
    ADD_FAILURE() << "no InputError";
  } catch (const heed::InputError& e) {
    EXPECT_STREQ(e.what(), "config: data.truncation: must be one of \"head\", \"head_tail\", got \"tail\"");
  }
}

TEST(Split, DeterministicDisjointComplete) {
  const auto a = split_indices(1000, 0.1, 42), b = split_indices(1000, 0.1, 42), c = split_indices(1000, 0.1, 43);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_EQ(a.train, b.train);
  EXPECT_NE(a.validation, c.validation);
  EXPECT_EQ(a.validation.size(), 100u);
  std::set<size_t> all(a.train.begin(), a.train.end());
  for (size_t v : a.validation) EXPECT_TRUE(all.insert(v).second);
  EXPECT_EQ(all.size(), 1000u);
  // The split must not depend on the standard library: pin a few values.
  const auto pinned = split_indices(10, 0.3, 1).validation;
  EXPECT_EQ(pinned.size(), 3u);
  EXPECT_EQ(pinned, split_indices(10, 0.3, 1).validation);
}

// A test split is carved after validation: the validation part stays the same, the three parts are
// disjoint and cover everything.
TEST(Split, TestFractionLeavesValidationAloneAndIsDisjoint) {
  const auto plain = split_indices(1000, 0.1, 42), with_test = split_indices(1000, 0.1, 42, 0.05);
  EXPECT_TRUE(plain.test.empty());
  EXPECT_EQ(with_test.validation, plain.validation);
  EXPECT_EQ(with_test.test.size(), 50u);
  EXPECT_EQ(with_test.train.size(), 850u);
  std::set<size_t> all(with_test.train.begin(), with_test.train.end());
  for (size_t v : with_test.validation) EXPECT_TRUE(all.insert(v).second);
  for (size_t t : with_test.test) EXPECT_TRUE(all.insert(t).second);
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(with_test.test.begin(), with_test.test.end()));
  // Only a test split: it comes first in the permutation, where validation would be.
  EXPECT_EQ(split_indices(1000, 0.0, 42, 0.1).test, plain.validation);
}

TEST(EncodeCorpus, SecondRunReadsTheCacheAndMatches) {
  heed::test::TempDir dir;
  const auto texts = heed::test::sentences(300);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  TokenizerTrainOptions o;
  o.vocab_size = 60;
  const auto tok = Tokenizer::train(views, o);
  EncodeStats first, second, uncached;
  const auto a = encode_corpus(texts, tok, 2, dir.str(), &first);
  const auto b = encode_corpus(texts, tok, 2, dir.str(), &second);
  const auto c = encode_corpus(texts, tok, 1, "", &uncached);
  EXPECT_FALSE(first.cache_hit);
  EXPECT_TRUE(second.cache_hit);
  EXPECT_FALSE(uncached.cache_hit);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  // A different corpus gets a different cache file.
  auto other = texts;
  other[5] += " extra";
  EncodeStats third;
  encode_corpus(other, tok, 2, dir.str(), &third);
  EXPECT_FALSE(third.cache_hit);
  EXPECT_NE(third.cache_file, first.cache_file);
  // A corrupt cache file is ignored, not trusted.
  { std::ofstream(first.cache_file, std::ios::trunc) << "HEEDIDS1garbage"; }
  EncodeStats fourth;
  EXPECT_EQ(encode_corpus(texts, tok, 2, dir.str(), &fourth), a);
  EXPECT_FALSE(fourth.cache_hit);
}

TEST(CacheDir, ResolutionOrder) {
  EXPECT_EQ(resolve_cache_dir("none"), "");
  EXPECT_EQ(resolve_cache_dir("/x/y"), "/x/y");
  setenv("HEED_CACHE_DIR", "/from/env", 1);
  EXPECT_EQ(resolve_cache_dir(""), "/from/env");
  unsetenv("HEED_CACHE_DIR");
}
