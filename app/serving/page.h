// The web page at `/`: app/serving/assets/index.html, embedded at build time (app/views/embed_assets.cmake),
// with the attention views' CSS and JS (app/views/views.h) inlined, so it works offline.
#pragma once
#include <string>
#include <string_view>

namespace heed::app::serving {

std::string_view page_template();    // assets/index.html as written
const std::string& page_html();      // the page as served

}  // namespace heed::app::serving
