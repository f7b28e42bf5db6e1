# cmake -DINPUT=file -DOUTPUT=file.cpp -DSYMBOL=name -DNAMESPACE=ns -P embed_text.cmake
# Writes a .cpp defining `std::string_view ns::SYMBOL()` returning the file's bytes (a raw string
# literal; the build fails if the file holds the literal's closing delimiter).
file(READ "${INPUT}" content)
string(FIND "${content}" ")heed_asset\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )heed_asset\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/embed_text.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace ${NAMESPACE} {\n"
  "std::string_view ${SYMBOL}() {\n"
  "  static constexpr const char kText[] = R\"heed_asset(${content})heed_asset\";\n"
  "  return {kText, sizeof(kText) - 1};\n"
  "}\n"
  "}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
