/* The C API (fsgen.h) from C: every status code reached by a real bad input, cancelling from
 * another thread, streaming, and no leak over many generate/free and load/free cycles.
 *
 *   c_api_tests MODEL_DIR [generate_cycles load_cycles]
 * MODEL_DIR holds small.gguf, large.gguf, incompatible.gguf, no_template.gguf, nan.gguf. */
#define _POSIX_C_SOURCE 200809L
#include <fsgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
static char dir[4096];

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, \
              fsgen_last_error_message());                                                    \
      ++failures;                                                                             \
    }                                                                                         \
  } while (0)

#define CHECK_STATUS(call, expected)                                                                  \
  do {                                                                                                \
    const int got_ = (call);                                                                          \
    if (got_ != (expected)) {                                                                         \
      fprintf(stderr, "%s:%d: %s gave %s, expected %s (%s)\n", __FILE__, __LINE__, #call,             \
              fsgen_status_name(got_), fsgen_status_name(expected), fsgen_last_error_message());      \
      ++failures;                                                                                     \
    }                                                                                                 \
  } while (0)

static const char* path(const char* name) {
  static char buffer[4][4200];
  static int next = 0;
  char* p = buffer[next++ % 4];
  snprintf(p, sizeof buffer[0], "%s/%s", dir, name);
  return p;
}

static int contains(const char* haystack, const char* needle) { return strstr(haystack, needle) != NULL; }

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static fsgen_options* generate_options(const char* method, int64_t max_tokens) {
  fsgen_options* o = NULL;
  CHECK_STATUS(fsgen_options_new(FSGEN_OPTIONS_GENERATE, &o), FSGEN_OK);
  if (method) CHECK_STATUS(fsgen_options_set_str(o, "method", method), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_int(o, "max_tokens", max_tokens), FSGEN_OK);
  return o;
}

static fsgen_model* load(const char* name, int n_ctx) {
  fsgen_options* mo = NULL;
  fsgen_model* m = NULL;
  CHECK_STATUS(fsgen_options_new(FSGEN_OPTIONS_MODEL, &mo), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_int(mo, "n_ctx", n_ctx), FSGEN_OK);
  CHECK_STATUS(fsgen_model_load(path(name), mo, &m), FSGEN_OK);
  fsgen_options_free(mo);
  return m;
}

static void test_library(void) {
  CHECK(fsgen_api_version() == FSGEN_API_VERSION);
  CHECK(strlen(fsgen_version()) > 0);
  CHECK(strcmp(fsgen_status_name(FSGEN_ERR_TEMPLATE), "FSGEN_ERR_TEMPLATE") == 0);
  CHECK(fsgen_param_name(0) != NULL && fsgen_model_option_name(0) != NULL && fsgen_stat_name(0) != NULL);
  CHECK(fsgen_stat_name(1000) == NULL);
}

