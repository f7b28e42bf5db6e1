// Summarization readers (CNN/DailyMail stories and JSONL, BBC News Summary, aligned files, tables)
// and the sentence splitter behind targets and the lead-N baseline.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/news_readers.h"
#include "tests/test_utils.h"

using namespace heed::data;
using heed::InputError;
using heed::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kFFFD = "\xEF\xBF\xBD";
using Sentences = std::vector<std::string>;

// The message of the InputError that `f` throws; fails the test when it throws nothing.
template <typename F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

SummaryReadOptions with_format(const std::string& format, OnError on_error = OnError::kFail) {
  SummaryReadOptions options;
  options.format = format;
  options.on_error = on_error;
  return options;
}

std::vector<SummaryExample> read(const std::string& path, const std::string& format,
                                 OnError on_error = OnError::kFail, ReadReport* report = nullptr) {
  return read_summarization(path, with_format(format, on_error), report);
}

std::string all_messages(const ReadReport& report) {
  std::string all;
  for (const auto& m : report.messages) all += m + "\n";
  return all;
}

// Copies a fixture folder into `dir`/name (the tests that add files must not touch the fixtures).
std::string copy_fixture(const TempDir& dir, const std::string& fixture, const std::string& name) {
  const fs::path to = dir.path() / name;
  fs::create_directories(to.parent_path());
  fs::copy(heed::test::fixture(fixture), to, fs::copy_options::recursive);
  return to.string();
}

std::string shared_data(const std::string& relative) {
  return std::string(HEED_SOURCE_DIR) + "/../shared/data/" + relative;
}

}  // namespace

// --- sentence splitting ---

TEST(SentenceSplit, GluedBbcSentencesAreSplit) {
  EXPECT_EQ(split_sentences("Shares rose 5%.The firm said so."), (Sentences{"Shares rose 5%.", "The firm said so."}));
  EXPECT_EQ(split_sentences("set to stabilise.China's currency fell."),
            (Sentences{"set to stabilise.", "China's currency fell."}));
  // An acronym before the glued period still ends the sentence ("US.Texas", "AT&T.SBC").
  EXPECT_EQ(split_sentences("protection in the US.Texas Judge Clark said no."),
            (Sentences{"protection in the US.", "Texas Judge Clark said no."}));
  EXPECT_EQ(split_sentences("takeover of AT&T.SBC said so."), (Sentences{"takeover of AT&T.", "SBC said so."}));
  // A glued quote opens the next sentence when this one has no open quote...
  EXPECT_EQ(split_sentences("in recent months.\"I think so,\" said Bob."),
            (Sentences{"in recent months.", "\"I think so,\" said Bob."}));
  EXPECT_EQ(split_sentences("a \"difficult year\".\"2005 will be better.\""),
            (Sentences{"a \"difficult year\".", "\"2005 will be better.\""}));
  // ...and closes this one when it balances an open quote.
  EXPECT_EQ(split_sentences("He said \"hi.\"The end."), (Sentences{"He said \"hi.\"", "The end."}));
  EXPECT_EQ(split_sentences("Why?The reason is clear!Then it ended."),
            (Sentences{"Why?", "The reason is clear!", "Then it ended."}));
}

TEST(SentenceSplit, AbbreviationsDecimalsAndHostsDoNotSplit) {
  EXPECT_EQ(split_sentences("Mr. Smith met Dr. Jones in the U.S. capital. They talked."),
            (Sentences{"Mr. Smith met Dr. Jones in the U.S. capital.", "They talked."}));
  EXPECT_EQ(split_sentences("The U.S. President spoke. Rates rose 3.5 percent."),
            (Sentences{"The U.S. President spoke.", "Rates rose 3.5 percent."}));
  EXPECT_EQ(split_sentences("See www.bbc.co.uk for more. It is free."),
            (Sentences{"See www.bbc.co.uk for more.", "It is free."}));
  EXPECT_EQ(split_sentences("George W. Bush visited St. Louis on Monday."),
            (Sentences{"George W. Bush visited St. Louis on Monday."}));
  EXPECT_EQ(split_sentences("Fruit, e.g. Apples, sells well vs. Pears etc. in Acme Inc. shops."),
            (Sentences{"Fruit, e.g. Apples, sells well vs. Pears etc. in Acme Inc. shops."}));
  EXPECT_EQ(split_sentences("It is 9 a.m. Tuesday."), (Sentences{"It is 9 a.m. Tuesday."}));
  // "No." is an abbreviation before a number only.
  EXPECT_EQ(split_sentences("He lives at No. 10 Downing Street."), (Sentences{"He lives at No. 10 Downing Street."}));
  EXPECT_EQ(split_sentences("She said no. Then she left."), (Sentences{"She said no.", "Then she left."}));
  // Glued decimals, lowercase continuations and version numbers stay whole.
  EXPECT_EQ(split_sentences("It cost $9.3bn. in total.2 more"), (Sentences{"It cost $9.3bn. in total.2 more"}));
}

