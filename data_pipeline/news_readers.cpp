#include "data_pipeline/news_readers.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/text.h"

namespace heed::data {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Sentence splitting
// ---------------------------------------------------------------------------------------------

bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_letter(unsigned char c) { return is_upper(c) || is_lower(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
bool is_terminator(char c) { return c == '.' || c == '!' || c == '?'; }

bool has_at(std::string_view s, size_t i, std::string_view what) { return s.substr(i, what.size()) == what; }

// Multi-byte quotes: “ ” ‘ ’ and « ».
constexpr std::string_view kLeftDouble = "\xE2\x80\x9C", kRightDouble = "\xE2\x80\x9D";
constexpr std::string_view kLeftSingle = "\xE2\x80\x98", kRightSingle = "\xE2\x80\x99";
constexpr std::string_view kLeftGuillemet = "\xC2\xAB", kRightGuillemet = "\xC2\xBB";

// Length of an always-closing quote or bracket at s[i] (not the straight quotes), else 0.
size_t closer_length(std::string_view s, size_t i) {
  const char c = s[i];
  if (c == ')' || c == ']' || c == '}') return 1;
  for (const auto q : {kRightDouble, kRightSingle, kRightGuillemet}) {
    if (has_at(s, i, q)) return q.size();
  }
  return 0;
}

// Length of something that may open a sentence at s[i]: a quote (straight or curly) or an opening
// bracket; else 0.
size_t opener_length(std::string_view s, size_t i) {
  const char c = s[i];
  if (c == '"' || c == '\'' || c == '(' || c == '[') return 1;
  for (const auto q : {kLeftDouble, kLeftSingle, kLeftGuillemet}) {
    if (has_at(s, i, q)) return q.size();
  }
  return 0;
}

// An uppercase letter at s[i]: ASCII, or Latin-1 Supplement capitals (U+00C0..U+00DE but U+00D7).
bool upper_at(std::string_view s, size_t i) {
  if (i >= s.size()) return false;
  const auto c = static_cast<unsigned char>(s[i]);
  if (is_upper(c)) return true;
  if (c == 0xC3 && i + 1 < s.size()) {
    const auto d = static_cast<unsigned char>(s[i + 1]);
    return d >= 0x80 && d <= 0x9E && d != 0x97;
  }
  return false;
}

// Whether the straight quotes `q` in s[begin, end) are unbalanced (an odd count), so that the next
// one closes a quotation. For ' an apostrophe between two letters ("don't") is not a quote.
bool odd_quotes(std::string_view s, size_t begin, size_t end, char q) {
  size_t count = 0;
  for (size_t i = begin; i < end; ++i) {
    if (s[i] != q) continue;
    if (q == '\'' && i > 0 && i + 1 < s.size() && is_letter(s[i - 1]) && is_letter(s[i + 1])) continue;
    ++count;
  }
  return count % 2 == 1;
}

// Words that end in a period without ending the sentence. "No" counts only before a digit.
bool is_abbreviation_word(std::string_view word) {
  static const std::vector<std::string_view> kWords = {
      "Mr",  "Mrs",  "Ms",  "Dr",  "Prof", "St",  "Jr",   "Sr",   "vs",     "Vs",  "etc", "Co",  "Inc", "Ltd",
      "Corp", "Gov", "Sen", "Rep", "Gen",  "Lt",  "Col",  "Capt", "Sgt",    "Rev", "Hon", "Mt",  "Ft",  "Fig",
      "fig", "Vol",  "vol", "al",  "approx", "Messrs", "Ph", "cf", "Jan", "Feb", "Apr", "Jun", "Jul", "Aug",
      "Sep", "Sept", "Oct", "Nov", "Dec"};
  return std::find(kWords.begin(), kWords.end(), word) != kWords.end();
}

// Whether the period at s[period] ends an abbreviation, an initial or a dotted short form rather
// than a sentence. `next` is the first visible character after it (s.size() when none).
bool is_abbreviation(std::string_view s, size_t period, size_t next) {
  size_t begin = period;
  while (begin > 0 && (is_letter(s[begin - 1]) || s[begin - 1] == '.')) --begin;
  std::string_view word = s.substr(begin, period - begin);
  while (!word.empty() && word.front() == '.') word.remove_prefix(1);
  if (word.empty()) return false;
  if (word.find('.') != std::string_view::npos) {
    // "U.S", "e.g", "i.e", "a.m", "Ph.D": every part one or two letters. "www.bbc.co.uk" is not.
    size_t part = 0;
    for (char c : word) {
      if (c == '.') {
        if (part == 0) return false;
        part = 0;
      } else if (++part > 2) {
        return false;
      }
    }
    return part > 0;
  }
  if (word.size() == 1 && is_upper(word[0]) && word[0] != 'I') {
    // An initial ("George W. Bush"), but not the end of "AT&T" or "3M".
    const bool glued = begin > 0 && (is_digit(s[begin - 1]) || s[begin - 1] == '&');
    if (!glued) return true;
  }
  if (word == "No" || word == "no" || word == "Nos") return next < s.size() && is_digit(s[next]);
  return is_abbreviation_word(word);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Reading helpers
// ---------------------------------------------------------------------------------------------

constexpr const char* kFormats[] = {"cnndm_stories", "cnndm_jsonl", "bbc", "aligned", "jsonl", "csv", "tsv", "auto"};

// clean_text, counting UTF-8 replacements into *repaired.
std::string clean(std::string_view s, size_t* repaired) {
  return normalize_whitespace(replace_html_breaks(repair_utf8(s, repaired)));
}

// The target form: one sentence per line.
std::string sentence_lines(std::string_view text) {
  std::string out;
  for (const auto& sentence : split_sentences(text)) {
    if (!out.empty()) out += '\n';
    out += sentence;
  }
  return out;
}

std::string_view strip_bom(std::string_view s) {
  if (s.size() >= 3 && s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  return s;
}

// Lines of a file's content; a final newline does not start another line.
std::vector<std::string_view> split_lines(std::string_view body) {
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < body.size();) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    lines.push_back(body.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string extension(const std::string& path) { return lower(fs::path(path).extension().string()); }

std::string display(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// Natural order: runs of digits compare by value ("2.txt" before "10.txt", "a9" before "a10"),
// everything else byte by byte; names that tie ("01" and "1") fall back to plain order.
bool name_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      size_t ei = i, ej = j;
      while (ei < a.size() && is_digit(a[ei])) ++ei;
      while (ej < b.size() && is_digit(b[ej])) ++ej;
      std::string_view da(a.data() + i, ei - i), db(b.data() + j, ej - j);
      while (da.size() > 1 && da.front() == '0') da.remove_prefix(1);
      while (db.size() > 1 && db.front() == '0') db.remove_prefix(1);
      if (da.size() != db.size()) return da.size() < db.size();
      if (da != db) return da < db;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  if ((i < a.size()) != (j < b.size())) return j < b.size();
  return a < b;
}

// Visible entries of `folder` (hidden ones such as .DS_Store are ignored): sub-folders when
// `folders`, else regular files; sorted with name_less. Throws InputError when it cannot be listed.
std::vector<std::string> list_names(const fs::path& folder, bool folders) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(folder, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code stat_ec;
    const bool want = folders ? it->is_directory(stat_ec) : it->is_regular_file(stat_ec);
    const std::string name = it->path().filename().string();
    if (want && !name.empty() && name[0] != '.') names.push_back(name);
  }
  if (ec) throw InputError(fmt::format("{}: cannot list the folder: {}", folder.string(), ec.message()));
  std::sort(names.begin(), names.end(), name_less);
  return names;
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Appends an example after the empty checks; counts its UTF-8 repair when kept.
void add_example(std::vector<SummaryExample>& out, BadRecords& bad, SummaryExample example, size_t repaired,
                 const char* source_name, const char* target_name) {
  if (example.source.empty()) {
    bad(fmt::format("{}: empty {}", example.origin, source_name));
    return;
  }
  if (example.target.empty()) {
    bad(fmt::format("{}: empty {}", example.origin, target_name));
    return;
  }
  if (repaired) ++bad.report().utf8_repaired;
  out.push_back(std::move(example));
}

// --- CNN/DailyMail .story files ---

// Story files of a folder: *.story in it, else in its stories/ sub-folder (the cnn/ or dailymail/
// folder of the distribution). Empty when there are none.
std::vector<std::string> story_files(const fs::path& dir) {
  for (const fs::path& folder : {dir, dir / "stories"}) {
    if (!is_dir(folder)) continue;
    std::vector<std::string> files;
    for (const auto& name : list_names(folder, false)) {
      if (extension(name) == ".story") files.push_back((folder / name).string());
    }
    if (!files.empty()) return files;
  }
  return {};
}

// One story: article lines, then "@highlight" lines each followed (after blank lines) by one
// highlight sentence; a non-blank line not right after an @highlight belongs to the article (as in
// See et al.'s make_datafiles.py). A dangling @highlight with no sentence is ignored. Nothing is
// stripped from the article ("(CNN) -- " stays, as in the Hugging Face cnn_dailymail release).
void read_story(const std::string& file, std::vector<SummaryExample>& out, BadRecords& bad) {
  size_t repaired = 0;
  const std::string content = repair_utf8(strip_bom(read_file(file)), &repaired);
  std::string article, highlights;
  bool next_is_highlight = false, any_marker = false;
  for (const auto line : split_lines(content)) {
    const std::string_view t = trim(line);
    if (t.empty()) continue;
    if (t == "@highlight") {
      next_is_highlight = any_marker = true;
    } else if (next_is_highlight) {
      highlights.append(t).append("\n");
      next_is_highlight = false;
    } else {
      article.append(t).append("\n");
    }
  }
  SummaryExample ex;
  ex.origin = file;
  ex.id = repair_utf8(fs::path(file).stem().string());  // a file name need not be UTF-8; ids go to JSON
  ex.source = clean(article, nullptr);
  ex.target = sentence_lines(clean(highlights, nullptr));
  if (!any_marker) {
    bad(file + ": no @highlight lines; a .story file ends with \"@highlight\" lines, each followed by a summary "
               "sentence");
    return;
  }
  add_example(out, bad, std::move(ex), repaired, "article", "highlights (@highlight with no sentence)");
}

std::vector<SummaryExample> read_stories(const std::string& path, BadRecords& bad) {
  std::vector<SummaryExample> out;
  if (!is_dir(path)) {
    read_story(path, out, bad);  // a single .story file
    return out;
  }
  const auto files = story_files(path);
  if (files.empty()) {
    throw InputError(fmt::format("{}: no .story files (in it or in {}/stories); expected a CNN/DailyMail "
                                 "stories folder such as cnn/stories",
                                 display(path), display(path)));
  }
  for (const auto& file : files) read_story(file, out, bad);
  return out;
}

// --- BBC News Summary ---

// The folder that holds "News Articles": `p` itself, its parent when `p` is "News Articles", or a
// "BBC News Summary" folder inside it (the Kaggle archive nests it up to twice).
std::optional<fs::path> find_bbc_root(const fs::path& p) {
  if (is_dir(p / "News Articles")) return p;
  if (p.filename() == "News Articles" && is_dir(p.parent_path() / "Summaries")) return p.parent_path();
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code stat_ec;
    if (it->is_directory(stat_ec) && lower(it->path().filename().string()) == "bbc news summary") {
      candidates.push_back(it->path());
    }
  }
  std::sort(candidates.begin(), candidates.end());
  for (const auto& c : candidates) {
    if (is_dir(c / "News Articles")) return c;
    for (const auto& inner : list_names(c, true)) {
      if (lower(inner) == "bbc news summary" && is_dir(c / inner / "News Articles")) return c / inner;
    }
  }
  return std::nullopt;
}

// Sorted union of two sorted name lists.
std::vector<std::string> merge_names(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> all(a);
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end(), name_less);
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Article files: headline line, blank line, body paragraphs separated by blank lines.
// bbc_target "summary": pairs News Articles/<topic>/NNN.txt with Summaries/<topic>/NNN.txt (an
// unpaired file on either side is a bad record); "headline": the article's first line is the
// target and Summaries/ is not read.
std::vector<SummaryExample> read_bbc(const std::string& path, const std::string& bbc_target, BadRecords& bad) {
  const auto root = find_bbc_root(path);
  if (!root) {
    throw InputError(fmt::format("{}: no \"News Articles\" folder; expected the BBC News Summary root holding "
                                 "\"News Articles/<topic>/NNN.txt\" and \"Summaries/<topic>/NNN.txt\"",
                                 display(path)));
  }
  const bool headline = bbc_target == "headline";
  const fs::path articles_dir = *root / "News Articles", summaries_dir = *root / "Summaries";
  if (!headline && !is_dir(summaries_dir)) {
    throw InputError(fmt::format("{}: no \"Summaries\" folder next to \"News Articles\" (set bbc_target to "
                                 "\"headline\" to use the headlines as targets)",
                                 display(root->string())));
  }
  const auto article_topics = list_names(articles_dir, true);
  const auto topics = headline ? article_topics : merge_names(article_topics, list_names(summaries_dir, true));
  std::vector<SummaryExample> out;
  for (const auto& topic : topics) {
    const auto txt = [](const fs::path& folder) {
      std::vector<std::string> names;
      if (!is_dir(folder)) return names;
      for (auto& name : list_names(folder, false)) {
        if (extension(name) == ".txt") names.push_back(std::move(name));
      }
      return names;
    };
    const auto articles = txt(articles_dir / topic);
    const auto summaries = headline ? std::vector<std::string>{} : txt(summaries_dir / topic);
    for (const auto& name : headline ? articles : merge_names(articles, summaries)) {
      const std::string article_path = (articles_dir / topic / name).string();
      const std::string summary_path = (summaries_dir / topic / name).string();
      if (!contains(articles, name)) {
        bad(fmt::format("{}: summary without an article (no {})", summary_path, article_path));
        continue;
      }
      if (!headline && !contains(summaries, name)) {
        bad(fmt::format("{}: article without a summary (no {})", article_path, summary_path));
        continue;
      }
      size_t repaired = 0;
      const std::string text = repair_utf8(strip_bom(read_file(article_path)), &repaired);
      // The headline is the first non-blank line; the body is everything after it.
      std::string_view rest = text;
      std::string_view title;
      while (!rest.empty() && title.empty()) {
        size_t end = rest.find('\n');
        if (end == std::string_view::npos) end = rest.size();
        title = trim(rest.substr(0, end));
        rest.remove_prefix(std::min(end + 1, rest.size()));
      }
      SummaryExample ex;
      ex.origin = article_path;
      ex.id = repair_utf8(topic + "/" + fs::path(name).stem().string());  // file names need not be UTF-8
      ex.source = clean(rest, nullptr);
      if (headline) {
        ex.target = clean(title, nullptr);
      } else {
        ex.target = sentence_lines(clean(strip_bom(read_file(summary_path)), &repaired));
      }
      if (ex.source.empty()) {
        bad(article_path + ": empty article body (the first line is the headline, the body follows it)");
        continue;
      }
      add_example(out, bad, std::move(ex), repaired, "article", headline ? "headline" : "summary");
    }
  }
  return out;
}

// --- line-aligned files ---

std::string derive_target_path(const std::string& source) {
  const fs::path p(source);
  const std::string ext = p.extension().string();
  if (ext == ".source") return fs::path(p).replace_extension(".target").string();
  if (ext == ".src") return fs::path(p).replace_extension(".tgt").string();
  std::string name = p.filename().string();
  const auto at = name.rfind("source");
  if (at == std::string::npos) {
    throw InputError(fmt::format("{}: cannot derive the target file from this name (expected *.source, *.src or "
                                 "\"source\" in the name); set target_path, or use a .jsonl/.csv/.tsv file",
                                 source));
  }
  name.replace(at, 6, "target");
  return (p.parent_path() / name).string();
}

std::vector<SummaryExample> read_aligned(const std::string& source_path, const std::string& target_option,
                                         BadRecords& bad) {
  const std::string target_path = target_option.empty() ? derive_target_path(source_path) : target_option;
  std::error_code ec;
  if (!fs::exists(target_path, ec)) {
    throw InputError(fmt::format("{}: the target file for {} does not exist", target_path, source_path));
  }
  const std::string source_text = read_file(source_path), target_text = read_file(target_path);
  const auto sources = split_lines(strip_bom(source_text)), targets = split_lines(strip_bom(target_text));
  if (sources.size() != targets.size()) {
    const auto lines = [](size_t count) { return fmt::format("{} line{}", count, count == 1 ? "" : "s"); };
    throw InputError(fmt::format("{}: {}, but {} has {}; aligned files hold one pair per line", source_path,
                                 lines(sources.size()), target_path, lines(targets.size())));
  }
  std::vector<SummaryExample> out;
  for (size_t i = 0; i < sources.size(); ++i) {
    size_t repaired = 0;
    SummaryExample ex;
    ex.origin = fmt::format("{}:{}", source_path, i + 1);
    ex.source = clean(sources[i], &repaired);
    ex.target = sentence_lines(clean(targets[i], &repaired));
    if (ex.source.empty()) {
      bad(ex.origin + ": empty source");
      continue;
    }
    if (ex.target.empty()) {
      bad(fmt::format("{}:{}: empty target", target_path, i + 1));
      continue;
    }
    if (repaired) ++bad.report().utf8_repaired;
    out.push_back(std::move(ex));
  }
  return out;
}

// --- tables ---

std::vector<SummaryExample> read_rows(const std::string& path, TableFormat format, const std::string& source_field,
                                      const std::string& target_field, OnError on_error, ReadReport* report,
                                      BadRecords& bad) {
  // read_table repairs UTF-8 and counts it per row; the clean-up below finds nothing more.
  const auto rows = read_table(path, format, on_error, report);
  std::vector<SummaryExample> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    const std::string* source = required_field(row, source_field, "source", bad);
    if (source == nullptr) continue;
    const std::string* target = required_field(row, target_field, "target", bad);
    if (target == nullptr) continue;
    SummaryExample ex;
    ex.origin = row.origin;
    const auto id = row.fields.find("id");
    if (id != row.fields.end()) ex.id = id->second;
    ex.source = clean(*source, nullptr);
    ex.target = sentence_lines(clean(*target, nullptr));
    const std::string source_name = fmt::format("source in field \"{}\"", source_field);
    const std::string target_name = fmt::format("target in field \"{}\"", target_field);
    add_example(out, bad, std::move(ex), 0, source_name.c_str(), target_name.c_str());
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> out;
  const size_t n = text.size();
  size_t start = 0;
  const auto emit = [&](size_t end) {
    const std::string_view sentence = trim(text.substr(start, end - start));
    if (!sentence.empty()) out.emplace_back(sentence);
    start = end;
  };
  for (size_t i = 0; i < n;) {
    const char c = text[i];
    if (c == '\n') {
      emit(i);
      start = ++i;
      continue;
    }
    if (!is_terminator(c)) {
      ++i;
      continue;
    }
    const size_t term = i;  // the first terminator of the run ("?!", "...")
    size_t j = i;
    while (j < n && is_terminator(text[j])) ++j;
    const bool single_period = j - term == 1 && c == '.';
    // Closing quotes and brackets stay with this sentence. A straight quote does when it is followed
    // by whitespace or the end, or when this sentence has an unbalanced one; otherwise it opens the
    // next sentence ("months.\"I think").
    size_t k = j;
    while (k < n) {
      if (const size_t len = closer_length(text, k)) {
        k += len;
      } else if (text[k] == '"' || text[k] == '\'') {
        const bool before_space = k + 1 >= n || is_space(text[k + 1]) || closer_length(text, k + 1) > 0 ||
                                  text[k + 1] == '"' || text[k + 1] == '\'';
        if (!before_space && !odd_quotes(text, start, k, text[k])) break;
        ++k;
      } else {
        break;
      }
    }
    const bool closed = k > j;
    if (k >= n) break;
    if (is_space(text[k])) {
      size_t m = k;
      while (m < n && is_space(text[m]) && text[m] != '\n') ++m;
      if (m >= n || text[m] == '\n') {  // the newline splits anyway
        i = m;
        continue;
      }
      const bool starts = upper_at(text, m) || is_digit(text[m]) || opener_length(text, m) > 0;
      if (starts && !(single_period && !closed && is_abbreviation(text, term, m))) emit(k);
      i = m;
      continue;
    }
    // Glued: "rose 5%.The", "stabilise.China's", "months.\"I think", "\"Hello.\"The".
    size_t m = k;  // past any opening quotes/brackets: "months.\"[Oil prices]", "year\".\"2005 will"
    while (m < n && opener_length(text, m) > 0) m += opener_length(text, m);
    const bool next_upper = upper_at(text, k) || (m > k && (upper_at(text, m) || (m < n && is_digit(text[m]))));
    if (next_upper && term > 0) {
      const auto before = static_cast<unsigned char>(text[term - 1]);
      const bool glue_ok = is_letter(before) || is_digit(before) || before == '%' || before >= 0x80 ||
                           before == ')' || before == ']' || before == '"' || before == '\'' || before == ' ';
      if (glue_ok && !(single_period && !closed && is_abbreviation(text, term, k))) emit(k);
    }
    i = k;
  }
  emit(n);
  return out;
}

std::string lead_sentences(std::string_view text, int n) {
  std::string out;
  if (n <= 0) return out;
  int taken = 0;
  for (const auto& sentence : split_sentences(text)) {
    if (taken++ == n) break;
    if (!out.empty()) out += '\n';
    out += sentence;
  }
  return out;
}

const std::vector<std::string>& summary_formats() {
  static const std::vector<std::string> kList(std::begin(kFormats), std::end(kFormats));
  return kList;
}

void validate_summary_format(const std::string& format) {
  std::string list;
  for (const char* f : kFormats) {
    if (format == f) return;
    list += (list.empty() ? "\"" : ", \"") + std::string(f) + "\"";
  }
  throw InputError(fmt::format("format: must be one of {}, got \"{}\"", list, format));
}

void validate_summary_options(const SummaryReadOptions& options) {
  validate_summary_format(options.format);
  if (options.bbc_target != "summary" && options.bbc_target != "headline") {
    throw InputError(
        fmt::format("bbc_target: must be \"summary\" or \"headline\", got \"{}\"", options.bbc_target));
  }
  if (options.source_field.empty()) throw InputError("source_field: must not be empty");
  if (options.target_field.empty()) throw InputError("target_field: must not be empty");
}

std::vector<SummaryExample> read_summarization(const std::string& path, const SummaryReadOptions& options,
                                               ReadReport* report) {
  validate_summary_options(options);
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(display(path) + ": does not exist");
  const bool dir = is_dir(path);
  std::string format = options.format;
  if (format == "auto") {
    const std::string ext = extension(path);
    if (dir) {
      if (find_bbc_root(path)) {
        format = "bbc";
      } else if (!story_files(path).empty()) {
        format = "cnndm_stories";
      } else {
        throw InputError(fmt::format("{}: cannot tell the corpus layout of this folder; expected the BBC News "
                                     "Summary root (\"News Articles/\", \"Summaries/\") or a folder of CNN/DailyMail "
                                     ".story files, or set the format",
                                     display(path)));
      }
    } else if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson") {
      format = "jsonl";
    } else if (ext == ".csv") {
      format = "csv";
    } else if (ext == ".tsv" || ext == ".tab") {
      format = "tsv";
    } else if (ext == ".story") {
      format = "cnndm_stories";
    } else {
      format = "aligned";
    }
  }
  const bool wants_dir = format == "bbc" || format == "cnndm_stories";
  if (dir && !wants_dir) {
    throw InputError(fmt::format("{}: is a folder, but format \"{}\" reads a file", display(path), format));
  }
  if (!dir && format == "bbc") {
    throw InputError(fmt::format("{}: is a file, but format \"bbc\" reads the BBC News Summary folder", path));
  }

  BadRecords bad(options.on_error, report);
  std::vector<SummaryExample> out;
  if (format == "cnndm_stories") {
    out = read_stories(path, bad);
  } else if (format == "bbc") {
    out = read_bbc(path, options.bbc_target, bad);
  } else if (format == "aligned") {
    out = read_aligned(path, options.target_path, bad);
  } else if (format == "cnndm_jsonl") {
    out = read_rows(path, TableFormat::kJsonl, "article", "highlights", options.on_error, report, bad);
  } else {
    out = read_rows(path, parse_table_format(format), options.source_field, options.target_field, options.on_error,
                    report, bad);
  }
  bad.report().records = out.size();
  return out;
}

}  // namespace heed::data
