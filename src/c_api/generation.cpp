// The C API's generation: blocking calls with an optional piece callback, streams pulled from a
// worker thread (GenerationJob), cancelling, and the results.
#include <limits>

#include "c_api/handles.hpp"
#include "fsgen/result.hpp"

using fsgen_c::guard;
using fsgen_c::require;

namespace {

fsgen::ChunkCallback piece_callback(fsgen_piece_fn on_piece, void* user_data) {
  if (on_piece == nullptr) return {};
  return [on_piece, user_data](const fsgen::Chunk& c) {
    return on_piece(user_data, c.text.data(), c.text.size(), int(c.source), int(c.draft)) == 0;
  };
}

// Ends the stream: its result, or its failure kept for later calls.
fsgen_status finish(fsgen_stream& s) {
  if (s.error == FSGEN_OK && !s.result) {
    s.error = guard([&] {
      s.result = s.job->take_result();
      return FSGEN_OK;
    });
    if (s.error != FSGEN_OK) s.error_message = fsgen_last_error_message();
  }
  if (s.error != FSGEN_OK) return fsgen_c::fail(s.error, s.error_message.c_str());
  return FSGEN_END;
}

void wait_for_end(fsgen_stream& s) {
  while (!s.job->wait(1.0)) {
  }
}

}  // namespace

extern "C" {

fsgen_status fsgen_pair_generate(fsgen_pair* pair, const char* prompt, const char* const* roles,
                                 const char* const* contents, size_t n_messages, const fsgen_options* options,
                                 fsgen_piece_fn on_piece, void* user_data, fsgen_result** out) {
  return guard([&] {
    require(pair, "pair");
    require(out, "out");
    const auto o = fsgen_c::generate_options(options, fsgen::OptionsTarget::Pair);
    auto r = pair->pair->generate(fsgen_c::make_prompt(prompt, roles, contents, n_messages), o,
                                  piece_callback(on_piece, user_data));
    *out = new fsgen_result{std::move(r)};
    return FSGEN_OK;
  });
}

fsgen_status fsgen_model_generate(fsgen_model* model, const char* prompt, const char* const* roles,
                                  const char* const* contents, size_t n_messages, const fsgen_options* options,
                                  fsgen_piece_fn on_piece, void* user_data, fsgen_result** out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    const auto o = fsgen_c::generate_options(options, fsgen::OptionsTarget::Model);
    auto r = model->model.generate(fsgen_c::make_prompt(prompt, roles, contents, n_messages), o,
                                   piece_callback(on_piece, user_data));
    *out = new fsgen_result{std::move(r)};
    return FSGEN_OK;
  });
}

fsgen_status fsgen_pair_cancel(fsgen_pair* pair) {
  return guard([&] {
    require(pair, "pair").pair->cancel();
    return FSGEN_OK;
  });
}

fsgen_status fsgen_model_cancel(fsgen_model* model) {
  return guard([&] {
    require(model, "model").model.cancel();
    return FSGEN_OK;
  });
}

fsgen_status fsgen_pair_stream(fsgen_pair* pair, const char* prompt, const char* const* roles,
                               const char* const* contents, size_t n_messages, const fsgen_options* options,
                               fsgen_stream** out) {
  return guard([&] {
    require(pair, "pair");
    require(out, "out");
    const auto o = fsgen_c::generate_options(options, fsgen::OptionsTarget::Pair);
    auto s = std::make_unique<fsgen_stream>();
    s->pair = pair->pair;
    s->job = s->pair->start(fsgen_c::make_prompt(prompt, roles, contents, n_messages), o, true);
    *out = s.release();
    return FSGEN_OK;
  });
}

fsgen_status fsgen_model_stream(fsgen_model* model, const char* prompt, const char* const* roles,
                                const char* const* contents, size_t n_messages, const fsgen_options* options,
                                fsgen_stream** out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    const auto o = fsgen_c::generate_options(options, fsgen::OptionsTarget::Model);
    auto s = std::make_unique<fsgen_stream>();
    s->model = model->model;
    s->job = s->model->start(fsgen_c::make_prompt(prompt, roles, contents, n_messages), o, true);
    *out = s.release();
    return FSGEN_OK;
  });
}

fsgen_status fsgen_stream_next(fsgen_stream* stream, double timeout_s, const char** piece, size_t* length,
                               int* source, int* draft) {
  return guard([&] {
    fsgen_stream& s = require(stream, "stream");
    if (s.error != FSGEN_OK || s.result) return finish(s);
    // A negative timeout waits without limit, in steps (wait_for takes no infinity).
    const double step = timeout_s < 0 ? 1.0 : timeout_s;
    for (;;) {
      if (auto chunk = s.job->next_chunk(step)) {
        s.piece = std::move(*chunk);
        if (piece) *piece = s.piece.text.data();
        if (length) *length = s.piece.text.size();
        if (source) *source = int(s.piece.source);
        if (draft) *draft = int(s.piece.draft);
        return FSGEN_OK;
      }
      if (s.job->done()) return finish(s);
      if (timeout_s >= 0) return FSGEN_TIMEOUT;
    }
  });
}

fsgen_status fsgen_stream_cancel(fsgen_stream* stream) {
  return guard([&] {
    require(stream, "stream").job->cancel();
    return FSGEN_OK;
  });
}

fsgen_status fsgen_stream_result(fsgen_stream* stream, fsgen_result** out) {
  return guard([&] {
    fsgen_stream& s = require(stream, "stream");
    require(out, "out");
    if (s.error == FSGEN_OK && !s.result) wait_for_end(s);
    const fsgen_status status = finish(s);
    if (status != FSGEN_END) return status;
    *out = new fsgen_result{*s.result};
    return FSGEN_OK;
  });
}

void fsgen_stream_free(fsgen_stream* stream) { delete stream; }  // the job's destructor cancels and joins

void fsgen_result_free(fsgen_result* result) { delete result; }

const char* fsgen_result_text(const fsgen_result* result, size_t* length) {
  if (result == nullptr) {
    if (length) *length = 0;
    return nullptr;
  }
  if (length) *length = result->result.text.size();
  return result->result.text.c_str();
}

const char* fsgen_result_finish_reason(const fsgen_result* result) {
  return result ? fsgen::to_string(result->result.finish_reason) : nullptr;
}

const int32_t* fsgen_result_tokens(const fsgen_result* result, size_t* n) {
  const bool any = result != nullptr && !result->result.tokens.empty();
  if (n) *n = any ? result->result.tokens.size() : 0;
  return any ? result->result.tokens.data() : nullptr;
}

const int8_t* fsgen_result_sources(const fsgen_result* result, size_t* n) {
  const bool any = result != nullptr && result->result.has_trace && !result->result.trace.source.empty();
  if (n) *n = any ? result->result.trace.source.size() : 0;
  return any ? result->result.trace.source.data() : nullptr;
}

fsgen_status fsgen_result_stat(const fsgen_result* result, const char* name, double* out) {
  return guard([&] {
    require(result, "result");
    require(name, "name");
    require(out, "out");
    std::string names;
    for (const fsgen::StatField& f : fsgen::stat_fields()) {
      if (name == std::string(f.name)) {
        *out = f.whole ? double(result->result.stats.*f.whole) : result->result.stats.*f.real;
        return FSGEN_OK;
      }
      names += (names.empty() ? "" : ", ") + std::string(f.name);
    }
    throw fsgen::InvalidArgumentError("unknown statistic \"" + std::string(name) + "\" (the statistics: " + names + ")");
  });
}

}  // extern "C"