TEST(SentenceSplit, QuotesBracketsAndTerminators) {
  EXPECT_EQ(split_sentences("\"Go home.\" Then he left."), (Sentences{"\"Go home.\"", "Then he left."}));
  EXPECT_EQ(split_sentences("He said: 'it is over.' The next day came."),
            (Sentences{"He said: 'it is over.'", "The next day came."}));
  EXPECT_EQ(split_sentences("Really?! \"Yes!\" (He nodded.) 2005 was good."),
            (Sentences{"Really?!", "\"Yes!\"", "(He nodded.)", "2005 was good."}));
  EXPECT_EQ(split_sentences("Wait... what? It works."), (Sentences{"Wait... what?", "It works."}));
  // Curly quotes.
  EXPECT_EQ(split_sentences("\xE2\x80\x9CIt works.\xE2\x80\x9D Then \xE2\x80\x98we\xE2\x80\x99re done.\xE2\x80\x99 Fine."),
            (Sentences{"\xE2\x80\x9CIt works.\xE2\x80\x9D", "Then \xE2\x80\x98we\xE2\x80\x99re done.\xE2\x80\x99", "Fine."}));
  // CNN highlights end with " ." and are one per line.
  EXPECT_EQ(split_sentences("Team won the final .\nFans celebrated ."),
            (Sentences{"Team won the final .", "Fans celebrated ."}));
}

TEST(SentenceSplit, NewlinesTrimAndEmptyInput) {
  EXPECT_EQ(split_sentences(""), Sentences{});
  EXPECT_EQ(split_sentences(" \n\t\n "), Sentences{});
  EXPECT_EQ(split_sentences("  first line\n\n  second line  \nno stop"),
            (Sentences{"first line", "second line", "no stop"}));
  EXPECT_EQ(split_sentences("Ends with a stop. "), (Sentences{"Ends with a stop."}));
  EXPECT_EQ(split_sentences("..."), (Sentences{"..."}));
}

TEST(SentenceSplit, RandomInputNeverLosesTextOrYieldsEmptySentences) {
  // Property: sentences are trimmed and non-empty, and together hold every visible byte in order.
  std::mt19937 rng(7);
  const std::string alphabet = "aZ .!?\"'()[]\n\t3%&U";
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int length = static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) {
      text += rng() % 8 == 0 ? static_cast<char>(0x80 + rng() % 128) : alphabet[rng() % alphabet.size()];
    }
    std::string visible, joined;
    for (char c : text) {
      if (c != ' ' && c != '\n' && c != '\t') visible += c;
    }
    for (const auto& s : split_sentences(text)) {
      ASSERT_FALSE(s.empty()) << text;
      ASSERT_NE(s.front(), ' ') << text;
      ASSERT_NE(s.back(), ' ') << text;
      ASSERT_EQ(s.find('\n'), std::string::npos) << text;
      for (char c : s) {
        if (c != ' ' && c != '\t') joined += c;
      }
    }
    ASSERT_EQ(joined, visible) << text;
  }
}

TEST(SentenceLead, FirstNSentencesOnePerLine) {
  const std::string text = "One is here. Two is there.Three follows!\nFour ends";
  EXPECT_EQ(lead_sentences(text, 1), "One is here.");
  EXPECT_EQ(lead_sentences(text, 3), "One is here.\nTwo is there.\nThree follows!");
  EXPECT_EQ(lead_sentences(text, 10), "One is here.\nTwo is there.\nThree follows!\nFour ends");
  EXPECT_EQ(lead_sentences(text, 0), "");
  EXPECT_EQ(lead_sentences(text, -2), "");
  EXPECT_EQ(lead_sentences("", 3), "");
}

// --- options ---

