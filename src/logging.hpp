// llama.cpp's log: quiet by default, forwarded when verbose, captured during model loads so the
// error message can say what llama.cpp found. The hook is process-wide, so loads are serialised.
#pragma once
#include <mutex>
#include <string>

namespace fsgen::logging {

void install_once();                 // route llama.cpp's log through fsgen (quiet unless verbose)
void set_verbose(bool verbose);      // process-wide: llama.cpp has one log hook

// While alive, llama.cpp's warnings and errors are collected (and loads are serialised).
class Capture {
 public:
  Capture();
  ~Capture();
  std::string errors() const;  // the error lines first, then the warnings

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace fsgen::logging
