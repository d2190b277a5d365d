// The start of every generate() call on a Model or a Pair: one generation at a time per object,
// and the two ways to stop one (the object's cancel() and the call's own stop flag).
#pragma once
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "fsgen/types.hpp"
#include "session.hpp"

namespace fsgen {

// Waits for a generation lock, giving up when `stop` is set meanwhile (a cancelled job queued
// behind another must not wait for it). Returns an unlocked lock if it gave up.
inline std::unique_lock<std::timed_mutex> lock_unless_stopped(std::timed_mutex& mutex, const std::atomic<bool>* stop) {
  std::unique_lock<std::timed_mutex> lock(mutex, std::defer_lock);
  while (!lock.try_lock_for(std::chrono::milliseconds(5))) {
    if (stop != nullptr && stop->load()) break;
  }
  return lock;
}

// Sets CancelFlags::call for one generate() call (under the object's lock).
class CallFlagScope {
 public:
  CallFlagScope(CancelFlags& flags, const std::atomic<bool>* call) : flags_(flags) { flags_.call = call; }
  ~CallFlagScope() { flags_.call = nullptr; }
  CallFlagScope(const CallFlagScope&) = delete;
  CallFlagScope& operator=(const CallFlagScope&) = delete;

 private:
  CancelFlags& flags_;
};

// One generate() call, for its whole duration:
//  1. waits for the object's `mutex`, giving up if the call's `stop` is set meanwhile (then
//     started() is false: the caller returns a "cancelled" result without tokens);
//  2. under the lock, `prompt_tokens()` checks that the object is still open and tokenizes the
//     prompt: close() takes the same lock, so nothing is freed under a running call;
//  3. clears the object's cancel flag (a cancel() from before this call does not stop it) and
//     shows the call's own `stop` to the decodes' abort callback until the call ends.
class LockedCall {
 public:
  template <typename PromptTokens>
  LockedCall(std::timed_mutex& mutex, std::atomic<bool>& cancel, CancelFlags& flags, const std::atomic<bool>* stop,
             PromptTokens&& prompt_tokens)
      : lock_(lock_unless_stopped(mutex, stop)) {
    if (!lock_.owns_lock()) return;
    tokens_ = std::forward<PromptTokens>(prompt_tokens)();
    cancel.store(false);
    call_flag_.emplace(flags, stop);
  }
  LockedCall(const LockedCall&) = delete;
  LockedCall& operator=(const LockedCall&) = delete;

  bool started() const { return lock_.owns_lock(); }
  const std::vector<Token>& tokens() const { return tokens_; }

 private:
  std::unique_lock<std::timed_mutex> lock_;  // declared first: released last
  std::vector<Token> tokens_;
  std::optional<CallFlagScope> call_flag_;
};

}  // namespace fsgen