TEST(NewsOptions, FormatsAreValidatedWithTheChoicesListed) {
  for (const auto& format : summary_formats()) EXPECT_NO_THROW(validate_summary_format(format)) << format;
  EXPECT_EQ(summary_formats().size(), 8u);
  const std::string message = input_error([] { validate_summary_format("cnn"); });
  EXPECT_EQ(message.rfind("format: ", 0), 0u) << message;
  for (const char* name : {"cnndm_stories", "cnndm_jsonl", "bbc", "aligned", "jsonl", "csv", "tsv", "auto"}) {
    EXPECT_TRUE(has(message, std::string("\"") + name + "\"")) << message;
  }
  EXPECT_TRUE(has(message, "got \"cnn\"")) << message;

  SummaryReadOptions options;
  EXPECT_NO_THROW(validate_summary_options(options));
  options.bbc_target = "title";
  EXPECT_TRUE(has(input_error([&] { validate_summary_options(options); }), "bbc_target: ")) << "bbc_target";
  options.bbc_target = "headline";
  options.source_field = "";
  EXPECT_TRUE(has(input_error([&] { validate_summary_options(options); }), "source_field: "));
  // read_summarization validates before it touches the path.
  options.source_field = "article";
  options.format = "xsum";
  EXPECT_TRUE(has(input_error([&] { read_summarization("/nowhere", options, nullptr); }), "format: "));
}

TEST(NewsPaths, MissingOrMismatchedPathsNameThePath) {
  TempDir dir;
  const std::string missing = dir.str() + "/nowhere.jsonl";
  EXPECT_EQ(input_error([&] { read(missing, "auto"); }), missing + ": does not exist");
  EXPECT_EQ(input_error([&] { read(missing, "bbc"); }), missing + ": does not exist");

  dir.write("empty/readme.md", "nothing to read");
  const std::string empty = dir.str() + "/empty";
  std::string message = input_error([&] { read(empty, "auto"); });
  EXPECT_EQ(message.rfind(empty + ": cannot tell the corpus layout", 0), 0u) << message;
  message = input_error([&] { read(empty, "jsonl"); });
  EXPECT_TRUE(has(message, empty + ": is a folder")) << message;
  message = input_error([&] { read(empty, "cnndm_stories"); });
  EXPECT_TRUE(has(message, empty + ": no .story files")) << message;
  message = input_error([&] { read(empty, "bbc"); });
  EXPECT_TRUE(has(message, empty + ": no \"News Articles\" folder")) << message;
  message = input_error([&] { read(dir.str() + "/empty/readme.md", "bbc"); });
  EXPECT_TRUE(has(message, "is a file")) << message;
}

// --- CNN/DailyMail .story files ---

TEST(NewsStories, ReadsAFolderInSortedOrder) {
  const std::string folder = heed::test::fixture("news/stories");
  for (const char* format : {"cnndm_stories", "auto"}) {
    ReadReport report;
    const auto examples = read(folder, format, OnError::kFail, &report);
    ASSERT_EQ(examples.size(), 2u) << format;  // notes.txt is not a story
    EXPECT_EQ(report.records, 2u);
    EXPECT_EQ(report.skipped, 0u);
    EXPECT_EQ(examples[0].id, "0001a");
    EXPECT_EQ(examples[0].origin, folder + "/0001a.story");
    // Paragraphs one per line; "(CNN) -- " is kept.
    EXPECT_EQ(examples[0].source,
              "(CNN) -- The mayor opened the new bridge on Monday. Crowds lined the river.\n"
              "\"It is a great day,\" Mr. Lee said.");
    EXPECT_EQ(examples[0].target, "The mayor opened the new bridge on Monday\nCrowds lined the river to watch");
    EXPECT_EQ(examples[1].id, "0002b");
    EXPECT_EQ(examples[1].source, "By . Staff Reporter .\nPrices rose 3.5% in March. Analysts were surprised.");
    EXPECT_EQ(examples[1].target, "Prices rose 3.5% in March\nAnalysts in the U.S. were surprised");
  }
}

