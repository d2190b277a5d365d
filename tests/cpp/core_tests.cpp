// C++ tests of the core, without Python (also the sanitizer build's test bed).
//   core_tests SMALL.gguf LARGE.gguf
#include <algorithm>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "distribution.hpp"
#include "rpc/helper_protocol.hpp"
#include "fsgen/fsgen.hpp"
#include "fsgen/job.hpp"
#include "sampling.hpp"
#include "decoding/budget_router.hpp"
#include "decoding/fs_guard.hpp"
#include "text.hpp"
#include "check.hpp"

extern char** environ;

namespace {

using fsgen_test::check;

template <typename E>
bool throws(const std::function<void()>& f) {
  try {
    f();
  } catch (const E&) {
    return true;
  } catch (...) {
  }
  return false;
}

void test_text() {
  fsgen::TextAssembler text({"STOP"});
  std::string streamed = text.add("ab\xC3");  // "é" split across tokens
  streamed += text.add("\xA9" "cST");
  check(streamed == "ab\xC3\xA9" "c", "UTF-8 across tokens, stop prefix held back");
  streamed += text.add("OP tail");
  check(text.stopped() && text.text() == "ab\xC3\xA9" "c", "stop string across tokens cuts the text");
  check(text.char_count() == 4, "code points counted");
  check(fsgen::sanitize_utf8("a\xFF" "b", nullptr) == "a\xEF\xBF\xBD" "b", "invalid bytes become U+FFFD");
}

// The helper's replies: messages past 1 MiB (more than a socket holds) are read whole and in step
// with what follows; a reply announcing more than the bound is refused without reading it.
void test_frames() {
  using namespace fsgen::rpc;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    check(false, "socketpair");
    return;
  }
  std::string big(3u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  std::thread writer([&] {
    Reply r{};
    r.status = Status::Generation;
    r.message_bytes = static_cast<uint32_t>(big.size());
    send_all(fds[1], &r, sizeof(r));
    send_all(fds[1], big.data(), big.size());
    r = Reply{};
    r.status = Status::Ok;
    r.message_bytes = 5;
    send_all(fds[1], &r, sizeof(r));
    send_all(fds[1], "hello", 5);
    r = Reply{};
    r.message_bytes = kMaxMessageBytes + 1;
    send_all(fds[1], &r, sizeof(r));
  });
  Reply r{};
  std::string message;
  check(read_reply(fds[0], after(30), 30, &r, &message) == Frame::Whole && r.status == Status::Generation &&
            message == big,
        "a 3 MiB message is read whole");
  check(read_reply(fds[0], after(30), 30, &r, &message) == Frame::Whole && r.status == Status::Ok && message == "hello",
        "the reply after it is read in step");
  check(read_reply(fds[0], after(30), 30, &r, &message) == Frame::Oversize, "a message over the bound is refused");
  writer.join();
  check(read_reply(fds[0], after(0), 30, &r, &message) == Frame::None, "nothing sent: None, at once");
  r = Reply{};
  send_all(fds[1], &r, sizeof(r) / 2);
  close(fds[1]);
  check(read_reply(fds[0], after(30), 30, &r, &message) == Frame::Broken, "a reply cut short is Broken");
  close(fds[0]);
}

void test_distribution() {
  const float logits[] = {2.0f, 1.0f, 0.0f, -1.0f};
  const fsgen::Uncertainty u = fsgen::measure_uncertainty(logits, 4);
  double z = 0, h = 0;
  for (float x : logits) z += std::exp(x);
  for (float x : logits) h -= std::exp(x) / z * std::log(std::exp(x) / z);
  check(u.argmax == 0 && std::fabs(u.top1 - std::exp(2.0) / z) < 1e-5, "top-1 probability");
  check(std::fabs(u.margin - (std::exp(2.0) - std::exp(1.0)) / z) < 1e-5, "margin");
  check(std::fabs(u.entropy - h) < 1e-5, "entropy");

  fsgen::SamplingOptions options;
  options.temperature = 1.0f;
  options.top_k = 3;
  options.top_p = 1.0f;
  options.min_p = 0.0f;
  options.seed = 7;
  fsgen::Sampler a(options), b(options);
  fsgen::Candidates c;
  a.distribution(logits, 4, c);
  check(c.ids.size() == 3 && std::fabs(c.p[0] + c.p[1] + c.p[2] - 1.0f) < 1e-6, "top-k keeps k, normalised");
  bool same = true;
  for (int i = 0; i < 50; ++i) same = same && a.choose(logits, 4) == b.choose(logits, 4);
  check(same, "seeded sampling is deterministic");
}

void test_models(const std::string& small_path, const std::string& large_path) {
  fsgen::ModelOptions mo;
  mo.n_ctx = 512;
  mo.n_threads = 2;
  fsgen::Model small = fsgen::Model::load(small_path, mo);
  fsgen::Model large = fsgen::Model::load(large_path, mo);
  fsgen::Pair pair(small, large, std::nullopt, mo);
  const auto prompt = fsgen::Prompt::from_text("hello world");

  fsgen::GenerateOptions options;
  options.max_tokens = 40;
  options.trace = true;
  options.method = fsgen::Method::Large;
  const fsgen::Result reference = pair.generate(prompt, options);
  for (int draft : {0, 1, 3, 6}) {
    options.method = fsgen::Method::Speculative;
    options.speculative.draft = fsgen::DraftSource::Model;
    options.speculative.draft_max = draft;
    const fsgen::Result r = pair.generate(prompt, options);
    check(r.tokens == reference.tokens, "greedy speculative equals large (draft_max " + std::to_string(draft) + ")");
    int from_small = 0;
    for (auto s : r.trace.source) from_small += s == 0;
    check(from_small == r.stats.accepted, "accepted drafts are System 1's tokens");
  }
  for (fsgen::DraftSource source : {fsgen::DraftSource::Ngram, fsgen::DraftSource::Auto}) {
    options.speculative.draft = source;
    options.speculative.draft_max = 3;
    const fsgen::Result r = pair.generate(prompt, options);
    check(r.tokens == reference.tokens, "greedy speculative with n-gram/auto drafts equals large");
  }
  options.speculative = fsgen::SpeculativeOptions{};

  // One model drafting with n-grams (draft="ngram" in Python): the same greedy text.
  {
    fsgen::GenerateOptions o;
    o.max_tokens = 32;
    o.method = fsgen::Method::Large;
    o.speculative.draft = fsgen::DraftSource::None;
    const auto repeating = fsgen::Prompt::from_text("hello world hello world hello world hello");
    const fsgen::Result plain = large.generate(repeating, o);
    o.speculative.draft = fsgen::DraftSource::Ngram;
    o.speculative.draft_max = 3;
    const fsgen::Result drafted = large.generate(repeating, o);
    check(drafted.tokens == plain.tokens, "one model with n-gram drafts equals the model alone");
    check(drafted.stats.drafted_ngram > 0 && drafted.stats.drafted == drafted.stats.drafted_ngram,
          "one model's n-gram drafts are counted");
  }

  options.method = fsgen::Method::Oracle;
  const fsgen::Result oracle = pair.generate(prompt, options);
  check(oracle.tokens == reference.tokens, "oracle with System 2 = large emits large's tokens");
  options.method = fsgen::Method::Small;
  const fsgen::Result alone = small.generate(prompt, options);
  check(pair.generate(prompt, options).tokens == alone.tokens, "pair small equals the model alone (rollback/reuse)");

  std::string streamed;
  options.method = fsgen::Method::FastSlow;
  const fsgen::Result fs = pair.generate(prompt, options, [&](const fsgen::Chunk& c) {
    streamed += c.text;
    return true;
  });
  check(streamed == fs.text, "streamed text equals the result text");
  check(fs.trace.token.size() == static_cast<size_t>(fs.stats.n_tokens), "one trace row per token");

  check(throws<fsgen::ModelLoadError>([] { fsgen::Model::load("/nonexistent.gguf"); }), "missing file");
  options.max_tokens = -1;
  check(throws<fsgen::InvalidArgumentError>([&] { pair.generate(prompt, options); }), "negative max_tokens");
}

// Issue 6 under the sanitizers: damaged files, per-job cancellation, a queued job cancelled
// while another runs, models closed under a pair, cancel_all.
void test_reliability(const std::string& small_path, const std::string& large_path) {
  std::ifstream in(small_path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string damaged = small_path + ".damaged.gguf";
  for (size_t cut : {size_t(3), size_t(30), size_t(700), bytes.size() / 3, bytes.size() - 1}) {
    std::ofstream(damaged, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(cut));
    check(throws<fsgen::ModelLoadError>([&] { fsgen::Model::load(damaged); }),
          "truncated at " + std::to_string(cut) + " is refused");
  }
  // Bytes flipped all over the header (metadata keys, values, the tensor directory): refused with
  // ModelLoadError naming the file, or (if the damage happens to spare what matters) a model that
  // generates. Never another exception, never a crash.
  std::string flipped = bytes;
  for (size_t i = 24; i < 4000 && i < flipped.size(); i += 97) flipped[i] = static_cast<char>(flipped[i] ^ 0x5A);
  std::ofstream(damaged, std::ios::binary | std::ios::trunc).write(flipped.data(),
                                                                   static_cast<std::streamsize>(flipped.size()));
  std::string outcome;
  try {
    fsgen::ModelOptions tiny;
    tiny.n_ctx = 64;
    tiny.n_threads = 1;
    fsgen::Model model = fsgen::Model::load(damaged, tiny);
    fsgen::GenerateOptions few;
    few.max_tokens = 4;
    const fsgen::Result r = model.generate(fsgen::Prompt::from_text("hello"), few);
    outcome = r.tokens.size() == 4 ? "loaded and generated" : "loaded, generated " + std::to_string(r.tokens.size());
  } catch (const fsgen::ModelLoadError& e) {
    outcome = std::string(e.what()).find(damaged) != std::string::npos ? "refused" : std::string("refused: ") + e.what();
  } catch (const std::exception& e) {
    outcome = std::string("unexpected exception: ") + e.what();
  }
  std::printf("flipped bytes: %s\n", outcome.c_str());
  check(outcome == "refused" || outcome == "loaded and generated",
        "flipped bytes: a ModelLoadError naming the file, or a working model (got: " + outcome + ")");
  std::remove(damaged.c_str());

  fsgen::ModelOptions mo;
  mo.n_ctx = 2048;
  mo.n_threads = 1;
  fsgen::Model small = fsgen::Model::load(small_path, mo);
  fsgen::Model large = fsgen::Model::load(large_path, mo);
  auto pair = std::make_shared<fsgen::Pair>(small, large, std::nullopt, mo);
  const auto prompt = fsgen::Prompt::from_text("hello world");
  fsgen::GenerateOptions options;
  options.method = fsgen::Method::Small;
  options.max_tokens = 2000;
  auto job_on = [&](fsgen::Method method) {
    options.method = method;
    return std::make_unique<fsgen::GenerationJob>(
        [pair, prompt, options](const fsgen::ChunkCallback& cb, const std::atomic<bool>* stop) {
          return pair->generate(prompt, options, cb, stop);
        },
        true);
  };
  auto running = job_on(fsgen::Method::Small);
  check(running->next_chunk(10).has_value(), "the first job runs");
  auto queued = job_on(fsgen::Method::Speculative);
  queued->cancel();
  const fsgen::Result q = queued->take_result();
  check(q.finish_reason == fsgen::FinishReason::Cancelled && q.tokens.empty(), "a queued job cancelled at once");
  check(!running->done(), "cancelling the queued job left the running one alone");
  small.close();  // the pair holds its own handles
  large.close();
  running->cancel();
  const fsgen::Result r = running->take_result();
  check(r.finish_reason == fsgen::FinishReason::Cancelled && !r.tokens.empty(), "the running job cancelled");
  options.max_tokens = 10;
  options.method = fsgen::Method::Speculative;
  check(pair->generate(prompt, options).tokens.size() == 10, "the pair works after its models were closed");

  options.max_tokens = 2000;
  auto a = job_on(fsgen::Method::FastSlow);
  auto b = job_on(fsgen::Method::Large);
  a->next_chunk(10);
  fsgen::GenerationJob::cancel_all(10);
  check(a->wait(0) && b->wait(0), "cancel_all ends every job");
  a.reset();  // destroying a job joins it
  b.reset();
  pair->close();
  check(throws<fsgen::InvalidArgumentError>([&] { pair->generate(prompt, options); }), "a closed pair refuses");
}

// The budget router on synthetic entropies: the share within 3 points over every prefix of at
// least 64 tokens, whatever the entropies look like, and the calls on the uncertain tokens.
void test_budget_router() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const char* kinds[] = {"uniform", "code-like", "all equal", "rising"};
  for (int kind = 0; kind < 4; ++kind) {
    for (float share : {0.025f, 0.1f, 0.2f, 0.5f, 1.0f}) {
      fsgen::BudgetRouter router(share, 0.5f);
      double worst = 0, called_sum = 0, other_sum = 0;
      int called = 0, other = 0;
      for (int t = 0; t < 400; ++t) {
        const float u = unit(rng);
        const float e = kind == 0 ? 3 * u : kind == 1 ? (u < 0.9f ? 0.01f * unit(rng) : 2 * unit(rng))
                        : kind == 2 ? 0.0f : u + 0.01f * t;
        const bool c = router.consults(e);
        (c ? called_sum : other_sum) += e;
        (c ? called : other) += 1;
        if (t + 1 >= 64) worst = std::max(worst, std::fabs(double(router.consulted()) / router.decided() - share));
      }
      const std::string what = std::string(kinds[kind]) + " at share " + std::to_string(share);
      check(worst <= 0.03, "budget router holds the share within 3 points: " + what);
      if (kind == 0 && share < 1) {
        check(called_sum / called > other_sum / other + 1.0, "budget router spends on uncertain tokens: " + what);
      }
    }
  }
  check(fsgen::BudgetRouter(0.1f, 0.5f).consults(std::nanf("")), "a NaN entropy counts as the most uncertain");
}

// The guard hands over after a window of mostly consulted tokens, for longer spans while the
// share stays high, and starts again from a short span once it is low.
void test_fs_guard() {
  using fsgen::FsGuard;
  FsGuard guard;
  for (int i = 0; i < FsGuard::kWindow - 1; ++i) guard.observe_fs_token(i % 2 == 0);
  check(!guard.handing_over(), "no hand-over before a full window");
  guard.observe_fs_token(true);  // 9 of 16 consulted
  check(guard.handing_over(), "hand-over when System 2 is consulted on half the window or more");
  guard.observe_handover(FsGuard::kFirstSpan - 1);
  check(guard.handing_over(), "the hand-over lasts its span");
  guard.observe_handover(1);
  check(!guard.handing_over(), "fs routes again after the span");
  for (int i = 0; i < FsGuard::kWindow; ++i) guard.observe_fs_token(true);
  check(guard.handing_over(), "still high: hand over again");
  guard.observe_handover(2 * FsGuard::kFirstSpan - 1);
  check(guard.handing_over(), "the second span is twice as long");
  guard.observe_handover(1);
  for (int i = 0; i < FsGuard::kWindow; ++i) guard.observe_fs_token(i % 4 == 0);
  check(!guard.handing_over(), "a quarter consulted: fs keeps writing");
  for (int i = 0; i < FsGuard::kWindow && !guard.handing_over(); ++i) guard.observe_fs_token(true);
  check(guard.handing_over(), "high again: hand over");
  guard.observe_handover(FsGuard::kFirstSpan);
  check(!guard.handing_over(), "after a low window the span is short again");
  // With the large model's cost of a token known: a quarter consulted hands over only if fs's
  // tokens cost more than the large model's.
  FsGuard cheap, dear, unknown;
  for (int i = 0; i < FsGuard::kWindow; ++i) {
    cheap.observe_fs_token(i % 4 == 0, 0.05, 0.1);
    dear.observe_fs_token(i % 4 == 0, 0.15, 0.1);
    unknown.observe_fs_token(i % 4 == 0, 0.15, 0.0);
  }
  check(!cheap.handing_over() && dear.handing_over() && !unknown.handing_over(),
        "costs known: hand over only where fs is measured slower than the large model");
}

// With costs known the guard keeps fs's loss against large-only near 2% of the time over a long
// generation where fs is half again as slow, trying fs again now and then; where fs pays, it
// never hands over.
void test_fs_guard_loss_budget() {
  using fsgen::FsGuard;
  const double large = 0.1;
  for (const double fs_token : {0.15, 0.3}) {
    FsGuard guard;
    double spent = 0;
    int fs_tokens = 0;
    for (int token = 0; token < 4000; ++token) {
      if (guard.handing_over()) {
        guard.observe_handover(1, large, large);
        spent += large;
      } else {
        guard.observe_fs_token(true, fs_token, large);
        spent += fs_token;
        ++fs_tokens;
      }
    }
    check(spent < 1.03 * 4000 * large, "fs half again as slow: within 3% of large-only overall");
    check(fs_tokens > 4 && fs_tokens < 200, "fs is tried again now and then, briefly");
  }
  FsGuard paying;
  for (int token = 0; token < 4000; ++token) paying.observe_fs_token(token % 3 == 0, 0.05, large);
  check(!paying.handing_over(), "fs that pays is never handed over");
}

// System 1's unconsulted tokens look cheap until System 2 reads them in one batch. With that
// read counted, fs hands over at its first judgement where the read costs nearly a step per row
// (a linear curve), and keeps writing where it is cheap (a sweet spot) or not yet known.
void test_fs_guard_counts_system2s_pending_read() {
  using fsgen::FsGuard;
  const double large = 0.1, small = 0.066;
  FsGuard linear, sweet_spot, unknown;
  for (int unread = 1; unread <= FsGuard::kMinTokens; ++unread) {
    linear.observe_fs_token(false, small, large, 0.076 * (unread - 1));
    sweet_spot.observe_fs_token(false, small, large, 0.02 * (unread - 1));
    unknown.observe_fs_token(false, small, large);
  }
  check(linear.handing_over(), "System 2's pending read makes cheap System 1 tokens dear: hand over");
  check(!sweet_spot.handing_over() && !unknown.handing_over(), "a cheap read (or none known) keeps fs");
}

// Prose (System 2 on most tokens) is judged after 4 fs tokens; one early System 2 call waits for
// 8. fs resumes after a hand-over only where its balance can pay System 1's catch-up.
void test_fs_guard_judging_and_catch_up() {
  using fsgen::FsGuard;
  const double large = 0.1;
  FsGuard prose;
  int written = 0;
  while (!prose.handing_over() && written < 16) {
    prose.observe_fs_token(true, 0.16, large);
    ++written;
  }
  check(written == FsGuard::kEarlyTokens, "prose is handed over after 4 fs tokens");
  FsGuard code;
  for (int i = 0; i < FsGuard::kMinTokens; ++i) code.observe_fs_token(i == 1, i == 1 ? 0.25 : 0.06, large);
  check(!code.handing_over(), "one early System 2 call does not hand code over");

  for (const double handover_token : {0.1, 0.05}) {  // at large-only's pace; faster (n-gram drafts)
    FsGuard guard;
    int fs_tokens = 0, since_fs = 0;
    for (int token = 0; token < 2000; ++token) {
      if (guard.handing_over()) {
        ++since_fs;
        guard.observe_handover(1, handover_token, large, 0.5 * large * since_fs);  // catch-up per token
      } else {
        guard.observe_fs_token(true, 0.16, large);
        since_fs = 0;
        ++fs_tokens;
      }
    }
    // The hand-over's savings are weighed against its own pace, not large-only's: a faster
    // hand-over does not buy fs back a catch-up it cannot pay.
    check(fs_tokens == FsGuard::kEarlyTokens, "fs is not resumed where its catch-up cannot be paid");
  }
}

// A model on an RPC server (the fsgen-rpc executable beside libllama, on loopback): the same
// greedy tokens as local, and a typed error, not an abort, when the server dies.
pid_t start_rpc_server(int port) {
  const std::string helper = fsgen::rpc_helper_path();
  std::vector<std::string> args = {helper, "serve", "--port", std::to_string(port), "--threads", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int r = posix_spawn(&pid, helper.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (r != 0) return -1;
  for (int i = 0; i < 400; ++i) {  // until it listens (a bare connection is dropped by the server)
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool up = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (up) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return pid;
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

void test_remote(const std::string& small_path, const std::string& large_path) {
  const int port = free_port();
  const pid_t server = start_rpc_server(port);
  check(server > 0, "fsgen-rpc serve starts");
  if (server <= 0) return;
  fsgen::ModelOptions local_options;
  local_options.n_ctx = 256;
  local_options.n_threads = 1;
  fsgen::ModelOptions remote_options = local_options;
  remote_options.rpc = {"127.0.0.1:" + std::to_string(port)};
  remote_options.rpc_timeout = 10;
  const auto prompt = fsgen::Prompt::from_text("hello world");
  fsgen::GenerateOptions options;
  options.max_tokens = 16;
  options.method = fsgen::Method::Large;
  fsgen::Model small = fsgen::Model::load(small_path, local_options);
  fsgen::Model local = fsgen::Model::load(large_path, local_options);
  const fsgen::Result expected = local.generate(prompt, options);
  {
    fsgen::Model remote = fsgen::Model::load(large_path, remote_options);
    check(remote.generate(prompt, options).tokens == expected.tokens, "a remote model gives the local tokens");
    fsgen::Pair pair(small, remote, std::nullopt, local_options);
    check(pair.generate(prompt, options).tokens == expected.tokens, "a pair with System 2 remote");
    check(fsgen::remote_stats(remote).has_value() && !fsgen::remote_stats(local).has_value(), "remote_stats");
    kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
    options.max_tokens = 40;
    check(throws<fsgen::GenerationError>([&] { pair.generate(fsgen::Prompt::from_text("other text"), options); }),
          "a dead server gives GenerationError");
    check(pair.large_lost(), "the pair reports System 2 lost");
    options.method = fsgen::Method::Small;
    check(pair.generate(prompt, options).stats.n_tokens == 40, "System 1 still generates");
  }
  remote_options.rpc = {"127.0.0.1:" + std::to_string(free_port())};
  check(throws<fsgen::ModelLoadError>([&] { fsgen::Model::load(large_path, remote_options); }),
        "a refused connection gives ModelLoadError");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {  // the model tests are most of this program: never pass without them
    std::fprintf(stderr, "usage: %s SMALL.gguf LARGE.gguf (two models sharing a vocabulary)\n", argv[0]);
    return 2;
  }
  test_text();
  test_frames();
  test_distribution();
  test_budget_router();
  test_fs_guard();
  test_fs_guard_loss_budget();
  test_fs_guard_counts_system2s_pending_read();
  test_fs_guard_judging_and_catch_up();
  try {
    test_models(argv[1], argv[2]);
    test_reliability(argv[1], argv[2]);
    if (fsgen::build_info().rpc) test_remote(argv[1], argv[2]);
  } catch (const std::exception& e) {
    check(false, std::string("unexpected exception: ") + e.what());
  }
  return fsgen_test::report();
}
