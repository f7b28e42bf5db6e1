#include "app/serving/page.h"

namespace heed::app::serving {
namespace {

void replace(std::string& text, const std::string& marker, std::string_view with) {
  const auto at = text.find(marker);
  if (at != std::string::npos) text.replace(at, marker.size(), with);
}

}  // namespace

const std::string& page_html() {
  static const std::string page = [] {
    std::string html(page_template());
    replace(html, "/*HEED_ATTENTION_CSS*/", "");
    replace(html, "/*HEED_ATTENTION_JS*/", "");
    return html;
  }();
  return page;
}

}  // namespace heed::app::serving
