// Corpus readers: IMDB folders, JSONL, CSV/TSV; bad input as file:line errors or counted skips.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/readers.h"
#include "data_pipeline/text.h"
#include "tests/test_utils.h"

using namespace heed::data;
using heed::InputError;
using heed::test::TempDir;

namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

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

std::vector<TextExample> read(const std::string& path, const std::string& format, OnError on_error,
                              ReadReport* report = nullptr) {
  return read_classification(path, format, "text", "label", on_error, report);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

// --- options and the report ---

TEST(ReaderOptions, ParseAcceptedValuesAndNameThemOnError) {
  EXPECT_EQ(parse_on_error("fail"), OnError::kFail);
  EXPECT_EQ(parse_on_error("skip"), OnError::kSkip);
  const std::string on_error = input_error([] { parse_on_error("ignore"); });
  EXPECT_NE(on_error.find("\"fail\""), std::string::npos) << on_error;
  EXPECT_NE(on_error.find("\"skip\""), std::string::npos) << on_error;
  EXPECT_NE(on_error.find("ignore"), std::string::npos) << on_error;

  EXPECT_EQ(parse_table_format("auto"), TableFormat::kAuto);
  EXPECT_EQ(parse_table_format("jsonl"), TableFormat::kJsonl);
  EXPECT_EQ(parse_table_format("csv"), TableFormat::kCsv);
  EXPECT_EQ(parse_table_format("tsv"), TableFormat::kTsv);
  const std::string format = input_error([] { parse_table_format("CSV"); });
  for (const char* name : {"auto", "jsonl", "csv", "tsv"}) EXPECT_NE(format.find(name), std::string::npos) << format;
}

TEST(ReadReport, KeepsTheFirstMessagesAndCountsAll) {
  ReadReport report;
  for (int i = 0; i < 25; ++i) report.add_skip("m" + std::to_string(i));
  EXPECT_EQ(report.skipped, 25u);
  ASSERT_EQ(report.messages.size(), 10u);
  EXPECT_EQ(report.messages.front(), "m0");
  EXPECT_EQ(report.messages.back(), "m9");
}

// --- IMDB ---

TEST(Imdb, ReadsLabelsRatingsAndBreaksInIdOrder) {
  const std::string train = heed::test::fixture("aclImdb_mini/train");
  ReadReport report;
  const auto examples = read_imdb(train, OnError::kFail, &report);
  ASSERT_EQ(examples.size(), 6u);  // train/unsup is ignored
  EXPECT_EQ(report.records, 6u);
  EXPECT_EQ(report.skipped, 0u);
  // neg first, then pos; numeric id order within a class (2 before 10, not after it).
  const std::vector<std::pair<std::string, int>> expected = {{"neg", 4},  {"neg", 1}, {"neg", 2},
                                                             {"pos", 10}, {"pos", 8}, {"pos", 9}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(examples[i].label, expected[i].first) << i;
    EXPECT_EQ(examples[i].rating, expected[i].second) << i;
  }
  EXPECT_EQ(examples[0].origin, train + "/neg/1_4.txt");
  EXPECT_EQ(examples[5].origin, train + "/pos/10_9.txt");
  // <br /> becomes a newline, runs of breaks one newline; whitespace is normalised and trimmed.
  EXPECT_EQ(examples[0].text, "Not worth the ticket.");
  EXPECT_EQ(examples[1].text, "Terrible plot.\nAwful acting.");
  EXPECT_EQ(examples[3].text, "Best movie of the year.");
  EXPECT_EQ(examples[4].text, "Loved it!\nWould watch again.");
  EXPECT_EQ(examples[5].text, "A wonderful film.\nThe acting was superb.");
  // The same call gives the same result.
  const auto again = read_imdb(train, OnError::kFail, nullptr);
  ASSERT_EQ(again.size(), examples.size());
  for (size_t i = 0; i < again.size(); ++i) EXPECT_EQ(again[i].origin, examples[i].origin);
}

TEST(Imdb, RootFolderSaysWhichFolderToPass) {
  const std::string root = heed::test::fixture("aclImdb_mini");
  for (const std::string& path : {root, root + "/"}) {
    const std::string message = input_error([&] { read_imdb(path, OnError::kSkip, nullptr); });
    EXPECT_TRUE(starts_with(message, root + ": ")) << message;
    EXPECT_NE(message.find(root + "/train or " + root + "/test"), std::string::npos) << message;
  }
}

TEST(Imdb, MissingFoldersAreInputErrorsNamingThePath) {
  TempDir dir;
  dir.write("split/pos/0_8.txt", "good");
  const std::string split = dir.str() + "/split";
  std::string message = input_error([&] { read_imdb(split, OnError::kSkip, nullptr); });
  EXPECT_TRUE(starts_with(message, split + ": ")) << message;
  EXPECT_NE(message.find("neg/"), std::string::npos) << message;
  EXPECT_NE(message.find("<id>_<rating>.txt"), std::string::npos) << message;

  message = input_error([&] { read_imdb(dir.str() + "/nowhere", OnError::kSkip, nullptr); });
  EXPECT_TRUE(starts_with(message, dir.str() + "/nowhere: does not exist")) << message;
  EXPECT_NE(message.find("aclImdb/train"), std::string::npos) << message;

  message = input_error([&] { read_imdb(split + "/pos/0_8.txt", OnError::kSkip, nullptr); });
  EXPECT_NE(message.find("is a file"), std::string::npos) << message;
}

TEST(Imdb, BadFileNamesAndEmptyReviewsFailOrAreSkipped) {
  TempDir dir;
  dir.write("pos/0_9.txt", "fine<br />film");
  dir.write("neg/5_2.txt", "poor");
  const std::string bad_name = dir.write("neg/notes.txt", "not a review");
  dir.write("neg/7_x.txt", "rating is not a number");
  const std::string empty = dir.write("pos/3_8.txt", " <br /> \n");
  dir.write("pos/.DS_Store", "hidden files are ignored, not bad records");

  const std::string message = input_error([&] { read_imdb(dir.str(), OnError::kFail, nullptr); });
  EXPECT_NE(message.find("file name is not <id>_<rating>.txt"), std::string::npos) << message;
  EXPECT_TRUE(starts_with(message, dir.str() + "/neg/")) << message;

  ReadReport report;
  const auto examples = read_imdb(dir.str(), OnError::kSkip, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].text, "poor");
  EXPECT_EQ(examples[1].text, "fine\nfilm");
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.skipped, 3u);
  ASSERT_EQ(report.messages.size(), 3u);
  std::string all;
  for (const auto& m : report.messages) all += m + "\n";
  EXPECT_NE(all.find(bad_name + ": file name is not"), std::string::npos) << all;
  EXPECT_NE(all.find(empty + ": empty review"), std::string::npos) << all;
}

