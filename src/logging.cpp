#include "logging.hpp"

#include <atomic>
#include <cstdio>

#include "llama.h"

namespace fsgen::logging {
namespace {

std::mutex g_load_mutex;      // one capture at a time
std::mutex g_buffer_mutex;
std::string g_captured;
std::atomic<bool> g_capturing{false};
std::atomic<bool> g_verbose{false};

void on_log(ggml_log_level level, const char* text, void*) {
  if (g_verbose.load()) std::fputs(text, stderr);
  if (g_capturing.load() && (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN ||
                             level == GGML_LOG_LEVEL_CONT)) {
    std::lock_guard<std::mutex> lock(g_buffer_mutex);
    if (g_captured.size() < 16384) g_captured += text;
  }
}

}  // namespace

void install_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(on_log, nullptr);
    llama_backend_init();
  });
}

void set_verbose(bool verbose) {
  if (verbose) g_verbose.store(true);
}

Capture::Capture() : lock_(g_load_mutex) {
  std::lock_guard<std::mutex> lock(g_buffer_mutex);
  g_captured.clear();
  g_capturing.store(true);
}

Capture::~Capture() { g_capturing.store(false); }

std::string Capture::errors() const {
  std::lock_guard<std::mutex> lock(g_buffer_mutex);
  std::string out = g_captured;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace fsgen::logging
