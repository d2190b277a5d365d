#include <sys/stat.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "planning/calibration.hpp"
#include "chat_template.hpp"
#include "fsgen/error.hpp"
#include "fsgen/model.hpp"
#include "fsgen/remote.hpp"
#include "ggml-rpc.h"
#include "generation.hpp"
#include "locked_call.hpp"
#include "logging.hpp"
#include "rpc/endpoint.hpp"
#include "rpc/remote_model.hpp"
#include "session.hpp"
#include "decoding/strategies.hpp"
#include "text.hpp"
#include "weights.hpp"

namespace fsgen {
namespace {

std::string meta_string(const llama_model* model, const char* key) {
  char buf[512];
  const int32_t n = llama_model_meta_val_str(model, key, buf, sizeof(buf));
  return n >= 0 ? std::string(buf, std::min<size_t>(n, sizeof(buf) - 1)) : std::string();
}

int default_threads() {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  // Hyper-threads do not help matrix-vector work: assume two per core past four.
  return static_cast<int>(std::min(8u, hw <= 4 ? hw : hw / 2));
}

void validate_options(const ModelOptions& o) {
  if (o.n_ctx < 8 || o.n_ctx > (1 << 24)) throw InvalidArgumentError("n_ctx must be between 8 and 16777216");
  if (o.n_batch < 1 || o.n_batch > (1 << 16)) throw InvalidArgumentError("n_batch must be between 1 and 65536");
  if (o.n_threads < 0 || o.n_threads > 1024) throw InvalidArgumentError("n_threads must be between 1 and 1024");
  if (o.prompt_cache_mib < 0) throw InvalidArgumentError("prompt_cache_mib must be >= 0 (0: off)");
  if (o.n_gpu_layers < -1) throw InvalidArgumentError("n_gpu_layers must be -1 (all) or >= 0");
  if (!(o.rpc_timeout > 0) || !std::isfinite(o.rpc_timeout)) throw InvalidArgumentError("rpc_timeout must be > 0 seconds");
  if (o.rpc.size() > GGML_RPC_MAX_SERVERS) {
    throw InvalidArgumentError("at most " + std::to_string(GGML_RPC_MAX_SERVERS) + " RPC servers per model");
  }
  for (const auto& endpoint : o.rpc) rpc::parse_endpoint(endpoint);  // throws on a malformed one
}

// Some damaged vocabularies load but make llama.cpp throw from tokenize or token_to_piece (e.g. an
// SPM tokenizer without byte tokens). Try both once, so such a file is refused at load with
// ModelLoadError instead of failing with a stray C++ exception at the first prompt.
void probe_vocabulary(const llama_vocab* vocab, const std::string& path) {
  static const std::string probe = "Hello, world!\n\t 123 \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x01~";
  try {
    std::vector<llama_token> tokens(probe.size() + 8);
    const int32_t n = llama_tokenize(vocab, probe.data(), static_cast<int32_t>(probe.size()), tokens.data(),
                                     static_cast<int32_t>(tokens.size()), true, true);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    char buf[256];
    for (int32_t i = 0; i < std::max(0, n); ++i) {
      if (tokens[i] < 0 || tokens[i] >= n_vocab) {
        throw std::runtime_error("the tokenizer produced token id " + std::to_string(tokens[i]) +
                                 " outside the vocabulary of " + std::to_string(n_vocab));
      }
      llama_token_to_piece(vocab, tokens[i], buf, sizeof(buf), 0, true);
    }
  } catch (const std::exception& e) {
    throw ModelLoadError("llama.cpp cannot tokenize text with the vocabulary of " + path + " (" + e.what() +
                         "); the tokenizer metadata is damaged");
  }
}

}  // namespace

std::shared_ptr<const Weights> load_weights(const std::string& path, const ModelOptions& options,
                                            const LoadExtras& extras) {
  logging::install_once();
  logging::set_verbose(options.verbose);
  check_gguf_file(path);
  const bool remote = !options.rpc.empty();

  llama_model_params params = llama_model_default_params();
  params.n_gpu_layers = options.n_gpu_layers;
  params.vocab_only = remote;
  params.devices = extras.devices;
  params.progress_callback = extras.progress;
  auto weights = std::make_shared<Weights>();
  {
    logging::Capture capture;
    weights->model.reset(llama_model_load_from_file(path.c_str(), params));
    if (!weights->model) {
      std::string reason = capture.errors();
      throw ModelLoadError("llama.cpp could not load " + path + (reason.empty() ? "" : ": " + reason));
    }
  }
  const llama_model* m = weights->model.get();
  weights->vocab = llama_model_get_vocab(m);
  probe_vocabulary(weights->vocab, path);
  ModelInfo& info = weights->info;
  info.path = path;
  info.architecture = meta_string(m, "general.architecture");
  info.name = meta_string(m, "general.name");
  if (info.name.empty()) info.name = path.substr(path.find_last_of("/\\") + 1);
  char desc[256];
  llama_model_desc(m, desc, sizeof(desc));
  info.description = desc;
  info.n_params = llama_model_n_params(m);
  info.size_bytes = llama_model_size(m);
  const std::string ftype = meta_string(m, "general.file_type");
  info.file_type = ftype.empty() ? -1 : std::atoi(ftype.c_str());
  info.n_vocab = llama_vocab_n_tokens(weights->vocab);
  info.n_layer = llama_model_n_layer(m);
  info.n_embd = llama_model_n_embd(m);
  info.n_ctx_train = llama_model_n_ctx_train(m);
  if (const char* tmpl = llama_model_chat_template(m, nullptr)) info.chat_template = tmpl;
  // Metadata strings come from the file: make them valid UTF-8 for Python.
  for (std::string* text : {&info.architecture, &info.name, &info.description, &info.chat_template}) {
    *text = sanitize_utf8(*text, nullptr);
  }
  if (remote) {
    weights->remote = std::make_shared<rpc::RemoteModel>(path, options, info.n_vocab);
    info.n_params = weights->remote->n_params();
    info.size_bytes = weights->remote->size_bytes();
    info.description = sanitize_utf8(weights->remote->description(), nullptr);
  }
  return weights;
}

// ---- Model ----

struct Model::Impl {
  std::shared_ptr<const Weights> weights;
  ModelOptions options;
  std::timed_mutex mutex;  // one generation at a time on this model's context
  std::atomic<bool> cancel{false};
  CancelFlags cancel_flags{&cancel, nullptr};  // the Session's abort callback reads these
  std::unique_ptr<Session> session;
  DraftPlanner planner;  // n-gram drafts verified by this model