TEST(Imdb, InvalidUtf8IsRepairedAndCounted) {
  TempDir dir;
  dir.write("pos/0_9.txt", "caf\xE9 au lait");  // Latin-1 é
  dir.write("neg/0_1.txt", "clean");
  ReadReport report;
  const auto examples = read_imdb(dir.str(), OnError::kFail, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[1].text, "caf" + kFFFD + " au lait");
  EXPECT_EQ(report.utf8_repaired, 1u);
}

TEST(Imdb, ThousandsOfFilesReadQuickly) {
  namespace fs = std::filesystem;
  TempDir dir;
  constexpr int kPerClass = 2500;
  // Hard links to one review per class: writing thousands of files is slow on a busy disk, reading
  // them through distinct directory entries costs the reader the same.
  const fs::path pos = dir.write("pos/0_7.txt", "A fine film.<br /><br />I liked it a lot.");
  const fs::path neg = dir.write("neg/0_1.txt", "A dull film.<br /><br />I did not like it.");
  for (int i = 1; i < kPerClass; ++i) {
    for (const auto& [source, name] : {std::pair{pos, fmt::format("pos/{}_{}.txt", i, 7 + i % 4)},
                                       std::pair{neg, fmt::format("neg/{}_{}.txt", i, 1 + i % 4)}}) {
      std::error_code ec;
      fs::create_hard_link(source, dir.path() / name, ec);
      if (ec) fs::copy_file(source, dir.path() / name);
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const auto examples = read_imdb(dir.str(), OnError::kFail, nullptr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(examples.size(), 2u * kPerClass);
  EXPECT_EQ(examples[kPerClass - 1].origin,
            fmt::format("{}/neg/{}_{}.txt", dir.str(), kPerClass - 1, 1 + (kPerClass - 1) % 4));
  EXPECT_EQ(examples[kPerClass].text, "A fine film.\nI liked it a lot.");
  // The full 25,000 files must take well under a couple of seconds (about 0.2 s at -O1): 5,000
  // get a budget that holds under sanitizers on a busy machine but catches a real per-file cost.
  EXPECT_LT(seconds, 5.0);  // generous: catches quadratic behaviour, not a loaded CI machine
}

// --- JSONL ---

TEST(Jsonl, ReadsFieldsNumbersAndSkipsBlankLines) {
  TempDir dir;
  const std::string path =
      dir.write("data.jsonl",
                "\xEF\xBB\xBF{\"text\": \"good film\", \"label\": 1, \"id\": 7}\n"
                "\n"
                "   \r\n"
                "{\"text\": \"caf\\u00e9\\nnoir\", \"label\": \"pos\", \"score\": 0.5, \"ok\": true}\r\n"
                "{\"label\": false, \"text\": \"bad film\"}");  // no final newline
  ReadReport report;
  const auto rows = read_table(path, TableFormat::kJsonl, OnError::kFail, &report);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(report.records, 3u);
  EXPECT_EQ(rows[0].origin, path + ":1");
  EXPECT_EQ(rows[1].origin, path + ":4");
  EXPECT_EQ(rows[2].origin, path + ":5");
  EXPECT_EQ(rows[0].fields.at("label"), "1");
  EXPECT_EQ(rows[0].fields.at("id"), "7");
  EXPECT_EQ(rows[1].fields.at("text"), "caf\xC3\xA9\nnoir");
  EXPECT_EQ(rows[1].fields.at("score"), "0.5");
  EXPECT_EQ(rows[1].fields.at("ok"), "true");
  EXPECT_EQ(rows[2].fields.at("label"), "false");

  const auto examples = read(path, "jsonl", OnError::kFail, &report);
  ASSERT_EQ(examples.size(), 3u);
  EXPECT_EQ(examples[0].text, "good film");
  EXPECT_EQ(examples[0].label, "1");
  EXPECT_EQ(examples[0].rating, -1);
  EXPECT_EQ(examples[1].origin, path + ":4");
}

TEST(Jsonl, BadLineIsAnErrorNamingFileAndLine) {
  TempDir dir;
  const std::string path = dir.write("data.jsonl",
                                     "{\"text\": \"a\", \"label\": \"x\"}\n\n"
                                     "{\"text\": \"b\", \"label\": }\n"
                                     "[1, 2]\n"
                                     "{\"text\": \"c\", \"label\": \"y\"}\n"
                                     "{\"text\": \"d\", \"label\": 1e999}\n");
  const std::string message = input_error([&] { read(path, "jsonl", OnError::kFail); });
  EXPECT_TRUE(starts_with(message, path + ":3: not valid JSON")) << message;
  EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;  // no library noise

  ReadReport report;
  const auto examples = read(path, "jsonl", OnError::kSkip, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[1].text, "c");
  EXPECT_EQ(report.skipped, 3u);
  ASSERT_EQ(report.messages.size(), 3u);
  EXPECT_TRUE(starts_with(report.messages[1], path + ":4: expected a JSON object, got array")) << report.messages[1];
  EXPECT_TRUE(starts_with(report.messages[2], path + ":6: not valid JSON (number overflow")) << report.messages[2];
}

TEST(Jsonl, MissingNullNestedOrEmptyFieldsFailOrAreSkipped) {
  TempDir dir;
  const std::string path = dir.write("data.jsonl",
                                     "{\"text\": \"kept\", \"label\": \"pos\"}\n"
                                     "{\"body\": \"wrong name\", \"label\": \"pos\"}\n"
                                     "{\"text\": null, \"label\": \"neg\"}\n"
                                     "{\"text\": \"nested label\", \"label\": {\"name\": \"neg\"}}\n"
                                     "{\"text\": [\"a\", \"list\"], \"label\": \"neg\"}\n"
                                     "{\"text\": \"  \", \"label\": \"neg\"}\n"
                                     "{\"text\": \"kept too\", \"label\": \"neg\"}\n");
  const std::string message = input_error([&] { read(path, "jsonl", OnError::kFail); });
  EXPECT_TRUE(starts_with(message, path + ":2: no text field \"text\"")) << message;

  ReadReport report;
  const auto examples = read(path, "jsonl", OnError::kSkip, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].text, "kept");
  EXPECT_EQ(examples[1].text, "kept too");
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.skipped, 5u);
  ASSERT_EQ(report.messages.size(), 5u);
  EXPECT_TRUE(starts_with(report.messages[2], path + ":4: no label field \"label\"")) << report.messages[2];
  EXPECT_TRUE(starts_with(report.messages[4], path + ":6: empty text")) << report.messages[4];
}

TEST(Jsonl, InvalidUtf8IsRepairedBeforeParsingAndCounted) {
  TempDir dir;
  const std::string path = dir.write("data.jsonl",
                                     "{\"text\": \"caf\xE9 cr\xE8me\", \"label\": \"pos\"}\n"
                                     "{\"text\": \"fine\", \"label\": \"neg\"}\n"
                                     "{\"text\": \"cut \xF0\x9F\x98\", \"label\": \"neg\"}\n");
  ReadReport report;
  const auto examples = read(path, "jsonl", OnError::kFail, &report);
  ASSERT_EQ(examples.size(), 3u);
  EXPECT_EQ(examples[0].text, "caf" + kFFFD + " cr" + kFFFD + "me");
  EXPECT_EQ(examples[2].text, "cut " + kFFFD);
  EXPECT_EQ(report.utf8_repaired, 2u);  // records, not bytes
  EXPECT_EQ(report.skipped, 0u);
}

TEST(Jsonl, PrettyPrintedJsonGetsAHint) {
  TempDir dir;
  const std::string path = dir.write("data.json", "[\n  {\"text\": \"a\", \"label\": \"b\"}\n]\n");
  const std::string message = input_error([&] { read(path, "auto", OnError::kFail); });
  EXPECT_TRUE(starts_with(message, path + ":1: not valid JSON")) << message;
  EXPECT_NE(message.find("one complete object on each line"), std::string::npos) << message;
}

// --- CSV / TSV ---

TEST(Csv, QuotedFieldsHoldDelimitersQuotesAndNewlines) {
  TempDir dir;
  const std::string path = dir.write("data.csv",
                                     "\xEF\xBB\xBFid,text,label\r\n"
                                     "1,plain text,pos\r\n"
                                     "2,\"with, a comma\",neg\r\n"
                                     "3,\"she said \"\"wow\"\"\",pos\n"
                                     "4,\"two\nlines\r\nthree\",neg\n"
                                     "\n"
                                     "5,\"\",\"a, b\"\n"
                                     "6,quote \"inside\" unquoted,pos");
  ReadReport report;
  const auto rows = read_table(path, TableFormat::kCsv, OnError::kFail, &report);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(report.records, 6u);
  EXPECT_EQ(rows[0].fields.at("id"), "1");  // the BOM is not part of the first column's name
  EXPECT_EQ(rows[1].fields.at("text"), "with, a comma");
  EXPECT_EQ(rows[2].fields.at("text"), "she said \"wow\"");
  EXPECT_EQ(rows[3].fields.at("text"), "two\nlines\r\nthree");
  EXPECT_EQ(rows[4].fields.at("text"), "");
  EXPECT_EQ(rows[4].fields.at("label"), "a, b");
  EXPECT_EQ(rows[5].fields.at("text"), "quote \"inside\" unquoted");
  // Origins are the physical line where each record starts.
  const std::vector<int> lines = {2, 3, 4, 5, 9, 10};
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].origin, fmt::format("{}:{}", path, lines[i])) << i;

  // Row 5 has an empty text: a bad record for rows_to_examples, reported at its line.
  const std::string message = input_error([&] { read(path, "csv", OnError::kFail); });
  EXPECT_TRUE(starts_with(message, path + ":9: empty text")) << message;
  const auto examples = read(path, "csv", OnError::kSkip, &report);
  EXPECT_EQ(examples.size(), 5u);
  EXPECT_EQ(report.records, 5u);
}

