#include "logging.hpp"

#include <atomic>
#include <cstdio>

#include "llama.h"

namespace fsgen::logging {
namespace {

std::mutex g_load_mutex;      // one capture at a time
std::mutex g_buffer_mutex;
std::string g_captured;  // error lines
std::string g_warnings;  // warning lines
std::atomic<bool> g_capturing{false};
std::atomic<bool> g_verbose{false};

void on_log(ggml_log_level level, const char* text, void*) {
  if (g_verbose.load()) std::fputs(text, stderr);
  if (!g_capturing.load()) return;
  std::lock_guard<std::mutex> lock(g_buffer_mutex);
  // CONT continues the previous message at its level; errors and warnings are kept apart so
  // that the reason for a refusal comes first in the exception's message.
  static ggml_log_level last = GGML_LOG_LEVEL_NONE;
  if (level != GGML_LOG_LEVEL_CONT) last = level;
  if (last != GGML_LOG_LEVEL_ERROR && last != GGML_LOG_LEVEL_WARN) return;
  std::string& buffer = last == GGML_LOG_LEVEL_ERROR ? g_captured : g_warnings;
  if (buffer.size() < 16384) buffer += text;
}

}  // namespace

void install_once() {
  static std::once_flag once;
  std::call_once(once, [] { llama_backend_init(); });
  // Every time, not once: another user of the same libllama in this process (llama-cpp-python
  // sets its own callback when imported) would otherwise get llama.cpp's log, and fsgen would
  // lose the load errors it reports.
  llama_log_set(on_log, nullptr);
}

void set_verbose(bool verbose) {
  if (verbose) g_verbose.store(true);
}

Capture::Capture() : lock_(g_load_mutex) {
  std::lock_guard<std::mutex> lock(g_buffer_mutex);
  g_captured.clear();
  g_warnings.clear();
  g_capturing.store(true);
}

Capture::~Capture() { g_capturing.store(false); }

std::string Capture::errors() const {
  std::lock_guard<std::mutex> lock(g_buffer_mutex);
  auto trim = [](std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  };
  const std::string errors = trim(g_captured), warnings = trim(g_warnings);
  if (warnings.empty()) return errors;
  if (errors.empty()) return warnings;
  return errors + "\n(llama.cpp also warned: " + warnings + ")";
}

}  // namespace fsgen::logging
