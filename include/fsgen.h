/* fsgen's C API: load a small and a large model, decode with them together, stream the text.
 *
 * ABI rules
 * - Versioned: FSGEN_API_VERSION is the version this header describes; fsgen_api_version() the
 *   library's. Within one major version (FSGEN_API_VERSION / 10000) functions are only added,
 *   never removed or changed; a program built against an older header runs on a newer library.
 * - No public structs: every object is an opaque handle made and freed by the library; values
 *   cross as C scalars, NUL-terminated UTF-8 strings and arrays the library owns.
 * - Options are set by name (the core's parameter tables), so new parameters need no new function.
 * - Only the fsgen_* functions below are exported from libfsgen; nothing else is part of the ABI.
 * - No exception and no C++ type crosses this boundary; a bad input (a null handle, an unknown
 *   name, a broken file) is a status code, never an abort.
 *
 * Status and errors
 * - Functions that can fail return an fsgen_status: FSGEN_OK (0), a positive note
 *   (FSGEN_END, FSGEN_TIMEOUT: fsgen_stream_next only) or a negative error, one per kind of
 *   failure. fsgen_last_error_message() gives the message of this thread's latest error.
 * - A cancelled generation is FSGEN_OK with finish reason "cancelled".
 * - Out-parameters are written only on FSGEN_OK.
 *
 * Threads
 * - Every function may be called from any thread. Calls on different handles run in parallel.
 * - A model or a pair runs one generation at a time: concurrent calls on one wait their turn.
 * - fsgen_*_cancel and fsgen_stream_cancel are meant to be called from another thread while a
 *   generation runs.
 * - An options handle or a result is not synchronized: do not change one while another thread
 *   reads it. fsgen_*_free must not race with a call on the same handle.
 * - Handles are independent: a pair keeps its models' weights alive, a stream its pair or model,
 *   so they may be freed in any order.
 */
#ifndef FSGEN_H
#define FSGEN_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(FSGEN_BUILDING_LIBRARY)
#    define FSGEN_API __declspec(dllexport)
#  else
#    define FSGEN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define FSGEN_API __attribute__((visibility("default")))
#else
#  define FSGEN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* major * 10000 + minor * 100 + patch */
#define FSGEN_API_VERSION 10000

typedef enum fsgen_status {
  FSGEN_OK = 0,
  FSGEN_END = 1,      /* fsgen_stream_next: the stream is finished (no piece) */
  FSGEN_TIMEOUT = 2,  /* fsgen_stream_next: no piece came within the timeout */
  FSGEN_ERR_MODEL_LOAD = -1,          /* missing, unreadable, not GGUF, truncated, refused file */
  FSGEN_ERR_INCOMPATIBLE_VOCAB = -2,  /* a method needs one vocabulary and the pair's tokenizers differ */
  FSGEN_ERR_TEMPLATE = -3,            /* no chat template, or it cannot render the messages */
  FSGEN_ERR_CONTEXT_OVERFLOW = -4,    /* the prompt does not fit in the context */
  FSGEN_ERR_GENERATION = -5,          /* decoding failed or produced non-finite logits */
  FSGEN_ERR_INVALID_ARGUMENT = -6,    /* a bad argument: null handle, unknown name, bad value */
  FSGEN_ERR_OUT_OF_MEMORY = -7,
  FSGEN_ERR_INTERNAL = -8             /* anything else (a bug: please report the message) */
} fsgen_status;

/* Who wrote a piece or a token. */
enum { FSGEN_SOURCE_SYSTEM1 = 0, FSGEN_SOURCE_SYSTEM2 = 1, FSGEN_SOURCE_COMBINED = 2 };
/* Where an accepted draft token came from (none: not a draft token). */
enum { FSGEN_DRAFT_NONE = 0, FSGEN_DRAFT_MODEL = 1, FSGEN_DRAFT_NGRAM = 2 };

typedef struct fsgen_model fsgen_model;      /* a loaded GGUF model */
typedef struct fsgen_pair fsgen_pair;        /* System 1 and System 2 (small and large model) */
typedef struct fsgen_options fsgen_options;  /* model options or generation options, by name */
typedef struct fsgen_result fsgen_result;    /* a finished generation */
typedef struct fsgen_stream fsgen_stream;    /* a generation running on a worker thread */