TEST(Csv, WrongColumnCountFailsOrIsSkippedAtItsLine) {
  TempDir dir;
  const std::string path = dir.write("data.csv",
                                     "text,label\n"
                                     "\"multi\nline\",pos\n"
                                     "too,many,columns\n"
                                     "lonely\n"
                                     "fine,neg\n");
  const std::string message = input_error([&] { read(path, "csv", OnError::kFail); });
  EXPECT_EQ(message, path + ":4: 3 columns, but the header has 2");

  ReadReport report;
  const auto examples = read(path, "csv", OnError::kSkip, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].text, "multi\nline");
  EXPECT_EQ(examples[1].origin, path + ":6");
  EXPECT_EQ(report.skipped, 2u);
  EXPECT_EQ(report.messages[1], path + ":5: 1 columns, but the header has 2");
}

TEST(Csv, MalformedQuotesAndHeaders) {
  TempDir dir;
  const std::string after = dir.write("after.csv", "text,label\n\"closed\"junk,pos\nok,neg\n");
  EXPECT_TRUE(starts_with(input_error([&] { read(after, "csv", OnError::kFail); }),
                          after + ":2: text after the closing quote"));
  ReadReport report;
  EXPECT_EQ(read(after, "csv", OnError::kSkip, &report).size(), 1u);
  EXPECT_EQ(report.skipped, 1u);

  const std::string open = dir.write("open.csv", "text,label\nok,pos\n\"never closed,neg\nmore,pos\n");
  EXPECT_TRUE(starts_with(input_error([&] { read(open, "csv", OnError::kFail); }), open + ":3: a quoted field"));

  const std::string empty = dir.write("empty.csv", "");
  EXPECT_TRUE(starts_with(input_error([&] { read(empty, "csv", OnError::kSkip); }), empty + ": no header row"));
  const std::string twice = dir.write("twice.csv", "text,text\na,b\n");
  EXPECT_TRUE(starts_with(input_error([&] { read(twice, "csv", OnError::kSkip); }),
                          twice + ":1: column \"text\" appears twice"));
  // A header alone is a valid file without records.
  const std::string header_only = dir.write("header.csv", "text,label\n");
  EXPECT_TRUE(read(header_only, "csv", OnError::kFail).empty());
}