TEST(NewsStories, SingleFileStoriesSubfolderAndBadStories) {
  TempDir dir;
  // A single .story file (auto by extension), and the distribution's cnn/stories/ layout.
  const std::string root = copy_fixture(dir, "news/stories", "cnn/stories");
  EXPECT_EQ(read(root + "/0002b.story", "auto").size(), 1u);
  EXPECT_EQ(read(dir.str() + "/cnn", "auto").size(), 2u);

  const std::string no_highlight = dir.write("cnn/stories/0003.story", "Only an article.\n\nNo summary.\n");
  const std::string no_article = dir.write("cnn/stories/0004.story", "@highlight\n\nA highlight\n");
  dir.write("cnn/stories/0005.story", "Article text.\n\n@highlight\n\nGood one\n\n@highlight\n");  // dangling
  std::string message = input_error([&] { read(root, "cnndm_stories"); });
  EXPECT_EQ(message.rfind(no_highlight + ": no @highlight lines", 0), 0u) << message;

  ReadReport report;
  const auto examples = read(root, "cnndm_stories", OnError::kSkip, &report);
  ASSERT_EQ(examples.size(), 3u);
  EXPECT_EQ(examples[2].id, "0005");
  EXPECT_EQ(examples[2].target, "Good one");
  EXPECT_EQ(report.records, 3u);
  EXPECT_EQ(report.skipped, 2u);
  EXPECT_TRUE(has(all_messages(report), no_article + ": empty article")) << all_messages(report);
}

TEST(NewsStories, NumberedFilesReadInNumericOrder) {
  TempDir dir;
  for (const char* name : {"10", "9", "a2", "a10", "010"}) {
    dir.write(std::string(name) + ".story", std::string("Text ") + name + ".\n\n@highlight\n\nSum\n");
  }
  std::vector<std::string> ids;
  for (const auto& e : read(dir.str(), "auto")) ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"9", "010", "10", "a2", "a10"}));
}

// --- CNN/DailyMail JSON lines ---

TEST(NewsCnndmJsonl, ReadsArticleHighlightsAndId) {
  const std::string path = heed::test::fixture("news/cnndm.jsonl");
  const auto examples = read(path, "cnndm_jsonl");
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].id, "abc123");
  EXPECT_EQ(examples[0].origin, path + ":1");
  EXPECT_EQ(examples[0].source, "(CNN)The team won the final on Sunday. Fans celebrated in the streets.");
  EXPECT_EQ(examples[0].target, "The team won the final .\nFans celebrated .");
  EXPECT_EQ(examples[1].target, "A new blue frog was found by Dr. Smith .");
  // jsonl with the default fields (and auto by extension) reads the same.
  for (const char* format : {"jsonl", "auto"}) {
    const auto same = read(path, format);
    ASSERT_EQ(same.size(), 2u);
    for (size_t i = 0; i < same.size(); ++i) {
      EXPECT_EQ(same[i].source, examples[i].source);
      EXPECT_EQ(same[i].target, examples[i].target);
      EXPECT_EQ(same[i].id, examples[i].id);
    }
  }
}

TEST(NewsCnndmJsonl, BadLinesFailWithFileLineOrAreCounted) {
  TempDir dir;
  const std::string path = dir.write("data.jsonl",
                                     "{\"article\": \"Fine text.\", \"highlights\": \"Fine .\"}\n"
                                     "{\"article\": \"No summary here.\"}\n"
                                     "\n"
                                     "{\"article\": \"  \", \"highlights\": \"Blank article .\"}\n"
                                     "not json\n"
                                     "{\"article\": \"caf\xE9 text.\", \"highlights\": \"Caf\xE9 .\", \"id\": 7}\n");
  // The file is parsed before fields are checked, so the unparsable line is the first error.
  std::string message = input_error([&] { read(path, "cnndm_jsonl"); });
  EXPECT_EQ(message.rfind(path + ":5: not valid JSON", 0), 0u) << message;
  const std::string parsable = dir.write("parsable.jsonl",
                                         "{\"article\": \"Fine text.\", \"highlights\": \"Fine .\"}\n"
                                         "{\"article\": \"No summary here.\", \"highlights\": null}\n");
  message = input_error([&] { read(parsable, "cnndm_jsonl"); });
  EXPECT_EQ(message, parsable + ":2: no target field \"highlights\" (or it is null, a list or an object)");

  ReadReport report;
  const auto examples = read(path, "cnndm_jsonl", OnError::kSkip, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[1].id, "7");
  EXPECT_EQ(examples[1].source, "caf" + kFFFD + " text.");
  EXPECT_EQ(examples[1].origin, path + ":6");
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.skipped, 3u);
  EXPECT_EQ(report.utf8_repaired, 1u);
  const std::string all = all_messages(report);
  EXPECT_TRUE(has(all, path + ":4: empty source in field \"article\"")) << all;
  EXPECT_TRUE(has(all, path + ":5: not valid JSON")) << all;
}

