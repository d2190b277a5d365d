// Fast-and-slow decoding from C++: System 1 writes, System 2 steps in where System 1 is unsure.
// Text streams through a callback; System 2's pieces are bracketed.
//
//   fs_stream SMALL.gguf LARGE.gguf ["prompt"] [max_tokens]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fsgen/fsgen.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SMALL.gguf LARGE.gguf [prompt] [max_tokens]\n", argv[0]);
    return 2;
  }
  try {
    fsgen::ModelOptions model_options;
    model_options.n_ctx = 1024;
    fsgen::Pair pair(fsgen::Model::load(argv[1], model_options), fsgen::Model::load(argv[2], model_options),
                     std::nullopt, model_options);

    fsgen::GenerateOptions options;
    options.method = fsgen::Method::FastSlow;
    options.router.router = fsgen::Router::Entropy;  // consult System 2 when entropy > 0.5 nats
    options.max_tokens = argc > 4 ? std::atoi(argv[4]) : 64;

    const std::string prompt = argc > 3 ? argv[3] : "Write a haiku about fast and slow thinking.";
    const fsgen::Result result = pair.generate(
        fsgen::Prompt::from_messages({{"user", prompt}}), options, [](const fsgen::Chunk& chunk) {
          const bool slow = chunk.source != fsgen::Source::System1;
          std::printf(slow ? "[%s]" : "%s", chunk.text.c_str());
          std::fflush(stdout);
          return true;  // false would stop generating
        });
    const fsgen::Stats& s = result.stats;
    std::printf("\n%d tokens, %.1f tokens/s, System 2 wrote %.1f%%, finish: %s\n", s.n_tokens, s.tokens_per_second,
                100.0 * s.system2_fraction, fsgen::to_string(result.finish_reason));
    return result.tokens.empty() ? 1 : 0;
  } catch (const fsgen::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