TEST(Csv, InvalidUtf8IsRepairedAndCounted) {
  TempDir dir;
  const std::string path = dir.write("data.csv", "text,label\n\"na\xEFve, \xC0\xAF\",pos\nfine,neg\nbad\xFF,neg\n");
  ReadReport report;
  const auto examples = read(path, "csv", OnError::kFail, &report);
  ASSERT_EQ(examples.size(), 3u);
  EXPECT_EQ(examples[0].text, "na" + kFFFD + "ve, " + kFFFD + kFFFD);
  EXPECT_EQ(examples[2].text, "bad" + kFFFD);
  EXPECT_EQ(report.utf8_repaired, 2u);
}

TEST(Tsv, TabSeparatedWithCommasInText) {
  TempDir dir;
  const std::string path = dir.write("data.tsv", "label\ttext\npos\tgood, really good\nneg\t\"tab\tinside\"\n");
  ReadReport report;
  const auto examples = read(path, "tsv", OnError::kFail, &report);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].text, "good, really good");
  EXPECT_EQ(examples[0].label, "pos");
  EXPECT_EQ(examples[1].text, "tab\tinside");
  EXPECT_EQ(examples[1].origin, path + ":3");
  EXPECT_EQ(report.records, 2u);
  // Read as CSV, the header is one column and the comma in row 2 makes two.
  EXPECT_EQ(input_error([&] { read(path, "csv", OnError::kFail); }), path + ":2: 2 columns, but the header has 1");
}

