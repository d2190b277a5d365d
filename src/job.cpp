#include "fsgen/job.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <vector>
#include <exception>
#include <mutex>
#include <thread>

#include "fsgen/error.hpp"

namespace fsgen {
namespace {

// Live jobs, for cancel_all(): how to stop each and how to wait for it.
struct JobHooks {
  std::function<void()> stop;
  std::function<bool(double)> wait;
};
struct Registry {
  std::mutex mutex;
  uint64_t next_id = 0;
  std::map<uint64_t, JobHooks> jobs;
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: jobs may outlive static destruction
  return *r;
}

}  // namespace

struct GenerationJob::State {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Chunk> chunks;
  bool finished = false;
  bool stop = false;  // the consumer went away: end at the next chunk
  std::optional<Result> result;
  std::exception_ptr error;
  std::atomic<bool> stop_requested{false};  // cancel(): this job's own flag
  std::thread worker;
  uint64_t registry_id = 0;
};

GenerationJob::GenerationJob(Work work, bool collect_chunks) : state_(std::make_shared<State>()) {
  State* s = state_.get();
  s->worker = std::thread([s, work = std::move(work), collect_chunks] {
    ChunkCallback on_chunk;
    if (collect_chunks) {
      on_chunk = [s](const Chunk& chunk) {
        std::lock_guard<std::mutex> lock(s->mutex);
        if (s->stop) return false;
        s->chunks.push_back(chunk);
        s->changed.notify_all();
        return true;
      };
    }
    std::optional<Result> result;
    std::exception_ptr error;
    try {
      result = work(on_chunk, &s->stop_requested);
    } catch (const Error&) {
      error = std::current_exception();
    } catch (const std::bad_alloc&) {
      error = std::current_exception();
    } catch (const std::exception& e) {
      // A stray exception from llama.cpp (std::out_of_range, ...): report it as fsgen's own.
      error = std::make_exception_ptr(GenerationError(std::string("llama.cpp failed: ") + e.what()));
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(s->mutex);
    s->result = std::move(result);
    s->error = error;
    s->finished = true;
    s->changed.notify_all();
  });
  std::weak_ptr<State> weak = state_;
  JobHooks hooks{[weak] {
                   if (auto s = weak.lock()) s->stop_requested.store(true);
                 },
                 [weak](double timeout_s) {
                   auto s = weak.lock();
                   if (!s) return true;
                   std::unique_lock<std::mutex> lock(s->mutex);
                   return s->changed.wait_for(lock, std::chrono::duration<double>(timeout_s),
                                              [&] { return s->finished; });
                 }};
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  state_->registry_id = ++r.next_id;
  r.jobs.emplace(state_->registry_id, std::move(hooks));
}

void GenerationJob::cancel_all(double timeout_s) {
  std::vector<JobHooks> jobs;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& [id, hooks] : r.jobs) jobs.push_back(hooks);
  }
  for (const auto& job : jobs) job.stop();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (const auto& job : jobs) {
    const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    job.wait(std::max(0.0, left));
  }
}

GenerationJob::~GenerationJob() {
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.jobs.erase(state_->registry_id);
  }
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  if (!done()) cancel();
  if (state_->worker.joinable()) state_->worker.join();
}

std::optional<Chunk> GenerationJob::next_chunk(double timeout_s) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->changed.wait_for(lock, std::chrono::duration<double>(timeout_s),
                           [this] { return !state_->chunks.empty() || state_->finished; });
  if (state_->chunks.empty()) return std::nullopt;
  Chunk chunk = std::move(state_->chunks.front());
  state_->chunks.pop_front();
  return chunk;
}

bool GenerationJob::wait(double timeout_s) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  return state_->changed.wait_for(lock, std::chrono::duration<double>(timeout_s), [this] { return state_->finished; });
}

bool GenerationJob::done() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->finished && state_->chunks.empty();
}

void GenerationJob::cancel() { state_->stop_requested.store(true); }

Result GenerationJob::take_result() {
  wait(1e9);
  if (state_->worker.joinable()) state_->worker.join();
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->error) std::rethrow_exception(state_->error);
  if (!state_->result) throw std::runtime_error("the generation result was already taken");
  Result r = std::move(*state_->result);
  state_->result.reset();
  return r;
}

}  // namespace fsgen