/* ---- library ---- */
FSGEN_API int fsgen_api_version(void);
FSGEN_API const char* fsgen_version(void); /* the package version, e.g. "0.1.0" */
/* The message of this thread's latest error ("" if none); valid until this thread's next error. */
FSGEN_API const char* fsgen_last_error_message(void);
/* "FSGEN_OK", "FSGEN_ERR_MODEL_LOAD", ...; "unknown" for other values. */
FSGEN_API const char* fsgen_status_name(int status);
/* Frees a string the library returned as char* (NULL is fine). */
FSGEN_API void fsgen_string_free(char* s);

/* ---- options ----
 * Model options (FSGEN_OPTIONS_MODEL): n_ctx, n_threads, n_gpu_layers, n_batch, verbose,
 * flash_attn, prompt_cache_mib, rpc (string list), rpc_timeout. Generation options
 * (FSGEN_OPTIONS_GENERATE): the parameter table (method, max_tokens, stop, temperature, seed,
 * router, threshold, ...; see docs/API.md). Setters record a name and a value; the names and
 * values are checked where the options are used (load or generate), with the messages Python
 * gives. */
typedef enum fsgen_options_kind { FSGEN_OPTIONS_MODEL = 0, FSGEN_OPTIONS_GENERATE = 1 } fsgen_options_kind;
FSGEN_API fsgen_status fsgen_options_new(fsgen_options_kind kind, fsgen_options** out);
FSGEN_API void fsgen_options_free(fsgen_options* options);
FSGEN_API fsgen_status fsgen_options_set_str(fsgen_options* options, const char* name, const char* value);
FSGEN_API fsgen_status fsgen_options_set_int(fsgen_options* options, const char* name, int64_t value);
FSGEN_API fsgen_status fsgen_options_set_uint(fsgen_options* options, const char* name, uint64_t value); /* seeds */
FSGEN_API fsgen_status fsgen_options_set_float(fsgen_options* options, const char* name, double value);
FSGEN_API fsgen_status fsgen_options_set_bool(fsgen_options* options, const char* name, int value);
/* A list of strings (stop, rpc): n values (n = 0: an empty list). */
FSGEN_API fsgen_status fsgen_options_set_strs(fsgen_options* options, const char* name, const char* const* values,
                                              size_t n);
/* Back to the default (as if never set). */
FSGEN_API fsgen_status fsgen_options_unset(fsgen_options* options, const char* name);
/* Names of the generation parameters / model options, i = 0, 1, ...; NULL past the end. */
FSGEN_API const char* fsgen_param_name(size_t i);
FSGEN_API const char* fsgen_model_option_name(size_t i);

/* ---- models and pairs ----
 * options: FSGEN_OPTIONS_MODEL options, or NULL for the defaults. */
FSGEN_API fsgen_status fsgen_model_load(const char* path, const fsgen_options* options, fsgen_model** out);
FSGEN_API void fsgen_model_free(fsgen_model* model);
/* The messages (roles[i], contents[i], i < n) through the model's chat template; *out is freed
 * with fsgen_string_free. add_assistant: end with the assistant's turn opened. */
FSGEN_API fsgen_status fsgen_model_apply_chat_template(const fsgen_model* model, const char* const* roles,
                                                       const char* const* contents, size_t n, int add_assistant,
                                                       char** out);
/* small_base: NULL, or the small model's base for method "proxy". options: the contexts' options
 * (NULL: the large model's). The pair shares the models' weights; the models may be freed after. */
FSGEN_API fsgen_status fsgen_pair_new(const fsgen_model* small, const fsgen_model* large, const fsgen_model* small_base,
                                      const fsgen_options* options, fsgen_pair** out);
/* Loads both models with the same options and makes the pair. */
FSGEN_API fsgen_status fsgen_pair_load(const char* small_path, const char* large_path, const fsgen_options* options,
                                       fsgen_pair** out);
FSGEN_API void fsgen_pair_free(fsgen_pair* pair);