  Session& own_session() {
    if (!session) session = make_session(weights, options, &cancel_flags);  // local or remote (RPC)
    return *session;
  }
  const Weights& w() const {
    if (!weights) throw InvalidArgumentError("this model is closed");
    return *weights;
  }
};

std::shared_ptr<const Weights> model_weights(const Model& model) {
  model.info();  // throws if closed
  return model.impl()->weights;
}

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Model Model::load(const std::string& path, const ModelOptions& options) {
  validate_options(options);
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  if (impl->options.n_threads == 0) impl->options.n_threads = default_threads();
  impl->weights = load_weights(path, impl->options);
  return Model(std::move(impl));
}

const ModelInfo& Model::info() const { return impl_->w().info; }
const ModelOptions& Model::options() const { return impl_->options; }
const llama_vocab* Model::vocab() const { return impl_->w().vocab; }
bool Model::closed() const { return impl_->weights == nullptr; }

std::vector<Token> Model::tokenize(std::string_view text, bool parse_special) const {
  const llama_vocab* v = vocab();
  if (text.size() > static_cast<size_t>(INT32_MAX / 2)) throw InvalidArgumentError("text too long to tokenize");
  if (sanitize_utf8(std::string(text), nullptr) != text) throw InvalidArgumentError("the text is not valid UTF-8");
  std::vector<Token> tokens(text.size() + 8);
  int32_t n = llama_tokenize(v, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                             static_cast<int32_t>(tokens.size()), true, parse_special);
  if (n < 0) {
    tokens.resize(static_cast<size_t>(-n));
    n = llama_tokenize(v, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), true, parse_special);
  }
  if (n < 0) throw InvalidArgumentError("tokenization failed");
  tokens.resize(static_cast<size_t>(n));
  return tokens;
}

std::string Model::piece(Token token) const {
  char buf[256];
  const int32_t n = llama_token_to_piece(vocab(), token, buf, sizeof(buf), 0, true);
  if (n >= 0) return std::string(buf, static_cast<size_t>(n));
  std::string big(static_cast<size_t>(-n), '\0');
  const int32_t m = llama_token_to_piece(vocab(), token, big.data(), static_cast<int32_t>(big.size()), 0, true);
  big.resize(static_cast<size_t>(std::max(0, m)));
  return big;
}

std::string Model::detokenize(const std::vector<Token>& tokens) const {
  const int n_vocab = info().n_vocab;
  for (Token t : tokens) {
    if (t < 0 || t >= n_vocab) {
      throw InvalidArgumentError("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                                 std::to_string(n_vocab - 1) + ")");
    }
  }
  std::string bytes;
  for (Token t : tokens) bytes += piece(t);
  return sanitize_utf8(bytes, nullptr);
}

bool Model::is_eog(Token token) const { return llama_vocab_is_eog(vocab(), token); }