// --- format dispatch ---

TEST(ReadClassification, AutoPicksTheFormatFromExtensionOrFolder) {
  TempDir dir;
  const std::string jsonl = "{\"text\": \"t\", \"label\": \"l\"}\n";
  const std::string csv = "text,label\nt,l\n";
  for (const auto& [name, content] :
       std::vector<std::pair<std::string, std::string>>{{"a.jsonl", jsonl},
                                                        {"a.JSON", jsonl},
                                                        {"a.csv", csv},
                                                        {"a.tsv", "text\tlabel\nt\tl\n"},
                                                        {"a.tab", "text\tlabel\nt\tl\n"}}) {
    ReadReport report;
    const auto examples = read(dir.write(name, content), "auto", OnError::kFail, &report);
    ASSERT_EQ(examples.size(), 1u) << name;
    EXPECT_EQ(examples[0].text, "t") << name;
    EXPECT_EQ(examples[0].label, "l") << name;
    EXPECT_EQ(report.records, 1u) << name;
  }
  ReadReport report;
  const auto imdb = read(heed::test::fixture("aclImdb_mini/test"), "auto", OnError::kFail, &report);
  ASSERT_EQ(imdb.size(), 2u);
  EXPECT_EQ(imdb[0].label, "neg");
  EXPECT_EQ(imdb[1].rating, 7);
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(read(heed::test::fixture("aclImdb_mini/test"), "imdb", OnError::kFail).size(), 2u);
}

