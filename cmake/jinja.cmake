# llama.cpp's Jinja engine (common/jinja) for chat templates, and only it: the rest of llama.cpp's
# common library brings an HTTP client, a downloader, argument parsing and the tool-call parsers,
# none of which fsgen needs (LLAMA_BUILD_COMMON stays OFF). An object library, so its objects land
# inside fsgen_core's archive: the Python module, the installed C++ package and the tests get it
# without one more shared library to ship.
set(fsgen_llama_common "${FSGEN_LLAMA_CPP_DIR}/common")
add_library(fsgen_jinja OBJECT
  ${fsgen_llama_common}/jinja/lexer.cpp
  ${fsgen_llama_common}/jinja/parser.cpp
  ${fsgen_llama_common}/jinja/runtime.cpp
  ${fsgen_llama_common}/jinja/value.cpp
  ${fsgen_llama_common}/jinja/string.cpp
  ${fsgen_llama_common}/jinja/caps.cpp
  ${fsgen_llama_common}/unicode.cpp  # UTF-8 decoding for the string filters
  ${fsgen_llama_common}/json.cpp     # the engine takes its input as common_json (nlohmann inside)
)
# The engine's headers include one another as "jinja/x.h" and "json.h" from common/. SYSTEM: fsgen's
# -Wall -Wextra is for fsgen's code, not for llama.cpp's headers.
target_include_directories(fsgen_jinja SYSTEM PUBLIC "${fsgen_llama_common}")
# nlohmann/json (vendored in the tree); ggml.h for json.cpp's asserts.
target_link_libraries(fsgen_jinja PRIVATE vendor::nlohmann ggml)
target_compile_features(fsgen_jinja PUBLIC cxx_std_17)
# Rendering a template is not a hot path (once per request): -O1 keeps the build short, since these
# files (nlohmann's header above all) are slow to optimise.
if(NOT MSVC)
  target_compile_options(fsgen_jinja PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O1>)
endif()