/* ---- generation ----
 * The prompt is text (prompt non-NULL, n_messages 0) or chat messages (prompt NULL, roles[i],
 * contents[i] for i < n_messages) rendered with the (large) model's chat template.
 * options: FSGEN_OPTIONS_GENERATE options, or NULL for the defaults. A model takes no "method".
 *
 * on_piece, if not NULL, gets each piece of text as it is produced (bytes, not NUL-terminated; a
 * piece may end inside a UTF-8 character), who wrote it and its draft origin, on the calling
 * thread; returning nonzero stops the generation (finish reason "cancelled"). */
typedef int (*fsgen_piece_fn)(void* user_data, const char* piece, size_t length, int source, int draft);
FSGEN_API fsgen_status fsgen_pair_generate(fsgen_pair* pair, const char* prompt, const char* const* roles,
                                           const char* const* contents, size_t n_messages,
                                           const fsgen_options* options, fsgen_piece_fn on_piece, void* user_data,
                                           fsgen_result** out);
FSGEN_API fsgen_status fsgen_model_generate(fsgen_model* model, const char* prompt, const char* const* roles,
                                            const char* const* contents, size_t n_messages,
                                            const fsgen_options* options, fsgen_piece_fn on_piece, void* user_data,
                                            fsgen_result** out);
/* Stops what the pair's (model's) generations run now at their next decoding step. */
FSGEN_API fsgen_status fsgen_pair_cancel(fsgen_pair* pair);
FSGEN_API fsgen_status fsgen_model_cancel(fsgen_model* model);

/* ---- streaming: a generation on a worker thread, pieces pulled by the caller ----
 * Checks the prompt and options first (errors are returned here), then starts. */
FSGEN_API fsgen_status fsgen_pair_stream(fsgen_pair* pair, const char* prompt, const char* const* roles,
                                         const char* const* contents, size_t n_messages,
                                         const fsgen_options* options, fsgen_stream** out);
FSGEN_API fsgen_status fsgen_model_stream(fsgen_model* model, const char* prompt, const char* const* roles,
                                          const char* const* contents, size_t n_messages,
                                          const fsgen_options* options, fsgen_stream** out);
/* Waits up to timeout_s (< 0: no limit) for the next piece. FSGEN_OK: *piece (bytes valid until
 * the next call on this stream), *length, *source, *draft are set (any of them may be NULL).
 * FSGEN_TIMEOUT: nothing yet. FSGEN_END: finished, the result is ready. A negative status: the
 * generation failed (the same status on every later call). */
FSGEN_API fsgen_status fsgen_stream_next(fsgen_stream* stream, double timeout_s, const char** piece, size_t* length,
                                         int* source, int* draft);
/* Stops this stream's generation (not others on the same pair); any thread. */
FSGEN_API fsgen_status fsgen_stream_cancel(fsgen_stream* stream);
/* The result once fsgen_stream_next returned FSGEN_END (waits for the end otherwise); *out is
 * the caller's (fsgen_result_free). */
FSGEN_API fsgen_status fsgen_stream_result(fsgen_stream* stream, fsgen_result** out);
/* Cancels the generation if it still runs, waits for it, frees the stream. */
FSGEN_API void fsgen_stream_free(fsgen_stream* stream);

/* ---- results ---- (pointers stay valid until fsgen_result_free) */
FSGEN_API void fsgen_result_free(fsgen_result* result);
/* The text (NUL-terminated; *length without the NUL, if length is not NULL). */
FSGEN_API const char* fsgen_result_text(const fsgen_result* result, size_t* length);
/* "eog", "stop", "length" or "cancelled". */
FSGEN_API const char* fsgen_result_finish_reason(const fsgen_result* result);
/* The generated tokens; *n their number. */
FSGEN_API const int32_t* fsgen_result_tokens(const fsgen_result* result, size_t* n);
/* Who wrote each token (FSGEN_SOURCE_*): recorded with the generation option trace=true;
 * otherwise NULL and *n = 0. */
FSGEN_API const int8_t* fsgen_result_sources(const fsgen_result* result, size_t* n);
/* A statistic by name (n_tokens, tokens_per_second, system2_fraction, ...; fsgen_stat_name). */
FSGEN_API fsgen_status fsgen_result_stat(const fsgen_result* result, const char* name, double* out);
/* Names of the statistics, i = 0, 1, ...; NULL past the end. */
FSGEN_API const char* fsgen_stat_name(size_t i);

#ifdef __cplusplus
}
#endif

#endif /* FSGEN_H */