// --- generic tables ---

TEST(NewsTables, CsvAndTsvWithConfiguredFields) {
  TempDir dir;
  const std::string csv = dir.write("data.csv",
                                    "id,document,summary\n"
                                    "x1,\"First doc. It has, commas.\",First summary. Two sentences.\n"
                                    "x2,Second doc.,\n");
  SummaryReadOptions options = with_format("auto", OnError::kSkip);
  options.source_field = "document";
  options.target_field = "summary";
  ReadReport report;
  auto examples = read_summarization(csv, options, &report);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].id, "x1");
  EXPECT_EQ(examples[0].source, "First doc. It has, commas.");
  EXPECT_EQ(examples[0].target, "First summary.\nTwo sentences.");  // split one sentence per line
  EXPECT_EQ(report.skipped, 1u);
  EXPECT_TRUE(has(all_messages(report), csv + ":3: empty target in field \"summary\"")) << all_messages(report);

  const std::string tsv = dir.write("data.tsv", "document\tsummary\nA doc.\tA sum.\n");
  options.on_error = OnError::kFail;
  examples = read_summarization(tsv, options, nullptr);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].id, "");
  EXPECT_EQ(examples[0].origin, tsv + ":2");

  options.target_field = "headline";
  const std::string message = input_error([&] { read_summarization(tsv, options, nullptr); });
  EXPECT_EQ(message, tsv + ":2: no target field \"headline\" (or it is null, a list or an object)");
}

// --- BBC News Summary ---

TEST(NewsBbc, PairsArticlesWithSummariesAndRepairsUtf8) {
  const std::string root = heed::test::fixture("news/bbc");
  // tech/002.txt has no summary: a bad record.
  const std::string message = input_error([&] { read(root, "bbc"); });
  EXPECT_EQ(message.rfind(root + "/News Articles/tech/002.txt: article without a summary", 0), 0u) << message;

  for (const char* format : {"bbc", "auto"}) {
    ReadReport report;
    const auto examples = read(root, format, OnError::kSkip, &report);
    ASSERT_EQ(examples.size(), 3u) << format;
    EXPECT_EQ(report.records, 3u);
    EXPECT_EQ(report.skipped, 1u);
    EXPECT_EQ(report.utf8_repaired, 1u);  // tech/001 (article and summary: one example)
    EXPECT_EQ(examples[0].id, "business/001");
    EXPECT_EQ(examples[0].origin, root + "/News Articles/business/001.txt");
    // The headline is not part of the source; paragraphs are one per line.
    EXPECT_EQ(examples[0].source, "Shares in Acme rose 5% on Monday.\nThe firm said profits doubled. Analysts were pleased.");
    EXPECT_EQ(examples[0].target, "Shares in Acme rose 5% on Monday.\nThe firm said profits doubled.");
    EXPECT_EQ(examples[1].id, "business/002");
    EXPECT_EQ(examples[1].target, "Oil fell to $40.5 a barrel.\n\"Demand is weak,\" said Mr. Khan.");
    EXPECT_EQ(examples[2].id, "tech/001");
    EXPECT_EQ(examples[2].source, "A gadget costs " + kFFFD + "199 in the UK.\nSales of it doubled in the US.Retailers cheered.");
    EXPECT_EQ(examples[2].target, "A gadget costs " + kFFFD + "199 in the UK.\nSales of it doubled in the US.");
  }
}

TEST(NewsBbc, HeadlineTargetsReadEveryArticle) {
  SummaryReadOptions options = with_format("bbc");
  options.bbc_target = "headline";
  const auto examples = read_summarization(heed::test::fixture("news/bbc"), options, nullptr);
  ASSERT_EQ(examples.size(), 4u);
  EXPECT_EQ(examples[0].target, "Shares rise on results");
  EXPECT_EQ(examples[3].id, "tech/002");
  EXPECT_EQ(examples[3].target, "Unpaired story");
  EXPECT_EQ(examples[3].source, "This article has no summary file.");
}

