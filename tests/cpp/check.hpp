// The C++ tests' one assertion: counts passes and failures, prints what failed, and reports at
// the end (exit status 1 on any failure).
#pragma once
#include <cstdio>
#include <string>

namespace fsgen_test {

inline int passed = 0, failed = 0;

inline void check(bool ok, const std::string& what) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAILED: %s\n", what.c_str());
  }
}

inline int report() {
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace fsgen_test