std::string Model::apply_chat_template(const std::vector<ChatMessage>& messages, bool add_assistant) const {
  const std::string& tmpl = info().chat_template;
  if (tmpl.empty()) {
    throw TemplateError(info().path + " has no chat template; pass a plain prompt instead of messages");
  }
  if (messages.empty()) throw InvalidArgumentError("messages is empty");
  return render_chat_template(tmpl, messages, add_assistant, chat_special_tokens(vocab()), info().path);
}

std::vector<Token> render_prompt(const Model& model, const Prompt& prompt) {
  const std::string text = prompt.text ? *prompt.text : model.apply_chat_template(prompt.messages, true);
  if (text.empty()) throw InvalidArgumentError("the prompt is empty (the chat template rendered nothing)");
  return model.tokenize(text, true);
}

std::vector<Token> Model::prompt_tokens(const Prompt& prompt) const {
  prompt.check();
  return render_prompt(*this, prompt);
}

void Model::check(const Prompt& prompt, const GenerateOptions& options) const {
  prompt.check();
  options.validate();
}

Result Model::generate(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk,
                       const std::atomic<bool>* stop) {
  check(prompt, options);
  return run(prompt, options, on_chunk, stop);
}

std::unique_ptr<GenerationJob> Model::start(const Prompt& prompt, const GenerateOptions& options, bool stream) {
  check(prompt, options);
  return std::make_unique<GenerationJob>(
      [model = *this, prompt, options](const ChunkCallback& on_chunk, const std::atomic<bool>* stop) mutable {
        return model.run(prompt, options, on_chunk, stop);
      },
      stream);
}

Result Model::run(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk,
                  const std::atomic<bool>* stop) {
  // Everything that reads the weights happens under the lock (render_prompt throws if closed).
  const LockedCall call(impl_->mutex, impl_->cancel, impl_->cancel_flags, stop,
                        [&] { return render_prompt(*this, prompt); });
  if (!call.started()) return cancelled_before_start({}, options);
  const std::vector<Token>& tokens = call.tokens();
  // This generation prices from a snapshot of the table; its timings reach the model's afterwards.
  const CostTable table = impl_->planner.table();
  DraftPlanner planner = DraftPlanner::for_generation(table, options.sampling);
  auto strategy = make_one_model_strategy(impl_->own_session(), Source::System1, options.speculative, planner,
                                          impl_->options.n_batch);
  // llama.cpp pads the context to a multiple of 256: honour the n_ctx asked for, as Pair does.
  // One model writing alone: its decodes count as System 2's, as large-only's do in a pair.
  RunContext context{this, std::min(impl_->options.n_ctx, impl_->session->n_ctx()), impl_->session->n_vocab(),
                     &impl_->cancel_flags, false, nullptr, impl_->session.get()};
  const DraftPlanner pricing = DraftPlanner::for_generation(impl_->planner.calibrated_table(), options.sampling);
  context.pricing = &pricing;
  Result result = run_generation(*strategy, tokens, options, context, on_chunk);
  impl_->planner.fold(planner);
  result.cost_table = table.id();
  return result;
}

void Model::cancel() { impl_->cancel.store(true); }

std::optional<RemoteStats> remote_stats(const Model& model) {
  const auto weights = model_weights(model);
  if (!weights->remote) return std::nullopt;
  return weights->remote->stats();
}

DraftPlanner Model::planner() const {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  return impl_->planner;
}

CostCurve Model::calibrate() {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  impl_->w();  // throws if closed
  impl_->cancel.store(false);
  const int max_rows = std::min(impl_->options.n_batch, kMaxOutputRows);
  CostCurve curve = measure_costs(impl_->own_session(), nullptr, calibration_context(*this), max_rows);
  impl_->planner.set_calibration(curve);
  return curve;
}

void Model::set_calibration(const CostCurve& curve) {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  impl_->planner.set_calibration(curve);
}

CostTable Model::cost_table() const {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  return impl_->planner.table();
}

void Model::set_cost_table(const CostTable& table) {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  impl_->planner.set_table(table);
}

Model model_view(const Model& model) {
  auto impl = std::make_shared<Model::Impl>();
  impl->weights = model_weights(model);
  impl->options = model.options();
  return Model(std::move(impl));
}

void Model::close() {
  impl_->cancel.store(true);
  {
    std::lock_guard<std::timed_mutex> lock(impl_->mutex);
    impl_->session.reset();
    impl_->weights.reset();
  }
  release_free_memory();
}

void release_free_memory() {
#if defined(__GLIBC__)
  // A context's KV cache and compute buffers are large blocks allocated on a generation's worker
  // thread (its own malloc arena) and freed here: glibc keeps such freed blocks, and repeated
  // load/free cycles then grow the resident size. Hand them back to the system.
  malloc_trim(0);
#endif
}

}  // namespace fsgen
