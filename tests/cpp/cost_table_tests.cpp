// Decisions from a frozen cost table: the draft planner and fs's guard read only the table a
// generation starts from, never timings taken during it; a decode slowed at random (a busy
// machine) changes neither fs's text nor speculative decoding's draft lengths.
#include <string>
#include <vector>

#include "check.hpp"
#include "decoding/fs_guard.hpp"
#include "fsgen/fsgen.hpp"
#include "session.hpp"

namespace {

using fsgen_test::check;
using fsgen::CostTable;
using fsgen::DraftOrigin;
using fsgen::DraftPlanner;

constexpr double kSingle = 0.01;

// Verify costs where 4 rows cost `four_rows` one-row verifies (linear in between and beyond).
CostTable table(double four_rows, double draft_share, const std::string& kind = "pinned") {
  CostTable t;
  t.kind = kind;
  t.verify.assign(17, -1.0);
  for (int r = 1; r <= 16; ++r) t.verify[r] = kSingle * (1 + (four_rows - 1) / 3 * (r - 1));
  t.draft = draft_share * kSingle;
  return t;
}

const CostTable kSweetSpot = table(1.4, 0.35);  // batched kernels: a few more rows cost little
const CostTable kLinear = table(3.0, 0.35);     // a CPU: each row costs most of a verify

void test_planner_prices_from_its_table() {
  DraftPlanner sweet = DraftPlanner::for_generation(kSweetSpot);
  DraftPlanner linear = DraftPlanner::for_generation(kLinear);
  const int drafted = sweet.choose(DraftOrigin::Model, 8);
  check(drafted > 0, "sweet-spot table: System 1 drafts");
  check(linear.choose(DraftOrigin::Model, 8) == 0, "linear table: drafting does not pay");
  // Timings during a generation are kept for the next one, never read by this one's decisions.
  for (int i = 0; i < 50; ++i) {
    sweet.observe_verify(1, 10 * kSingle);
    sweet.observe_verify(drafted + 1, 100 * kSingle);
    sweet.observe_draft_step(5 * kSingle);
  }
  check(sweet.verify_cost(1) == kSweetSpot.verify[1] && sweet.draft_cost(DraftOrigin::Model) == kSweetSpot.draft,
        "a generation's planner prices from its table alone");
  check(sweet.choose(DraftOrigin::Model, 8) == drafted, "timings do not change a generation's draft length");
  check(sweet.table().id() == kSweetSpot.id(), "the table a generation priced from keeps its id");

  // The owner's table: a measured one takes the timings for the next generation, a pinned one not.
  DraftPlanner measured, pinned;
  measured.set_table(table(1.4, 0.35, "measured"));
  pinned.set_table(kSweetSpot);
  measured.fold(sweet);
  pinned.fold(sweet);
  check(measured.table().verify[1] > 2 * kSingle, "a measured table learns from the last generation's timings");
  check(pinned.table().id() == kSweetSpot.id() && pinned.table().kind == "pinned", "a pinned table stays as given");
  check(table(1.4, 0.35, "measured").id() == kSweetSpot.id(), "the id hashes the costs, not the kind");
  check(kSweetSpot.id() != kLinear.id() && kSweetSpot.id().size() == 8, "ids tell tables apart");
}

// A drafter that decodes one System 1 token more per round than it proposes (SLEM) pays that step:
// where one step per draft token just pays, the extra step does not.
void test_extra_draft_steps_are_priced() {
  DraftPlanner planner = DraftPlanner::for_generation(table(1.4, 0.45));
  const double a = 0.8;
  const int plain = planner.best_length(DraftOrigin::Model, 8, a);
  const double rate = planner.expected_rate(DraftOrigin::Model, 2);
  planner.set_extra_draft_steps(1);
  check(plain > 0, "one step per draft token: System 1's drafts pay on this table");
  check(planner.best_length(DraftOrigin::Model, 8, a) == 0, "a step more per round: they do not");
  check(planner.expected_rate(DraftOrigin::Model, 2) < rate, "the extra step lowers a round's rate");
  const double ngram = planner.expected_rate(DraftOrigin::Ngram, 2);
  planner.set_extra_draft_steps(0);
  check(planner.expected_rate(DraftOrigin::Ngram, 2) == ngram, "n-gram drafts decode nothing of System 1's");
  check(planner.best_length(DraftOrigin::Model, 8, a) == plain, "back to one step per token");
}

// System 1 left behind must read what it missed before it drafts again: a length that pays per
// round is drafted only where the rest of the generation repays that catch-up.
void test_drafting_again_repays_the_catch_up() {
  DraftPlanner planner = DraftPlanner::for_generation(kSweetSpot);
  const int drafted = planner.choose(DraftOrigin::Model, 8);
  check(drafted > 0, "sweet-spot table: System 1 drafts");
  check(planner.choose(DraftOrigin::Model, 8, 0, 1, 1000) == drafted, "a short lag, a long horizon: it drafts");
  check(planner.choose(DraftOrigin::Model, 8, 0, 4000, 16) == 0, "a long lag, a short horizon: it does not");
  check(planner.choose(DraftOrigin::Model, 8, 0, 4000, -1) == drafted, "an unknown horizon: it drafts");
}

// A measured catch-up batch prices System 1's catch-up: a step for the first token, then the
// batch's pace per further token; unmeasured, the verifier's batch scaled by the step's share.
void test_measured_catch_up_prices_the_lag() {
  CostTable dear = kSweetSpot;
  dear.catch_up = 16 * kSweetSpot.draft;  // a small model: no batching gain at all
  const DraftPlanner estimated = DraftPlanner::for_generation(kSweetSpot);
  const DraftPlanner measured = DraftPlanner::for_generation(dear);
  check(dear.id() != kSweetSpot.id(), "the catch-up batch is part of the table's id");
  check(measured.catch_up_cost(1) == dear.draft, "one token: one step");
  const double sixteen = measured.catch_up_cost(16);
  check(sixteen > 0.999 * dear.catch_up && sixteen < 1.001 * dear.catch_up, "sixteen tokens: the batch");
  check(measured.catch_up_cost(8) > estimated.catch_up_cost(8), "dearer than the estimate here");
  // A fresh planner per question: a choice that drafts nothing counts towards the next probe.
  auto drafts = [](const CostTable& t, int lag) { return DraftPlanner::for_generation(t).choose(DraftOrigin::Model, 8, 0, lag, 64); };
  check(drafts(dear, 0) > 0, "no lag: System 1 drafts");
  int lag = 1;
  while (lag < 4000 && drafts(kSweetSpot, lag) > 0) lag *= 2;
  check(lag < 4000 && lag > 2, "the estimate stops drafting at some lag");
  check(drafts(dear, lag / 2) == 0, "the measured, dearer catch-up stops it at a shorter lag");
}

fsgen::SamplingOptions sampled(float temperature, float top_p = 1.0f) {
  fsgen::SamplingOptions o;
  o.temperature = temperature;
  o.top_k = 0;
  o.top_p = top_p;
  o.min_p = 0.0f;
  return o;
}

// A sampled generation pays the sampler on every draft step and every row System 2 samples, and
// expects System 1's drafts accepted less often the flatter the distributions (temperature).
void test_sampled_rounds_price_the_sampler() {
  CostTable gpu = table(1.1, 0.2);  // batched rows nearly free: the sampler is a large share of a row
  gpu.sampling = 0.3 * kSingle;
  check(table(1.1, 0.2).id() == table(1.1, 0.2).id() && gpu.id() != table(1.1, 0.2).id(),
        "the sampler's cost is part of the table's id where it is known");
  CostTable unknown = gpu;
  unknown.sampling = -1;
  check(unknown.id() == table(1.1, 0.2).id(), "a table without the sampler's cost keeps its id");

  const DraftPlanner greedy = DraftPlanner::for_generation(gpu);
  const DraftPlanner chat = DraftPlanner::for_generation(gpu, sampled(0.7f, 0.9f));
  const DraftPlanner openai = DraftPlanner::for_generation(gpu, sampled(1.0f));
  check(greedy.sampling_cost() == 0 && openai.sampling_cost() == gpu.sampling, "greedy samples nothing");
  check(DraftPlanner::for_generation(unknown, sampled(1.0f)).sampling_cost() == 0,
        "an unknown sampling cost is priced as free");
  const double a = 0.8;
  check(openai.best_length(DraftOrigin::Model, 12, a) < greedy.best_length(DraftOrigin::Model, 12, a),
        "each draft step's sampling shortens the best draft");
  check(openai.lossless_token_cost(a) > greedy.lossless_token_cost(a) + 0.9 * gpu.sampling,
        "a sampled token costs at least its row's sampling more");
  // Of two rounds that write the same tokens, the longer one pays more draft steps' sampling.
  const double drafted_greedy = greedy.expected_rate(DraftOrigin::Model, 4) / greedy.expected_rate(DraftOrigin::Ngram, 4);
  const double drafted_openai = openai.expected_rate(DraftOrigin::Model, 4) / openai.expected_rate(DraftOrigin::Ngram, 4);
  check(drafted_openai < drafted_greedy, "System 1's draft steps pay the sampler, n-gram drafts do not");

  const double g = DraftPlanner::sampled_acceptance_prior(fsgen::SamplingOptions{});
  const double t07 = DraftPlanner::sampled_acceptance_prior(sampled(0.7f, 0.9f));
  const double t1 = DraftPlanner::sampled_acceptance_prior(sampled(1.0f));
  const double t15 = DraftPlanner::sampled_acceptance_prior(sampled(1.5f));
  check(g == 0.7 && t07 == g && t1 == g, "up to temperature 1 sampled drafts are accepted about as often as greedy");
  check(t15 < t1 && t15 > 0.3, "above it the prior falls with the temperature");
  check(chat.acceptance(DraftOrigin::Model) == t07 && DraftPlanner::for_generation(gpu, sampled(1.5f))
        .acceptance(DraftOrigin::Model) == t15, "a sampled generation starts from the prior of its temperature");
}

// fs with System 2 consulted on every `every`-th token: a read of that many tokens and as many
// System 1 steps against the reference's cost for them: large-only's, or the faster lossless way
// (speculative at per-token acceptance `acceptance`) where acceptance > 0. Where 4 rows cost 1.4
// one-row verifies fs beats large-only; where they cost 3 it does not, and the guard hands over at
// its first judgement. Returns the token it handed over at (0: none).
int handed_over_at(const CostTable& t, int every = 4, double acceptance = 0) {
  DraftPlanner p = DraftPlanner::for_generation(t);
  const double reference = acceptance > 0 ? p.lossless_token_cost(acceptance) : p.verify_cost(1);
  fsgen::FsGuard guard;
  int unread = 0;
  for (int token = 1; token <= 64; ++token) {
    const bool consult = token % every == 0;
    const double cost = p.system1_cost(1) + (consult ? p.system2_cost(unread + 1) : 0.0);
    unread = consult ? 0 : unread + 1;
    const double debt = unread > 1 ? p.system2_cost(unread) - p.system2_cost(1) : 0.0;
    guard.observe_fs_token(consult, cost, reference, debt);
    if (guard.handing_over()) return token;
  }
  return 0;
}

void test_guard_decides_from_the_table() {
  check(handed_over_at(kSweetSpot) == 0, "sweet-spot table: fs pays, no hand-over");
  check(handed_over_at(kLinear) == fsgen::FsGuard::kMinTokens, "linear table: hand over at the first judgement");
}

// The reference is the faster lossless way: speculative where System 1's drafts pay, large-only
// where they cannot (a linear curve). fs that beats large-only but not speculative hands over; fs
// with a System 1 cheap enough keeps writing.
void test_guard_weighs_fs_against_speculative() {
  DraftPlanner linear = DraftPlanner::for_generation(kLinear);
  check(linear.lossless_token_cost(0.95) == linear.verify_cost(1), "linear table: large-only is the faster way");
  DraftPlanner sweet = DraftPlanner::for_generation(kSweetSpot);
  check(sweet.lossless_token_cost(0.95) < 0.7 * kSingle, "sweet-spot table: speculative at 0.95 beats large-only");
  check(sweet.lossless_token_cost(0.2) > sweet.lossless_token_cost(0.95), "lower acceptance, dearer speculative");
  check(handed_over_at(kSweetSpot, 4, 0.95) == fsgen::FsGuard::kMinTokens,
        "fs faster than large-only, slower than speculative: hand over");
  check(handed_over_at(kSweetSpot, 4, 0.3) == 0, "speculative at low acceptance: fs keeps writing");
  const CostTable cheap_system1 = table(1.4, 0.1);
  check(handed_over_at(cheap_system1, 8, 0.95) == 0, "a cheap System 1 beats speculative: fs keeps writing");
}

// fs that beats large-only is probed against the hand-over once (n-gram drafts the table cannot
// price ahead): where the hand-over ran faster, fs hands over again at its next judgement; where
// it ran slower, fs keeps writing.
void test_guard_probes_the_handover() {
  const double large = 0.1, fs_token = 0.08, ceiling = 0.03;
  for (const double handover_token : {0.05, 0.12}) {
    fsgen::FsGuard guard;
    int fs_tokens = 0, first_handover = -1, handovers = 0;
    bool was_handing_over = false;
    for (int token = 0; token < 600; ++token) {
      if (guard.handing_over()) {
        if (!was_handing_over) ++handovers;
        was_handing_over = true;
        guard.observe_handover(1, handover_token, large);
      } else {
        was_handing_over = false;
        guard.observe_fs_token(false, fs_token, large, 0, ceiling);
        ++fs_tokens;
        if (guard.handing_over() && first_handover < 0) first_handover = fs_tokens;
      }
    }
    check(first_handover == fsgen::FsGuard::kProbeAfter, "fs faster than large-only: the hand-over is probed");
    if (handover_token < fs_token) {
      check(fs_tokens < 150, "the hand-over ran faster: it writes most (fs wrote " + std::to_string(fs_tokens) + ")");
    } else {
      check(handovers == 1 && fs_tokens > 500, "the hand-over ran slower: fs writes on after the probe");
    }
  }
  fsgen::FsGuard beyond;  // fs already at the ceiling: nothing to learn
  for (int token = 0; token < 200; ++token) beyond.observe_fs_token(false, 0.02, large, 0, 0.03);
  check(!beyond.handing_over(), "fs as cheap as a handed-over token could be: no probe");
}

// A bad stretch is forgotten: after a hand-over at large-only's cost fs is tried again within a
// few hundred tokens (a balance that never forgot would wait until the 2% of the cost since the
// start covered the whole loss: about 390 tokens here, and longer the worse the stretch).
void test_guard_forgets() {
  fsgen::FsGuard guard;
  for (int i = 0; i < 64 && !guard.handing_over(); ++i) guard.observe_fs_token(true, 3.0, 1.0);
  check(guard.handing_over(), "fs three times as dear: hand over");
  int handed_over = 0;
  for (; handed_over < 1000 && guard.handing_over(); ++handed_over) guard.observe_handover(1, 1.0, 1.0);
  check(handed_over < 250, "the loss fades: fs is tried again (after " + std::to_string(handed_over) + ")");
}

// The same pinned table, the same greedy text and draft lengths, with decodes slowed at random.
void test_random_decode_delays_change_nothing(const std::string& small_path, const std::string& large_path) {
  fsgen::ModelOptions mo;
  mo.n_ctx = 512;
  mo.n_threads = 1;
  fsgen::Model small = fsgen::Model::load(small_path, mo);
  fsgen::Model large = fsgen::Model::load(large_path, mo);
  fsgen::Pair pair(small, large, std::nullopt, mo);
  const auto prompt = fsgen::Prompt::from_text("Once upon a time, in a land far away");
  // fs under a table where it runs behind large-only (the guard hands over); speculative under one
  // where System 1's drafts pay.
  auto run_fs = [&](const fsgen::GenerateOptions& o) {
    pair.set_cost_table(kLinear);
    return pair.generate(prompt, o);
  };
  auto run_spec = [&](const fsgen::GenerateOptions& o) {
    pair.set_cost_table(kSweetSpot);
    return pair.generate(prompt, o);
  };
  fsgen::GenerateOptions fs;
  fs.method = fsgen::Method::FastSlow;
  fs.max_tokens = 64;
  fsgen::GenerateOptions spec;
  spec.method = fsgen::Method::Speculative;
  spec.max_tokens = 64;
  spec.trace = true;
  const fsgen::Result fs_ref = run_fs(fs);
  const fsgen::Result spec_ref = run_spec(spec);
  check(fs_ref.stats.guard_tokens > 0 && fs_ref.stats.guard_tokens < fs_ref.stats.n_tokens,
        "the pinned table makes the guard hand over (guard_tokens " + std::to_string(fs_ref.stats.guard_tokens) + ")");
  check(!spec_ref.trace.draft_length.empty(), "speculative drafts under the pinned table");
  fsgen::set_decode_jitter(0.003);
  for (int run = 0; run < 2; ++run) {
    const fsgen::Result f = run_fs(fs);
    check(f.tokens == fs_ref.tokens && f.stats.guard_tokens == fs_ref.stats.guard_tokens,
          "fs: the same text and hand-overs with decodes slowed at random");
    const fsgen::Result s = run_spec(spec);
    check(s.trace.draft_length == spec_ref.trace.draft_length && s.tokens == spec_ref.tokens,
          "speculative: the same draft lengths with decodes slowed at random");
    check(f.cost_table == fs_ref.cost_table && f.cost_table == kLinear.id() && s.cost_table == kSweetSpot.id(), "Result::cost_table names it");
  }
  fsgen::set_decode_jitter(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SMALL.gguf LARGE.gguf\n", argv[0]);
    return 2;
  }
  test_planner_prices_from_its_table();
  test_extra_draft_steps_are_priced();
  test_drafting_again_repays_the_catch_up();
  test_measured_catch_up_prices_the_lag();
  test_sampled_rounds_price_the_sampler();
  test_guard_decides_from_the_table();
  test_guard_weighs_fs_against_speculative();
  test_guard_probes_the_handover();
  test_guard_forgets();
  try {
    test_random_decode_delays_change_nothing(argv[1], argv[2]);
  } catch (const std::exception& e) {
    check(false, std::string("unexpected exception: ") + e.what());
  }
  return fsgen_test::report();
}