TEST(NewsBbc, NestedLayoutsAndUnpairedSummaries) {
  TempDir dir;
  // The Kaggle archive: <download>/BBC News Summary/{News Articles,Summaries}.
  const std::string root = copy_fixture(dir, "news/bbc", "download/BBC News Summary");
  for (const std::string& path : {dir.str() + "/download", root, root + "/News Articles"}) {
    EXPECT_EQ(read(path, "auto", OnError::kSkip).size(), 3u) << path;
  }
  const std::string orphan = dir.write("download/BBC News Summary/Summaries/sport/001.txt", "A summary.");
  dir.write("download/BBC News Summary/News Articles/tech/.DS_Store", "ignored");
  ReadReport report;
  EXPECT_EQ(read(root, "bbc", OnError::kSkip, &report).size(), 3u);
  EXPECT_EQ(report.skipped, 2u);
  EXPECT_TRUE(has(all_messages(report), orphan + ": summary without an article")) << all_messages(report);

  // A headline-only or empty article and an empty summary are bad records.
  dir.write("download/BBC News Summary/News Articles/sport/001.txt", "Just a headline\n\n");
  dir.write("download/BBC News Summary/News Articles/sport/002.txt", "Title\n\nBody text.");
  dir.write("download/BBC News Summary/Summaries/sport/002.txt", " \n");
  report = ReadReport{};
  EXPECT_EQ(read(root, "bbc", OnError::kSkip, &report).size(), 3u);
  const std::string all = all_messages(report);
  EXPECT_TRUE(has(all, "sport/001.txt: empty article body")) << all;
  EXPECT_TRUE(has(all, "sport/002.txt: empty summary")) << all;

  fs::remove_all(fs::path(root) / "Summaries");
  const std::string message = input_error([&] { read(root, "bbc", OnError::kSkip); });
  EXPECT_TRUE(has(message, "no \"Summaries\" folder")) << message;
}

// --- line-aligned files ---

TEST(NewsAligned, DerivesTheTargetFileAndSplitsTargets) {
  const std::string source = heed::test::fixture("news/aligned.source");
  for (const char* format : {"aligned", "auto"}) {
    const auto examples = read(source, format);
    ASSERT_EQ(examples.size(), 3u) << format;
    EXPECT_EQ(examples[0].source, "The cat sat on the mat.");
    EXPECT_EQ(examples[0].target, "Cat sits.");
    EXPECT_EQ(examples[1].origin, source + ":2");
    EXPECT_EQ(examples[1].target, "Storm hits coast.\nPower cut.");
    EXPECT_EQ(examples[2].id, "");
  }
  TempDir dir;
  dir.write("a.src", "one\ntwo\n");
  dir.write("a.tgt", "One.\nTwo.");  // no final newline: still two lines
  EXPECT_EQ(read(dir.str() + "/a.src", "auto").size(), 2u);
  dir.write("test_source.txt", "doc\n");
  dir.write("test_target.txt", "sum\n");
  EXPECT_EQ(read(dir.str() + "/test_source.txt", "auto")[0].target, "sum");
  SummaryReadOptions options = with_format("aligned");
  options.target_path = dir.str() + "/a.tgt";
  const std::string message = input_error([&] { read_summarization(dir.str() + "/test_source.txt", options, nullptr); });
  EXPECT_EQ(message, dir.str() + "/test_source.txt: 1 line, but " + options.target_path +
                         " has 2 lines; aligned files hold one pair per line");
}

TEST(NewsAligned, LineCountsEmptyLinesAndUnderivableNames) {
  TempDir dir;
  const std::string source = dir.write("x.source", "doc one\n\ndoc three\ndoc four\n");
  const std::string target = dir.write("x.target", "Sum one.\nSum two.\nSum three.\n \n");
  std::string message = input_error([&] { read(source, "aligned"); });
  EXPECT_EQ(message, source + ":2: empty source");
  ReadReport report;
  const auto examples = read(source, "aligned", OnError::kSkip, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[1].origin, source + ":3");
  EXPECT_EQ(report.skipped, 2u);
  EXPECT_TRUE(has(all_messages(report), target + ":4: empty target")) << all_messages(report);

  dir.write("y.source", "a\nb\nc\n");
  dir.write("y.target", "A.\nB.\n");
  message = input_error([&] { read(dir.str() + "/y.source", "auto", OnError::kSkip); });
  EXPECT_TRUE(has(message, dir.str() + "/y.source: 3 lines")) << message;
  EXPECT_TRUE(has(message, dir.str() + "/y.target has 2 lines")) << message;

  dir.write("notes.txt", "a\n");
  message = input_error([&] { read(dir.str() + "/notes.txt", "auto"); });
  EXPECT_TRUE(has(message, "cannot derive the target file")) << message;
  EXPECT_TRUE(has(message, "target_path")) << message;
  dir.write("lonely.src", "a\n");
  message = input_error([&] { read(dir.str() + "/lonely.src", "aligned"); });
  EXPECT_EQ(message.rfind(dir.str() + "/lonely.tgt: the target file for", 0), 0u) << message;
}

