// Generation on a worker thread, with its chunks queued for the caller: streaming without
// callbacks into the caller's thread, and a caller that can stay responsive (Ctrl-C) meanwhile.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "fsgen/result.hpp"

namespace fsgen {

class GenerationJob {
 public:
  // The work gets this job's own stop flag: pass it to Model/Pair::generate, so that cancel()
  // stops this job and nothing else (not another job running on the same object), also when
  // it is still waiting for the object's lock.
  using Work = std::function<Result(const ChunkCallback&, const std::atomic<bool>* stop)>;
  GenerationJob(Work work, bool collect_chunks);
  ~GenerationJob();  // cancels and joins: abandoning a job frees its work
  GenerationJob(const GenerationJob&) = delete;
  GenerationJob& operator=(const GenerationJob&) = delete;

  // Waits up to timeout_s for the next chunk. Returns a chunk, or nullopt when none came in time
  // or the job is finished (then done() is true and the queue is empty).
  std::optional<Chunk> next_chunk(double timeout_s);
  // Waits up to timeout_s for the end; true once finished.
  bool wait(double timeout_s);
  bool done() const;
  void cancel();
  // The result once finished; rethrows the worker's exception.
  Result take_result();

  // Cancels every job still running in the process and waits up to timeout_s for them to end.
  // For process exit (Python's atexit): a job whose owner was never freed must not keep
  // decoding while the process tears llama.cpp down.
  static void cancel_all(double timeout_s);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace fsgen
