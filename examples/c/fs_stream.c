/* Fast-and-slow decoding from C: System 1 writes, System 2 steps in where System 1 is unsure.
 * The pieces stream from a worker thread; System 2's are bracketed.
 *
 *   cc fs_stream.c $(pkg-config --cflags --libs fsgen) -o fs_stream
 *   ./fs_stream SMALL.gguf LARGE.gguf ["prompt"] [max_tokens]
 */
#include <fsgen.h>
#include <stdio.h>
#include <stdlib.h>

static int check(fsgen_status status, const char* what) {
  if (status < 0) fprintf(stderr, "%s: %s: %s\n", what, fsgen_status_name(status), fsgen_last_error_message());
  return status < 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s SMALL.gguf LARGE.gguf [prompt] [max_tokens]\n", argv[0]);
    return 2;
  }
  const char* role = "user";
  const char* prompt = argc > 3 ? argv[3] : "Write a haiku about fast and slow thinking.";
  fsgen_options* model_options = NULL;
  fsgen_options* options = NULL;
  fsgen_pair* pair = NULL;
  fsgen_stream* stream = NULL;
  fsgen_result* result = NULL;
  int failed = 1;

  if (check(fsgen_options_new(FSGEN_OPTIONS_MODEL, &model_options), "options") ||
      check(fsgen_options_set_int(model_options, "n_ctx", 1024), "n_ctx") ||
      check(fsgen_pair_load(argv[1], argv[2], model_options, &pair), "load"))
    goto done;

  /* Options by name, as in Python: fs decoding, System 2 consulted where System 1's entropy is high. */
  if (check(fsgen_options_new(FSGEN_OPTIONS_GENERATE, &options), "options") ||
      check(fsgen_options_set_str(options, "method", "fs"), "method") ||
      check(fsgen_options_set_str(options, "router", "entropy"), "router") ||
      check(fsgen_options_set_int(options, "max_tokens", argc > 4 ? atoi(argv[4]) : 64), "max_tokens") ||
      check(fsgen_pair_stream(pair, NULL, &role, &prompt, 1, options, &stream), "generate"))
    goto done;

  for (;;) {
    const char* piece;
    size_t length;
    int source;
    const fsgen_status status = fsgen_stream_next(stream, -1.0, &piece, &length, &source, NULL);
    if (status == FSGEN_END) break;
    if (check(status, "generate")) goto done;
    printf(source == FSGEN_SOURCE_SYSTEM1 ? "%.*s" : "[%.*s]", (int)length, piece);
    fflush(stdout);
  }
  if (check(fsgen_stream_result(stream, &result), "result")) goto done;

  double n_tokens = 0, tokens_per_second = 0, system2_fraction = 0;
  fsgen_result_stat(result, "n_tokens", &n_tokens);
  fsgen_result_stat(result, "tokens_per_second", &tokens_per_second);
  fsgen_result_stat(result, "system2_fraction", &system2_fraction);
  printf("\n%.0f tokens, %.1f tokens/s, System 2 wrote %.1f%%, finish: %s\n", n_tokens, tokens_per_second,
         100.0 * system2_fraction, fsgen_result_finish_reason(result));
  failed = n_tokens == 0;

done:
  fsgen_result_free(result);
  fsgen_stream_free(stream);
  fsgen_pair_free(pair);
  fsgen_options_free(options);
  fsgen_options_free(model_options);
  return failed;
}