// --- robustness ---

TEST(NewsRobustness, GarbageFilesGiveInputErrorsOrSkipsNeverCrashes) {
  TempDir dir;
  std::mt19937 rng(11);
  const std::string pieces[] = {"{", "}", "\"", ":", ",", "\n", "@highlight", "article", "highlights",
                                "\\", "\xFF", "\xC3", ".", "A", " "};
  for (int round = 0; round < 60; ++round) {
    std::string content;
    for (int i = 0; i < 40; ++i) content += pieces[rng() % std::size(pieces)];
    dir.write("g.source", content);
    dir.write("g.target", content);
    dir.write("g.jsonl", content);
    dir.write("g.csv", content);
    dir.write("s/g.story", content);
    for (const auto& [path, format] : std::vector<std::pair<std::string, std::string>>{
             {"g.source", "aligned"}, {"g.jsonl", "jsonl"}, {"g.csv", "csv"}, {"s", "cnndm_stories"}}) {
      for (OnError on_error : {OnError::kFail, OnError::kSkip}) {
        try {
          for (const auto& e : read(dir.str() + "/" + path, format, on_error)) {
            EXPECT_FALSE(e.source.empty());
            EXPECT_FALSE(e.target.empty());
          }
        } catch (const InputError&) {
        }
      }
    }
  }
}

// --- the real corpora (../shared/data), when present ---

TEST(NewsRealData, BbcNewsSummaryFolder) {
  const std::string root = shared_data("bbc-news-summary");
  if (!fs::is_directory(root)) GTEST_SKIP() << root << " is not here";
  const auto start = std::chrono::steady_clock::now();
  ReadReport report;
  const auto examples = read(root, "auto", OnError::kFail, &report);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(examples.size(), 1797u);
  EXPECT_EQ(report.skipped, 0u);
  EXPECT_GE(report.utf8_repaired, 1u);  // News Articles/sport/199.txt holds a Latin-1 pound sign
  size_t sentences = 0;
  for (const auto& e : examples) {
    ASSERT_FALSE(e.source.empty()) << e.origin;
    ASSERT_FALSE(e.target.empty()) << e.origin;
    ASSERT_FALSE(e.id.empty()) << e.origin;
    sentences += split_sentences(e.target).size();
  }
  // Summaries glue their sentences ("stabilise.China's"); split they average several per summary.
  EXPECT_GT(sentences, 5 * examples.size());
  EXPECT_EQ(examples.front().id, "business/002");
  EXPECT_LT(seconds, 5.0);
}

TEST(NewsRealData, CnnDailymailJsonl) {
  const std::string path = shared_data("cnn_dailymail/validation_15.jsonl");
  if (!fs::exists(path)) GTEST_SKIP() << path << " is not here";
  ReadReport report;
  const auto examples = read(path, "cnndm_jsonl", OnError::kFail, &report);
  ASSERT_EQ(examples.size(), 15u);
  EXPECT_EQ(report.skipped, 0u);
  for (const auto& e : examples) {
    EXPECT_FALSE(e.source.empty());
    EXPECT_EQ(e.id.size(), 40u) << e.origin;  // hex SHA-1 of the story URL
    EXPECT_GE(split_sentences(e.target).size(), 2u) << e.origin;
    EXPECT_EQ(lead_sentences(e.source, 3).empty(), false);
  }
  EXPECT_EQ(examples[0].id, "238331e1a8c8ef744f3cc5bd82cee2f2f4f93536");
  EXPECT_EQ(examples[0].target.rfind("Jarryd Hayne quit the NRL in October to try and get into American Football .\n", 0),
            0u);
}
