#include "app/serving/page.h"

#include <cstddef>

#include "app/views/views.h"

namespace heed::app::views::assets {  // generated from app/serving/assets/index.html (app/views/embed_assets.cmake)
extern const char index_html[];
extern const std::size_t index_html_size;
}  // namespace heed::app::views::assets

namespace heed::app::serving {
namespace {

void replace(std::string& text, const std::string& marker, std::string_view with) {
  const auto at = text.find(marker);
  if (at != std::string::npos) text.replace(at, marker.size(), with);
}

}  // namespace

std::string_view page_template() { return {views::assets::index_html, views::assets::index_html_size}; }

const std::string& page_html() {
  static const std::string page = [] {
    std::string html(page_template());
    replace(html, "/*HEED_ATTENTION_CSS*/", views::attention_css());
    replace(html, "/*HEED_ATTENTION_JS*/", views::attention_js());
    return html;
  }();
  return page;
}

}  // namespace heed::app::serving