TEST(ReadClassification, UnknownFormatsAndExtensionsListTheChoices) {
  TempDir dir;
  const std::string txt = dir.write("reviews.txt", "text,label\nt,l\n");
  std::string message = input_error([&] { read(txt, "auto", OnError::kFail); });
  EXPECT_TRUE(starts_with(message, txt + ": cannot tell the format")) << message;
  for (const char* choice : {".jsonl", ".csv", ".tsv", "\"jsonl\"", "\"csv\"", "\"tsv\""}) {
    EXPECT_NE(message.find(choice), std::string::npos) << choice << " in " << message;
  }
  EXPECT_EQ(read(txt, "csv", OnError::kFail).size(), 1u);  // an explicit format ignores the extension

  message = input_error([&] { read(txt, "xml", OnError::kFail); });
  for (const char* choice : {"imdb", "jsonl", "csv", "tsv", "auto", "xml"}) {
    EXPECT_NE(message.find(choice), std::string::npos) << choice << " in " << message;
  }
  message = input_error([&] { read(dir.str(), "csv", OnError::kFail); });
  EXPECT_NE(message.find("is a folder"), std::string::npos) << message;
  message = input_error([&] { read(dir.str() + "/missing.csv", "auto", OnError::kFail); });
  EXPECT_EQ(message, dir.str() + "/missing.csv: does not exist");
  message = input_error([&] { read(txt, "imdb", OnError::kFail); });
  EXPECT_NE(message.find("is a file"), std::string::npos) << message;
}

// --- robustness: nothing a file holds may crash a reader ---

TEST(ReadersRobustness, RandomAndMutatedBytesNeverCrash) {
  TempDir dir;
  std::mt19937 rng(2024);
  const std::string seeds[] = {
      "{\"text\": \"caf\\u00e9 \\\"q\\\"\", \"label\": 1}\n{\"text\": [1,{}], \"label\": null}\n",
      "text,label\n\"a,\"\"b\"\"\nc\",pos\nplain,neg\n",
      "text\tlabel\n\"x\ty\"\tpos\n",
  };
  const char* extensions[] = {".jsonl", ".csv", ".tsv"};
  const char specials[] = {'"', ',', '\t', '\n', '\r',   '{',    '}',    '[',
                           ']', ':', '\\', '\0', '\xFF', '\xC3', '\xE2', '\xEF'};
  for (int round = 0; round < 300; ++round) {
    const size_t kind = round % 3;
    std::string content = seeds[kind];
    if (round % 2 == 0) {  // mutate a valid file
      for (int m = 0; m < 4; ++m) {
        const size_t at = rng() % content.size();
        content[at] = rng() % 2 ? specials[rng() % sizeof(specials)] : static_cast<char>(rng());
      }
    } else {  // random bytes after a valid header
      content = content.substr(0, content.find('\n') + 1);
      for (size_t n = rng() % 200; n > 0; --n) {
        content += rng() % 2 ? specials[rng() % sizeof(specials)] : static_cast<char>(rng());
      }
    }
    const std::string path = dir.write(fmt::format("f{}{}", round, extensions[kind]), content);
    for (OnError on_error : {OnError::kFail, OnError::kSkip}) {
      ReadReport report;
      try {
        for (const auto& e : read(path, "auto", on_error, &report)) {
          EXPECT_TRUE(is_valid_utf8(e.text));
          EXPECT_TRUE(is_valid_utf8(e.label));
        }
        EXPECT_LE(report.messages.size(), 10u);
      } catch (const InputError& e) {
        // A clear message naming the file is the only acceptable failure.
        EXPECT_TRUE(starts_with(e.what(), path + ":")) << e.what();
      }
    }
  }
  // An IMDB split full of random bytes, names included.
  for (int i = 0; i < 20; ++i) {
    std::string bytes(rng() % 50, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    dir.write(fmt::format("imdb/{}/{}_{}.txt", i % 2 ? "pos" : "neg", i, i % 11), bytes);
  }
  dir.write("imdb/pos/\xFF\xFE.txt", "odd name");
  ReadReport report;
  for (const auto& e : read_imdb(dir.str() + "/imdb", OnError::kSkip, &report)) EXPECT_TRUE(is_valid_utf8(e.text));
  EXPECT_GE(report.skipped, 1u);
}