static void test_null_handles(void) {
  fsgen_model* m = NULL;
  fsgen_result* r = NULL;
  fsgen_stream* s = NULL;
  double x = 0;
  CHECK_STATUS(fsgen_model_load(NULL, NULL, &m), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "path is NULL"));
  CHECK_STATUS(fsgen_model_load(path("small.gguf"), NULL, NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_pair_generate(NULL, "hi", NULL, NULL, 0, NULL, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_model_generate(NULL, "hi", NULL, NULL, 0, NULL, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_pair_stream(NULL, "hi", NULL, NULL, 0, NULL, &s), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_stream_next(NULL, 0, NULL, NULL, NULL, NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_stream_cancel(NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_stream_result(NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_pair_cancel(NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_model_cancel(NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_pair_new(NULL, NULL, NULL, NULL, NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_result_stat(NULL, "n_tokens", &x), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_options_set_int(NULL, "max_tokens", 1), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_options_set_str(NULL, "method", NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_options_new((fsgen_options_kind)7, NULL), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(fsgen_result_text(NULL, NULL) == NULL && fsgen_result_finish_reason(NULL) == NULL);
  fsgen_model_free(NULL);
  fsgen_pair_free(NULL);
  fsgen_stream_free(NULL);
  fsgen_result_free(NULL);
  fsgen_options_free(NULL);
  fsgen_string_free(NULL);
}

static void test_load_errors(void) {
  fsgen_model* m = NULL;
  fsgen_pair* p = NULL;
  CHECK_STATUS(fsgen_model_load(path("no_such_model.gguf"), NULL, &m), FSGEN_ERR_MODEL_LOAD);
  CHECK(m == NULL);
  FILE* f = fopen(path("broken.gguf"), "wb");  /* the magic, then garbage */
  CHECK(f != NULL);
  if (f) {
    fwrite("GGUF\x03\x00\x00\x00\xff\xff\xff\xff", 1, 12, f);
    fclose(f);
  }
  CHECK_STATUS(fsgen_model_load(path("broken.gguf"), NULL, &m), FSGEN_ERR_MODEL_LOAD);
  /* Models whose tokenizers differ pair up (speculative, fs and oracle meet in text); the methods
     that combine their logits token by token are refused. */
  CHECK_STATUS(fsgen_pair_load(path("small.gguf"), path("incompatible.gguf"), NULL, &p), FSGEN_OK);
  fsgen_options* fs = generate_options("fs", 4);
  fsgen_result* written = NULL;
  CHECK_STATUS(fsgen_pair_generate(p, "hello", NULL, NULL, 0, fs, NULL, NULL, &written), FSGEN_OK);
  fsgen_result_free(written);
  fsgen_options_free(fs);
  fsgen_options* contrastive = generate_options("contrastive", 4);
  fsgen_result* refused = NULL;
  CHECK_STATUS(fsgen_pair_generate(p, "hello", NULL, NULL, 0, contrastive, NULL, NULL, &refused),
               FSGEN_ERR_INCOMPATIBLE_VOCAB);
  CHECK(refused == NULL);
  fsgen_options_free(contrastive);
  fsgen_pair_free(p);
  p = NULL;

  fsgen_options* mo = NULL;
  CHECK_STATUS(fsgen_options_new(FSGEN_OPTIONS_MODEL, &mo), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_int(mo, "n_cxt", 512), FSGEN_OK);  /* names are checked where used */
  CHECK_STATUS(fsgen_model_load(path("small.gguf"), mo, &m), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "unknown model option \"n_cxt\""));
  CHECK_STATUS(fsgen_options_unset(mo, "n_cxt"), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_int(mo, "n_ctx", 2), FSGEN_OK);
  CHECK_STATUS(fsgen_model_load(path("small.gguf"), mo, &m), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "n_ctx must be between 8 and"));
  fsgen_options_free(mo);
  /* generation options where model options belong */
  fsgen_options* go = generate_options(NULL, 4);
  CHECK_STATUS(fsgen_model_load(path("small.gguf"), go, &m), FSGEN_ERR_INVALID_ARGUMENT);
  fsgen_options_free(go);
}

static void test_template_and_context(void) {
  const char* roles[] = {"system", "user"};
  const char* contents[] = {"Be brief.", "hello"};
  char* text = NULL;
  fsgen_result* r = NULL;

  fsgen_model* small = load("small.gguf", 64);
  CHECK_STATUS(fsgen_model_apply_chat_template(small, roles, contents, 2, 1, &text), FSGEN_OK);
  CHECK(text && contains(text, "<|im_start|>user\nhello") && contains(text, "<|im_start|>assistant"));
  fsgen_string_free(text);
  /* the prompt does not fit in 64 tokens */
  char prompt[2048];
  memset(prompt, 'a', sizeof prompt - 1);
  prompt[sizeof prompt - 1] = 0;
  fsgen_options* o = generate_options(NULL, 4);
  CHECK_STATUS(fsgen_model_generate(small, prompt, NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_CONTEXT_OVERFLOW);
  /* messages and text both, or neither */
  CHECK_STATUS(fsgen_model_generate(small, "hi", roles, contents, 2, o, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_model_generate(small, NULL, NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  fsgen_model_free(small);

  fsgen_model* bare = load("no_template.gguf", 256);
  CHECK_STATUS(fsgen_model_apply_chat_template(bare, roles, contents, 2, 1, &text), FSGEN_ERR_TEMPLATE);
  CHECK_STATUS(fsgen_model_generate(bare, NULL, roles, contents, 2, o, NULL, NULL, &r), FSGEN_ERR_TEMPLATE);
  fsgen_model_free(bare);

  fsgen_model* nan = load("nan.gguf", 256);
  CHECK_STATUS(fsgen_model_generate(nan, "hello", NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_GENERATION);
  /* a stream's failure comes from fsgen_stream_next, then from every later call */
  fsgen_stream* s = NULL;
  CHECK_STATUS(fsgen_model_stream(nan, "hello", NULL, NULL, 0, o, &s), FSGEN_OK);
  int status;
  while ((status = fsgen_stream_next(s, -1, NULL, NULL, NULL, NULL)) == FSGEN_OK) {
  }
  CHECK_STATUS(status, FSGEN_ERR_GENERATION);
  CHECK_STATUS(fsgen_stream_next(s, 0, NULL, NULL, NULL, NULL), FSGEN_ERR_GENERATION);
  CHECK_STATUS(fsgen_stream_result(s, &r), FSGEN_ERR_GENERATION);
  CHECK(strlen(fsgen_last_error_message()) > 0);
  fsgen_stream_free(s);
  fsgen_model_free(nan);
  fsgen_options_free(o);
}

static void test_parameters(fsgen_pair* pair, fsgen_model* small) {
  fsgen_result* r = NULL;
  fsgen_options* o = generate_options("speculative", 4);
  CHECK_STATUS(fsgen_options_set_float(o, "temprature", 0.5), FSGEN_OK);
  CHECK_STATUS(fsgen_pair_generate(pair, "hello", NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "unknown parameter \"temprature\" (method \"speculative\" takes: "));
  CHECK_STATUS(fsgen_options_unset(o, "temprature"), FSGEN_OK);
  /* the router's threshold does not apply to speculative decoding */
  CHECK_STATUS(fsgen_options_set_float(o, "threshold", 0.5), FSGEN_OK);
  CHECK_STATUS(fsgen_pair_generate(pair, "hello", NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "method \"speculative\" takes no parameter threshold"));
  CHECK_STATUS(fsgen_options_unset(o, "threshold"), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_str(o, "method", "no_such_method"), FSGEN_OK);
  CHECK_STATUS(fsgen_pair_generate(pair, "hello", NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(fsgen_options_set_str(o, "method", "speculative"), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_float(o, "top_p", 0.0), FSGEN_OK);  /* out of (0, 1] */
  CHECK_STATUS(fsgen_pair_generate(pair, "hello", NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "top_p must be in (0, 1]"));
  CHECK_STATUS(fsgen_options_unset(o, "top_p"), FSGEN_OK);
  /* a Model takes no method */
  CHECK_STATUS(fsgen_model_generate(small, "hello", NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "a Model runs one model and takes no method"));
  /* seeds take the whole 64 bits; stop lists; sampling */
  const char* stops[] = {"zzz", "qqq"};
  CHECK_STATUS(fsgen_options_set_uint(o, "seed", UINT64_C(18446744073709551615)), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_float(o, "temperature", 0.8), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_strs(o, "stop", stops, 2), FSGEN_OK);
  CHECK_STATUS(fsgen_options_set_bool(o, "trace", 1), FSGEN_OK);
  CHECK_STATUS(fsgen_pair_generate(pair, "hello", NULL, NULL, 0, o, NULL, NULL, &r), FSGEN_OK);
  size_t n_tokens = 0, n_sources = 0;
  fsgen_result_tokens(r, &n_tokens);
  const int8_t* sources = fsgen_result_sources(r, &n_sources);
  CHECK(n_tokens > 0 && n_sources == n_tokens && sources != NULL);
  double stat = -1;
  CHECK_STATUS(fsgen_result_stat(r, "n_tokens", &stat), FSGEN_OK);
  CHECK(stat == (double)n_tokens);
  CHECK_STATUS(fsgen_result_stat(r, "no_such_stat", &stat), FSGEN_ERR_INVALID_ARGUMENT);
  CHECK(contains(fsgen_last_error_message(), "acceptance_rate"));
  fsgen_result_free(r);
  fsgen_options_free(o);
}

typedef struct {
  fsgen_pair* pair;
  volatile int started, cancelled;
} cancel_state;

static int on_piece_wait_for_cancel(void* user, const char* piece, size_t length, int source, int draft) {
  cancel_state* s = (cancel_state*)user;
  (void)piece, (void)length, (void)source, (void)draft;
  __atomic_store_n(&s->started, 1, __ATOMIC_SEQ_CST);
  while (!__atomic_load_n(&s->cancelled, __ATOMIC_SEQ_CST)) sleep_ms(1);
  return 0;
}

static void* cancel_pair(void* user) {
  cancel_state* s = (cancel_state*)user;
  while (!__atomic_load_n(&s->started, __ATOMIC_SEQ_CST)) sleep_ms(1);
  CHECK_STATUS(fsgen_pair_cancel(s->pair), FSGEN_OK);
  __atomic_store_n(&s->cancelled, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void* cancel_stream(void* stream) {
  CHECK_STATUS(fsgen_stream_cancel((fsgen_stream*)stream), FSGEN_OK);
  return NULL;
}

static int stop_after_one(void* user, const char* piece, size_t length, int source, int draft) {
  (void)user, (void)piece, (void)length, (void)source, (void)draft;
  return 1;
}

static void test_generation_and_cancel(fsgen_pair* pair) {
  fsgen_result* r = NULL;
  fsgen_options* o = generate_options("fs", 200);
  /* cancelled from another thread while the call runs: FSGEN_OK, finish reason "cancelled" */
  cancel_state state = {pair, 0, 0};
  pthread_t thread;
  pthread_create(&thread, NULL, cancel_pair, &state);
  CHECK_STATUS(fsgen_pair_generate(pair, "hello", NULL, NULL, 0, o, on_piece_wait_for_cancel, &state, &r), FSGEN_OK);
  pthread_join(thread, NULL);
  CHECK(r && strcmp(fsgen_result_finish_reason(r), "cancelled") == 0);
  fsgen_result_free(r);
  r = NULL;
  /* the callback stops it */
  CHECK_STATUS(fsgen_pair_generate(pair, "hello", NULL, NULL, 0, o, stop_after_one, NULL, &r), FSGEN_OK);
  CHECK(r && strcmp(fsgen_result_finish_reason(r), "cancelled") == 0);
  fsgen_result_free(r);
  r = NULL;

  /* a stream, cancelled from another thread after its first piece */
  fsgen_stream* s = NULL;
  const char* role = "user";
  const char* content = "hello";
  CHECK_STATUS(fsgen_pair_stream(pair, NULL, &role, &content, 1, o, &s), FSGEN_OK);
  const char* piece = NULL;
  size_t length = 0;
  int source = -1, draft = -1;
  CHECK_STATUS(fsgen_stream_next(s, -1, &piece, &length, &source, &draft), FSGEN_OK);
  CHECK(piece != NULL && length > 0 && source >= 0 && source <= 2 && draft >= 0 && draft <= 2);
  pthread_create(&thread, NULL, cancel_stream, s);
  pthread_join(thread, NULL);
  int status;
  while ((status = fsgen_stream_next(s, 10.0, &piece, &length, NULL, NULL)) == FSGEN_OK) {
  }
  CHECK_STATUS(status, FSGEN_END);
  CHECK_STATUS(fsgen_stream_next(s, 0, &piece, &length, NULL, NULL), FSGEN_END);
  CHECK_STATUS(fsgen_stream_result(s, &r), FSGEN_OK);
  CHECK(r && strcmp(fsgen_result_finish_reason(r), "cancelled") == 0);
  fsgen_result_free(r);
  r = NULL;
  fsgen_stream_free(s);

  /* a stream read to its end: the pieces make the text */
  fsgen_options_free(o);
  o = generate_options("fs", 24);
  CHECK_STATUS(fsgen_pair_stream(pair, "hello", NULL, NULL, 0, o, &s), FSGEN_OK);
  char text[4096] = "";
  size_t used = 0;
  while ((status = fsgen_stream_next(s, -1, &piece, &length, NULL, NULL)) == FSGEN_OK) {
    if (used + length < sizeof text) memcpy(text + used, piece, length), used += length;
  }
  text[used] = 0;
  CHECK_STATUS(status, FSGEN_END);
  CHECK_STATUS(fsgen_stream_result(s, &r), FSGEN_OK);
  size_t n = 0;
  CHECK(r && strcmp(fsgen_result_text(r, &n), text) == 0 && n == used);
  fsgen_result_free(r);
  fsgen_stream_free(s);
  /* a stream abandoned while running: freeing cancels and joins */
  CHECK_STATUS(fsgen_pair_stream(pair, "hello", NULL, NULL, 0, o, &s), FSGEN_OK);
  fsgen_stream_free(s);
  fsgen_options_free(o);
}

static long resident_kib(void) {
  long pages = 0, resident = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_cycles(fsgen_model* small, int generate_cycles, int load_cycles) {
  fsgen_options* o = generate_options(NULL, 2);
  long at_100 = 0;
  for (int i = 1; i <= generate_cycles; ++i) {
    fsgen_result* r = NULL;
    const int status = fsgen_model_generate(small, "hello", NULL, NULL, 0, o, NULL, NULL, &r);
    if (status != FSGEN_OK) {
      CHECK_STATUS(status, FSGEN_OK);
      break;
    }
    fsgen_result_free(r);
    if (i == 100) at_100 = resident_kib();
  }
  fsgen_options_free(o);
  const long after_generate = resident_kib();
  long load_100 = 0;
  for (int i = 1; i <= load_cycles; ++i) {
    fsgen_model* m = load("small.gguf", 256);
    fsgen_model_free(m);
    if (i == 100) load_100 = resident_kib();
  }
  const long after_load = resident_kib();
  printf("RSS: generate %ld -> %ld KiB over cycles 100..%d; load %ld -> %ld KiB over cycles 100..%d\n", at_100,
         after_generate, generate_cycles, load_100, after_load, load_cycles);
#ifndef FSGEN_TEST_SANITIZED /* ASan's quarantine grows the RSS; LeakSanitizer checks there */
  if (generate_cycles > 100) CHECK(after_generate - at_100 < 2048);
  if (load_cycles > 100) CHECK(after_load - load_100 < 4096);
#endif
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL_DIR [generate_cycles load_cycles]\n", argv[0]);
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  const int generate_cycles = argc > 2 ? atoi(argv[2]) : 1000;
  const int load_cycles = argc > 3 ? atoi(argv[3]) : 200;

  test_library();
  test_null_handles();
  test_load_errors();
  test_template_and_context();
  fsgen_pair* pair = NULL;
  CHECK_STATUS(fsgen_pair_load(path("small.gguf"), path("large.gguf"), NULL, &pair), FSGEN_OK);
  fsgen_model* small = load("small.gguf", 512);
  if (pair && small) {
    test_parameters(pair, small);
    test_generation_and_cancel(pair);
    test_cycles(small, generate_cycles, load_cycles);
  }
  fsgen_model_free(small);
  fsgen_pair_free(pair);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("all C API checks passed\n");
  return failures ? 1 : 0;
}
