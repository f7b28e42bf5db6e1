// app/views: the embedded assets and the standalone attention page (torch-free; also built into
// heed_core_tests, under ASan + UBSan with scripts/test.sh --sanitize). What the page draws is
// checked in a browser: tests/browser/test_attention_page.py (CTest AttentionPage).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "app/views/views.h"

using heed::app::views::attention_css;
using heed::app::views::attention_js;
using heed::app::views::attention_page;

TEST(Views, AssetsAreTheFilesUnderAppViewsAssets) {
  // Embedded whole: the first line and the last statement of each file.
  EXPECT_EQ(attention_js().substr(0, 2), "//");
  EXPECT_NE(attention_js().find("window.HeedAttention = {render: render};"), std::string::npos);
  EXPECT_EQ(attention_js().find("http://"), attention_js().find("http://www.w3.org/2000/svg"));  // no fetches
  EXPECT_EQ(attention_css().substr(0, 2), "/*");
  EXPECT_NE(attention_css().find(".heed-attention .ha-bar"), std::string::npos);
}

TEST(Views, PageHoldsEverythingAndEscapesDataAndTitle) {
  // Data holding "</script>" stays inside the JSON; the title is text.
  const nlohmann::json data = {{"kind", "classifier"}, {"tokens", {"</script><b>", "{{JS}}"}}};
  const auto page = attention_page(data, "a <title> & \"quotes\"");
  EXPECT_EQ(page.find("</script><b>"), std::string::npos);
  EXPECT_NE(page.find("\\u003c/script>\\u003cb>"), std::string::npos);
  EXPECT_NE(page.find("<title>a &lt;title&gt; &amp; &quot;quotes&quot;</title>"), std::string::npos);
  EXPECT_NE(page.find(std::string(attention_js())), std::string::npos);
  EXPECT_NE(page.find(std::string(attention_css())), std::string::npos);
  EXPECT_NE(page.find("\"{{JS}}\""), std::string::npos);  // a value is never searched for markers
  // The data parses back from the page.
  const auto open = page.find("id=\"heed-attention-data\">") + std::string("id=\"heed-attention-data\">").size();
  const auto close = page.find("</script>", open);
  EXPECT_EQ(nlohmann::json::parse(page.substr(open, close - open)), data);
  // A title that looks like a marker is text, not a marker.
  EXPECT_NE(attention_page(data, "{{JS}}").find("<title>{{JS}}</title>"), std::string::npos);
  // Bytes that are not UTF-8 in a token do not stop the page.
  EXPECT_NO_THROW(attention_page({{"tokens", {std::string("\xff\xfe")}}}, "bad bytes"));
}
