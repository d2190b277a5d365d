"""The performance table: fsgen's methods against each other and against llama.cpp's own tools.

    python benchmarks/bench.py                  # demo pair (pulled if needed), both prompt sets
    python benchmarks/bench.py --edit-prompts 5 --free-prompts 3 --max-tokens 128 --threads 2 --small S --large L

First the machine's measured verify cost curve (the regime the figures come from: a sweet spot,
where a few rows cost about one, or linear) and the draft lengths it implies. Then two prompt sets
(benchmarks/bench_prompts.py): input-grounded code edits built from HumanEval, and free-form
prompts. Every engine runs every prompt in turn (so a noisy neighbour hits all of them alike);
ratios are taken prompt by prompt against large-only fsgen, then the median (and the worst prompt)
is reported per set. The default run (16 minutes on 2 cores here) has the rows a user meets:
- fsgen large-only, speculative auto (the default: n-gram or System 1's draft each round) and fs
  at its defaults, greedy, and llama-cpp-python large-only running the same libllama
  (LLAMA_CPP_LIB_PATH);
- the same three fsgen rows on the same prompts sampled, seeded (`--sampling`): chat apps' settings
  (temperature 0.7, top_p 0.9) and OpenAI's defaults (temperature 1, top_p 1; fsgen serve then
  samples with top_k 0, min_p 0), each ratio against large-only sampled alike; then one summary of
  greedy and sampled side by side (median and worst prompt, measured and priced);
- fs on one HumanEval and one free-form prompt: FS-GEN's fixed threshold without the guard, fs at
  its defaults (guard on), and the budget router at 5/20% (System 2's share achieved, tokens/s
  against large-only per prompt); `--fs-budget-only` runs just that, on more prompts;
- drafting across tokenizers (`--cross-only` runs just it; `--no-cross` skips it): the same large
  model with System 1 of its own family against a cheaper one with another tokenizer (SmolLM2-135M
  by default, `--cross-small`), greedy and OpenAI's defaults (`--cross-sampling`), one prompt per set
  (`--cross-prompts`), each System 1's draft step against a one-row verify printed first.
`--all-rows` adds what explains those rows (about twice the time): n-gram drafts with the large
model alone, speculative with System 1's drafts (adaptive and fixed `--draft` lengths), fs at fixed
entropy thresholds (`--fs-thresholds`), llama.cpp's own tools built from the same pinned source
(benchmarks/llama_cpp_tools.py; built here on first use into benchmarks/out/llama-build):
`llama-speculative-simple` with the draft model (skip with --no-spec-simple) and its n-gram anchors
(`ngram-simple`, `ngram-mod`, `llama-lookup`; skip with --no-llama-ngram), and SLEM, TLI and
fixed lengths across tokenizers (`benchmarks/serve_bench.py` sets fsgen serve beside llama-server);
`--llama-cpp-python-lookup` adds llama-cpp-python's prompt lookup.
`--targets`: only large-only, speculative and fs at their defaults on every prompt (code edits,
free-form, the fs section's free-form), greedy and sampled, with the prompts below 0.95×
large-only listed; with `--repeats 3` each figure is the median of three interleaved runs.
tokens/s is the generation phase (prompt processing excluded); e2e includes it. Peak memory (RSS)
of a loaded pair is measured in a child process and set next to the two files' sizes.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "benchmarks"))
import llama_cpp_tools  # noqa: E402


def fsgen_lib_dir() -> pathlib.Path:
    import fsgen
    package = pathlib.Path(fsgen.__file__).parent
    for candidate in (package / "lib", ROOT / "build" / "dev" / "bin", ROOT / "build" / "wheel" / "bin"):
        if (candidate / "libllama.so").exists() or (candidate / "libllama.dylib").exists():
            return candidate
    raise SystemExit("cannot find fsgen's libllama (install fsgen first)")


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_prompts import edit_prompts, free_prompts, humaneval_problems  # noqa: E402


# ---- engines ----

# Sampled settings measured beside greedy (seeded, so every engine draws from the same stream).
SAMPLINGS = {
    "chat": ("T 0.7, top_p 0.9", dict(temperature=0.7, top_p=0.9, top_k=0, min_p=0.0, seed=1)),
    "openai": ("OpenAI's defaults: T 1, top_p 1", dict(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, seed=1)),
}
# The targets: what a user gets at the defaults, against the large model alone.
TARGET_ROWS = {"large": ("large", {}), "speculative auto (default)": ("speculative", {}), "fs (defaults)": ("fs", {})}
SAMPLED_ROWS = {"large": ("large", {}), "speculative auto (default)": ("speculative", {}),
                "fs (defaults)": ("fs", {})}


def run_fsgen(pair, prompt: str, max_tokens: int, method: str, params: dict) -> dict:
    r = pair.generate(prompt, method=method, max_tokens=max_tokens, **params)
    s = r.stats
    share = s["acceptance_rate"] if s["drafted"] else s["system2_fraction"]
    return {"tps": s["tokens_per_second"], "e2e": s["n_tokens"] / s["seconds"], "n": s["n_tokens"],
            "tokens": r.tokens, "share": share, "time": {k: s[k] for k in BREAKDOWN} | {
                "generation_seconds": s["generation_seconds"]}}


# Where a generation's time went (Result.stats): System 1's decodes, the large model's, sampling.
BREAKDOWN = ("system1_seconds", "system1_decodes", "system1_tokens", "system2_seconds", "system2_decodes",
             "system2_tokens", "sampling_seconds", "priced_seconds")


def print_breakdown(results: dict[str, list[dict]]) -> None:
    """Per prompt and fsgen row, where the generation phase went, in ms per output token: System 1's
    decodes (and how many), the large model's (how many, mean rows each), sampling, the rest."""
    base = results["large"]
    print("where the time went (ms per output token; S1/S2: decodes, S2 rows per decode):")
    for name, runs in results.items():
        if not runs or "time" not in runs[0]:
            continue
        cells = []
        for i, (r, b) in enumerate(zip(runs, base)):
            t, n = r["time"], max(1, r["n"])
            rest = t["generation_seconds"] - t["system1_seconds"] - t["system2_seconds"] - t["sampling_seconds"]
            rows = t["system2_tokens"] / t["system2_decodes"] if t["system2_decodes"] else 0
            priced = f" (priced {r['priced']:.2f}x)" if r.get("priced") else ""
            cells.append(f"p{i + 1} {r['tps'] / b['tps']:.2f}x{priced}: S1 {1e3 * t['system1_seconds'] / n:.1f} "
                         f"({t['system1_decodes']}) S2 {1e3 * t['system2_seconds'] / n:.1f} "
                         f"({t['system2_decodes']}, {rows:.1f}) samp {1e3 * t['sampling_seconds'] / n:.2f} "
                         f"rest {1e3 * rest / n:.2f}")
        print(f"  {name}")
        for cell in cells:
            print(f"    {cell}")


_LLAMA_CPP_WORKER = r"""
import json, sys, time
import llama_cpp
path, n_ctx, threads, lookup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "lookup"
draft = None
if lookup:
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding
    draft = LlamaPromptLookupDecoding(num_pred_tokens=10)
llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_ubatch=512, n_threads=threads,
                      n_threads_batch=threads, flash_attn=True, verbose=False, draft_model=draft,
                      logits_all=lookup)  # its speculative path reads every row's logits
print("ready", flush=True)
for line in sys.stdin:
    prompt, max_tokens = json.loads(line)
    llm.reset()
    start = time.perf_counter(); first = None; n = 0
    for _ in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True):
        n += 1
        first = first or time.perf_counter()
    end = time.perf_counter()
    print(json.dumps({"tps": (n - 1) / (end - first) if n > 1 else 0.0, "e2e": n / (end - start), "n": n,
                      "share": None}), flush=True)
"""


class LlamaCppPython:
    """llama-cpp-python in its own process (two OpenMP thread pools in one process slow each
    other down), running the same libllama as fsgen through LLAMA_CPP_LIB_PATH; flash attention
    on, as llama.cpp's default "auto" picks for fsgen on the CPU."""

    def __init__(self, path: str, n_ctx: int, threads: int, lookup: bool = False):
        env = dict(os.environ, LLAMA_CPP_LIB_PATH=str(fsgen_lib_dir()))
        self.proc = subprocess.Popen([sys.executable, "-c", _LLAMA_CPP_WORKER, path, str(n_ctx), str(threads),
                                      "lookup" if lookup else "plain"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("llama-cpp-python failed to start (pip install llama-cpp-python)")

    def run(self, prompt: str, max_tokens: int) -> dict:
        self.proc.stdin.write(json.dumps([prompt, max_tokens]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())


def peak_rss_of_pair(small: str, large: str, threads: int, n_ctx: int) -> float:
    """A fresh process's peak RSS with the pair loaded, after one generation. Read from VmHWM, the
    high-water mark of the process's own memory map: getrusage's ru_maxrss keeps the peak of the
    image before exec, which after subprocess's vfork is this (benchmark) process's."""
    code = ("import fsgen, re, sys\n"
            f"p = fsgen.Pair({small!r}, {large!r}, n_threads={threads}, n_ctx={n_ctx})\n"
            "p.generate('def fib(n):', method='speculative', max_tokens=32)\n"
            "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) * 1024


# ---- fs: fixed threshold, its guard, and the budget router ----

# Prose and less familiar code: where System 1 is unsure on many tokens and fs at a fixed
# threshold consults System 2 on most of them.
FS_FREEFORM_PROMPTS = [
    "Write a short story (three paragraphs) about a lighthouse keeper who finds a message in a bottle.",
    "Explain, in plain prose for a general reader, why the Roman Republic collapsed.",
    "Write a Haskell function that parses arithmetic expressions with a monadic parser, and explain it.",
    "Write a Fortran 77 subroutine that solves a tridiagonal system, with comments.",
]
FS_SHARES = (0.05, 0.2)


def humaneval_prompts(n: int) -> list[str]:
    """The first n HumanEval problems as "complete this function" requests."""
    return [f"Complete this Python function. Reply with the whole function in one ```python block.\n\n"
            f"```python\n{p['prompt']}```" for p in humaneval_problems(n)]


def fs_budget_rows(shares=FS_SHARES) -> dict:
    """large-only, fs as FS-GEN runs it (entropy > 0.5 nats, no guard), fs at its defaults (the
    guard on), speculative (what the guard hands the writing over to: the ceiling of a guarded fs
    that cannot pay), and the budget router at each share."""
    rows = {"large": ("large", {}),
            "fs (entropy > 0.5, no guard)": ("fs", {"guard": False}),
            "fs (defaults: entropy > 0.5, guard)": ("fs", {}),
            "speculative (the guard's hand-over)": ("speculative", {})}
    for share in shares:
        rows[f"fs (budget {100 * share:g}%)"] = ("fs", {"router": "budget", "system2_share": share})
    return rows


def fs_budget_section(pair, n_humaneval: int, max_tokens: int, n_freeform: int = len(FS_FREEFORM_PROMPTS),
                      shares=FS_SHARES, repeats: int = 1) -> dict:
    """Runs fs_budget_rows on HumanEval and free-form prompts, each prompt's rows side by side
    (repeats interleaved, the median run of each row counts), and prints per row: System 2's
    share achieved (median; worst distance from the target for the budget rows), tokens/s against
    large-only per prompt (median and worst), and how often the guard fired. Returns the raw
    measurements."""
    prompt_sets = {"free-form": FS_FREEFORM_PROMPTS[:n_freeform],
                   "HumanEval": humaneval_prompts(n_humaneval) if n_humaneval else []}
    rows = fs_budget_rows(shares)
    results: dict[str, dict[str, list[dict]]] = {}
    for set_name, texts in prompt_sets.items():
        for i, text in enumerate(texts):
            print(f"fs section: {set_name} prompt {i + 1}/{len(texts)}", file=sys.stderr)
            prompt = pair.large.apply_chat_template([{"role": "user", "content": text}])
            runs: dict[str, list[dict]] = {}
            for _ in range(repeats):
                for name, (method, params) in rows.items():
                    r = pair.generate(prompt, method=method, max_tokens=max_tokens, **params)
                    runs.setdefault(name, []).append(
                        {"tps": r.stats["tokens_per_second"], "share": r.stats["system2_fraction"],
                         "n": r.stats["n_tokens"], "guard_tokens": r.stats["guard_tokens"]})
            for name in rows:
                results.setdefault(set_name, {}).setdefault(name, []).append(median_of(runs[name]))
            done = {k: v[-1] for k, v in results[set_name].items()}
            print("  " + "; ".join(f"{k}: {v['tps'] / done['large']['tps']:.2f}x S2 {100 * v['share']:.0f}%"
                                   for k, v in done.items() if k != "large"), file=sys.stderr)
    print(f"\nfs: fixed threshold, guard, budget router (≤{max_tokens} new tokens, greedy; the share is "
          "System 2's share of the output tokens)")
    header = (f"{'prompts':<11}{'method':<38}{'S2 share':>9}{'|Δ| max':>8}{'× large':>9}{'min ×':>7}"
              f"{'guard fired':>13}")
    print(header)
    print("-" * len(header))
    for set_name, by_row in results.items():
        base = by_row["large"]
        for name, runs in by_row.items():
            if name == "large":
                continue
            ratios = [r["tps"] / b["tps"] for r, b in zip(runs, base) if b["tps"] > 0]
            target = next((s for s in shares if name == f"fs (budget {100 * s:g}%)"), None)
            worst = f"{100 * max(abs(r['share'] - target) for r in runs):.1f}pt" if target else "—"
            fired = sum(r["guard_tokens"] > 0 for r in runs)
            print(f"{set_name:<11}{name:<38}{100 * statistics.median(r['share'] for r in runs):>8.0f}%{worst:>8}"
                  f"{statistics.median(ratios):>8.2f}x{min(ratios):>6.2f}x{f'{fired}/{len(runs)}':>13}")
    print("× large: tokens/s (generation phase) over large-only's on the same prompt, median (min: the worst "
          "prompt).")
    return results


# ---- drafting across tokenizers: a cheaper System 1 of another family ----

CROSS_ROWS = {"speculative, same-family System 1 (adaptive)": ("same", "speculative", {"draft": "model"}),
              "speculative, other tokenizer (auto)": ("cross", "speculative", {"draft": "model"}),
              # --all-rows: each algorithm, and fixed lengths.
              "speculative, other tokenizer (SLEM)": ("cross", "speculative", {"draft": "model", "cross_vocab": "slem"}),
              "speculative, other tokenizer (TLI)": ("cross", "speculative", {"draft": "model", "cross_vocab": "tli"}),
              # Fixed lengths: every round drafts, so the acceptance of each algorithm shows even where
              # the planner would not draft.
              "speculative, same-family System 1 (draft 3)": ("same", "speculative", {"draft": "model", "draft_max": 3}),
              "speculative, other tokenizer (SLEM, draft 3)": ("cross", "speculative",
                                                               {"draft": "model", "cross_vocab": "slem", "draft_max": 3}),
              "speculative, other tokenizer (TLI, draft 3)": ("cross", "speculative",
                                                              {"draft": "model", "cross_vocab": "tli", "draft_max": 3})}


def step_ratio(pair) -> tuple[float, float]:
    """System 1's draft step against a one-row verify of the large model, and 4 rows against one,
    from the pair's calibration (this run's, or measured now where the pair has none cached)."""
    cal = pair.calibrate(cached=True)["calibration"]
    verify = cal["verify_seconds"]
    return cal["draft_seconds"] / verify[1], verify.get(4, float("nan")) / verify[1]


CROSS_BASELINE = "large (the pair across tokenizers)"


def cross_section(pair, cross, chat: dict, max_tokens: int, repeats: int, settings: list[str],
                  prompts_per_set: int, all_rows: bool = False) -> dict:
    """System 1 of the same family (pair) against one with another tokenizer (cross, the same large
    model) drafting for the large model: per prompt set and sampling, every row side by side with
    large-only (repeats interleaved, the median run counts), acceptance per algorithm."""
    same_step, same_curve = step_ratio(pair)
    cross_step, cross_curve = step_ratio(cross)
    print("\ndrafting across tokenizers: which System 1 pays here")
    print(f"  {pathlib.Path(pair.small.path).name}: a draft step = {same_step:.2f} x a one-row verify "
          f"(4 rows = {same_curve:.2f} x one row)")
    print(f"  {pathlib.Path(cross.small.path).name}: a draft step = {cross_step:.2f} x a one-row verify "
          f"(4 rows = {cross_curve:.2f} x one row); vocabularies: {cross.vocab}")
    tables: dict[str, dict[str, list[dict]]] = {}
    samplings = [("greedy", {})] + [(setting, SAMPLINGS[setting][1]) for setting in settings]
    chat = {name: prompts[:prompts_per_set] for name, prompts in chat.items()}
    rows = CROSS_ROWS if all_rows else dict(list(CROSS_ROWS.items())[:2])
    for setting, sampling in samplings:
        for set_name, prompts in chat.items():
            results = tables.setdefault(f"{set_name}, {setting}", {})
            for i, (label, prompt) in enumerate(prompts):
                print(f"across tokenizers ({setting}): {set_name} prompt {i + 1}/{len(prompts)} ({label})",
                      file=sys.stderr, flush=True)
                # Large-only on each pair: each pair prices from its own calibration (the same large
                # model measured twice), so a row's priced ratio is taken against its own pair's.
                engines = [("large", lambda: run_fsgen(pair, prompt, max_tokens, "large", sampling)),
                           (CROSS_BASELINE, lambda: run_fsgen(cross, prompt, max_tokens, "large", sampling))]
                engines += [(name, lambda w=which, m=method, p=params:
                             run_fsgen(pair if w == "same" else cross, prompt, max_tokens, m, {**p, **sampling}))
                            for name, (which, method, params) in rows.items()]
                run_side_by_side(engines, i, repeats, results,
                                 {name: CROSS_BASELINE for name, (which, _, _) in rows.items() if which == "cross"})
            label = "greedy" if setting == "greedy" else SAMPLINGS[setting][0] + "; seed 1"
            print_table(f"{set_name}, drafting across tokenizers ({label})", results)
    print_targets(tables, title="drafting across tokenizers")
    return tables


# ---- main ----

def print_cost_curve(pair, reuse: bool) -> None:
    """The large model's measured verify cost by batch size here, and the draft lengths it implies
    (reuse: the cached calibration where there is one)."""
    from fsgen.planner import implied_lengths
    if reuse:
        pair._calibrator.prepare(pair._core)
    cal = (pair.planner if reuse else pair.calibrate())["calibration"]
    verify, draft = cal["verify_seconds"], cal["draft_seconds"]
    single = verify[1]
    print("verify cost curve of the large model on this machine (one decode of N rows after ~200 tokens):")
    print("  rows: " + " ".join(f"{r:>6d}" for r in sorted(verify)))
    print("  ms:   " + " ".join(f"{1e3 * verify[r]:>6.1f}" for r in sorted(verify)))
    print("  x 1:  " + " ".join(f"{verify[r] / single:>6.2f}" for r in sorted(verify)))
    print(f"  a System 1 draft step: {1e3 * draft:.1f} ms ({draft / single:.2f} x a one-row verify)")
    sampling = pair.cost_table.get("sampling_seconds")
    if sampling:
        print(f"  a sampled row (temperature 1, no truncation): {1e3 * sampling:.2f} ms "
              f"({sampling / single:.3f} x a one-row verify)")
    print("  draft length implied at per-token acceptance a (n-gram / System 1, expected speed-up):")
    for row in implied_lengths(verify, draft, acceptances=(0.6, 0.8, 0.9, 1.0)):
        print(f"    a={row['acceptance']:.1f}: n-gram {row['ngram']} ({row['ngram_speedup']:.2f}x), "
              f"System 1 {row['model']} ({row['model_speedup']:.2f}x)")
    print()


def print_table(title: str, results: dict[str, list[dict]]) -> None:
    base = results["large"]
    print(f"\n{title}")
    width = max(40, 2 + max(len(name) for name in results))
    header = f"{'method':<{width}}{'tok/s':>7}{'× large':>9}{'min ×':>7}{'e2e tok/s':>11}{'same as large':>15}  accept / S2"
    print(header)
    print("-" * len(header))
    for name, runs in results.items():
        ratios = [r["tps"] / b["tps"] for r, b in zip(runs, base) if b["tps"] > 0]
        same = [r["tokens"] == b["tokens"] for r, b in zip(runs, base) if "tokens" in r]
        shares = [r["share"] for r in runs if r["share"] is not None]
        print(f"{name:<{width}}{statistics.median(r['tps'] for r in runs):>7.1f}{statistics.median(ratios):>8.2f}x"
              f"{min(ratios):>6.2f}x{statistics.median(r['e2e'] for r in runs):>11.1f}"
              f"{(f'{sum(same)}/{len(same)}' if same else '—'):>15}"
              f"  {(f'{100 * statistics.median(shares):.0f}%' if shares else '—')}")
    print_breakdown(results)


def median_of(runs: list[dict]) -> dict:
    """The run with the median speed (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r["tps"])
    return ordered[(len(ordered) - 1) // 2]


def priced_per_token(run: dict) -> float:
    """The run's decodes priced by the cost curve last calibrated (stats["priced_seconds"]), per output token."""
    return run["time"]["priced_seconds"] / max(1, run["n"]) if "time" in run else 0.0


def paired_ratios(runs: list[dict], base: list[dict]) -> dict:
    """Against the base engine's runs of the same repeats (run side by side, seconds apart): the
    median of the tokens/s ratios (a slow spell of the host then hits both sides of a ratio), and
    of the priced ratios (the cost table's price of each run's decodes: no noise at all)."""
    measured = [r["tps"] / b["tps"] for r, b in zip(runs, base) if b["tps"] > 0]
    priced = [priced_per_token(b) / priced_per_token(r) for r, b in zip(runs, base) if priced_per_token(r) > 0]
    return {"paired": statistics.median(measured) if measured else None,
            "priced": statistics.median(priced) if priced else None}


def run_side_by_side(engines: list, first: int, repeats: int, results: dict[str, list[dict]],
                     baselines: dict[str, str] | None = None) -> None:
    """Runs every (name, run) engine `repeats` times and appends each one's median run to results.
    Each prompt and repeat starts from another engine (`first` + repeat): the order's effect (a few
    percent on a shared host) spreads over all of them instead of favouring the first. Repeats are
    interleaved, so a slow spell of the host hits every engine alike. Paired ratios are taken
    against "large", or the engine `baselines` names for a row (large-only priced by the same
    cost table)."""
    runs: dict[str, list[dict]] = {}
    for repeat in range(repeats):
        shift = (first + repeat) % len(engines)
        for name, run in engines[shift:] + engines[:shift]:
            runs.setdefault(name, []).append(run())
    for name, _ in engines:
        median = median_of(runs[name])
        base = (baselines or {}).get(name, "large")
        if base in runs:
            median = {**median, **paired_ratios(runs[name], runs[base])}
        results.setdefault(name, []).append(median)


def sampled_section(pair, chat: dict, max_tokens: int, repeats: int, settings: list[str],
                    rows: dict = SAMPLED_ROWS) -> dict:
    """The sampled tables: per setting ("greedy" too) and prompt set, the rows, interleaved as above."""
    tables: dict[str, dict[str, list[dict]]] = {}
    for setting in settings:
        label_of_setting, sampling = ("greedy", {}) if setting == "greedy" else SAMPLINGS[setting]
        for set_name, prompts in chat.items():
            results = tables.setdefault(f"{set_name}, {setting}", {})
            for i, (label, prompt) in enumerate(prompts):
                print(f"sampled ({setting}): {set_name} prompt {i + 1}/{len(prompts)} ({label})", file=sys.stderr,
                      flush=True)
                engines = [(name, lambda m=method, p=params: run_fsgen(pair, prompt, max_tokens, m, {**p, **sampling}))
                           for name, (method, params) in rows.items()]
                run_side_by_side(engines, i, repeats, results)
            print_table(f"{set_name}, greedy" if setting == "greedy" else
                        f"{set_name}, sampled ({label_of_setting}; seed 1)", results)
    return tables


def print_targets(tables: dict[str, dict[str, list[dict]]], target: float = 0.95, title: str = "targets") -> None:
    """Per row and setting: the worst prompt against large-only over every prompt set, and the
    prompts below the target."""
    print(f"\n{title}: every prompt ≥ {target:.2f}× large-only. Per prompt: measured, the median over "
          "repeats of the ratio to large-only's run beside it (the tokens/s medians where a row has no "
          "pairs); priced, the same for the cost table's price of the decodes (the method's work without "
          "the host's noise)")
    for kind in ("measured", "priced"):
        worst: dict[tuple[str, str], list] = {}
        for table, results in tables.items():
            setting = table.split(", ", 1)[1]
            for name, runs in results.items():
                if name in ("large", CROSS_BASELINE):
                    continue
                for i, (r, b) in enumerate(zip(runs, results["large"])):
                    ratio = (r.get("paired") or r["tps"] / b["tps"]) if kind == "measured" else r.get("priced")
                    if ratio is not None:
                        worst.setdefault((name, setting), []).append((ratio, f"{table.split(',')[0]} p{i + 1}"))
        for (name, setting), ratios in worst.items():
            low = sorted(x for x in ratios if x[0] < target)
            print(f"  {kind:<8} {name:<28} {setting:<8} median {statistics.median(x[0] for x in ratios):.2f}x, "
                  f"worst {min(ratios)[0]:.2f}x ({min(ratios)[1]}); below {target:.2f}x: "
                  + (", ".join(f"{where} {ratio:.2f}x" for ratio, where in low) or "none"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small")
    ap.add_argument("--large")
    ap.add_argument("--edit-prompts", type=int, default=5)
    ap.add_argument("--free-prompts", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs per prompt and row, interleaved between rows; the median one counts")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--all-rows", action="store_true",
                    help="every row: also n-gram drafts with the large model alone, speculative with System 1's "
                    "drafts (adaptive and --draft), fs at --fs-thresholds, llama.cpp's n-gram anchors, and each "
                    "algorithm and fixed length across tokenizers (about twice the default run's time)")
    ap.add_argument("--fs-thresholds", default="1.0", help="entropy thresholds (nats) for fs rows (--all-rows)")
    ap.add_argument("--draft", default="3", help="fixed draft lengths for speculative (System 1) rows (--all-rows)")
    ap.add_argument("--spec-simple-draft", type=int, default=4)
    ap.add_argument("--no-spec-simple", action="store_true", help="skip llama-speculative-simple (--all-rows)")
    ap.add_argument("--no-llama-ngram", action="store_true", help="skip llama.cpp's n-gram anchors (--all-rows)")
    ap.add_argument("--no-llama-cpp-python", action="store_true")
    ap.add_argument("--llama-cpp-python-lookup", action="store_true",
                    help="also llama-cpp-python's prompt lookup (0.25-0.85x large-only here: a third of the run's time)")
    ap.add_argument("--json", type=pathlib.Path, help="also write the raw measurements here")
    ap.add_argument("--fs-freeform", type=int,
                    help=f"free-form prompts in the fs section (1 in the default run; all {len(FS_FREEFORM_PROMPTS)} "
                    "with --targets and --fs-budget-only)")
    ap.add_argument("--fs-shares", default=",".join(f"{s:g}" for s in FS_SHARES),
                    help="System 2 shares for the budget rows of the fs section")
    ap.add_argument("--fs-budget-only", action="store_true",
                    help="only the fs section: fixed threshold, guard and budget router (HumanEval and free-form)")
    ap.add_argument("--fs-humaneval", type=int,
                    help="HumanEval prompts in the fs section (1 in the default run, 2 with --fs-budget-only)")
    ap.add_argument("--reuse-curve", action="store_true", help="the cached cost curve, if any, instead of measuring")
    ap.add_argument("--cross-small", help="System 1 with another tokenizer for the section drafting across "
                    "tokenizers (a path or a name fsgen pull knows; default smollm2-135m)")
    ap.add_argument("--cross-only", action="store_true",
                    help="only the section drafting across tokenizers (same-family System 1 against --cross-small)")
    ap.add_argument("--no-cross", action="store_true", help="skip the section drafting across tokenizers")
    ap.add_argument("--cross-prompts", type=int, default=1, help="prompts per set in the section across tokenizers")
    ap.add_argument("--cross-sampling", default="openai",
                    help="sampled settings (of --sampling) in the section across tokenizers, beside greedy")
    ap.add_argument("--targets", action="store_true",
                    help="only the targets: large-only, speculative and fs at their defaults on every prompt (code "
                    "edits, free-form, the fs section's free-form), greedy and sampled; use with --repeats 3")
    ap.add_argument("--sampling", default=",".join(SAMPLINGS),
                    help="sampled settings to measure beside greedy: chat, openai (comma-separated; empty: none)")
    args = ap.parse_args()
    whole = args.targets or args.fs_budget_only
    if args.fs_freeform is None:
        args.fs_freeform = len(FS_FREEFORM_PROMPTS) if whole else 1
    if args.fs_humaneval is None:
        args.fs_humaneval = 2 if whole else 1

    import fsgen
    if args.small and args.large:
        small, large = args.small, args.large
    else:
        small, large = (str(p) for p in fsgen.pull("demo"))
    pair = fsgen.Pair(small, large, n_threads=args.threads, n_ctx=args.n_ctx, calibrate=True)
    if args.fs_budget_only:
        pair.generate("def f(x):", method="large", max_tokens=16)  # page the weights in
        fs_results = fs_budget_section(pair, args.fs_humaneval, args.max_tokens, args.fs_freeform,
                                       [float(x) for x in args.fs_shares.split(",") if x], args.repeats)
        if args.json:
            args.json.write_text(json.dumps(fs_results, indent=1))
        return 0
    sets = {"edit": edit_prompts(args.edit_prompts), "free": free_prompts(args.free_prompts)}
    chat = {name: [(label, pair.large.apply_chat_template([{"role": "user", "content": p}])) for label, p in ps]
            for name, ps in sets.items()}
    settings = [s for s in SAMPLINGS if s in args.sampling.split(",")]

    def run_cross_section() -> dict:
        cross_small = args.cross_small or "smollm2-135m"
        if not pathlib.Path(cross_small).exists():
            cross_small = str(fsgen.pull(cross_small)[0])
        cross = fsgen.Pair(cross_small, large, n_threads=args.threads, n_ctx=args.n_ctx, calibrate=True)
        cross.generate(chat["edit"][0][1], method="speculative", max_tokens=16)  # page the weights in
        return cross_section(pair, cross, chat, args.max_tokens, args.repeats,
                             [s for s in settings if s in args.cross_sampling.split(",")], args.cross_prompts,
                             args.all_rows)

    if args.targets:
        texts = [("fs free-form", t) for t in FS_FREEFORM_PROMPTS[:args.fs_freeform]]
        chat["fs free-form"] = [(label, pair.large.apply_chat_template([{"role": "user", "content": t}]))
                                for label, t in texts]
        chat = {name: prompts for name, prompts in chat.items() if prompts}  # --edit-prompts 0: none
        pair.generate(next(iter(chat.values()))[0][1], method="speculative", max_tokens=16)  # page the weights in
        print_cost_curve(pair, args.reuse_curve)
        results = sampled_section(pair, chat, args.max_tokens, args.repeats, ["greedy", *settings], TARGET_ROWS)
        print_targets(results)
        if args.json:
            args.json.write_text(json.dumps({s: {k: [{kk: vv for kk, vv in r.items() if kk != "tokens"} for r in v]
                                                 for k, v in t.items()} for s, t in results.items()}, indent=1))
        return 0
    if args.cross_only:
        pair.generate(chat["edit"][0][1], method="speculative", max_tokens=16)
        cross = run_cross_section()
        if args.json:
            args.json.write_text(json.dumps({s: {k: [{kk: vv for kk, vv in r.items() if kk != "tokens"} for r in v]
                                                 for k, v in t.items()} for s, t in cross.items()}, indent=1))
        return 0
    print_cost_curve(pair, args.reuse_curve)

    rows: dict[str, tuple] = dict(SAMPLED_ROWS)  # greedy here, then sampled alike
    if args.all_rows:
        rows["n-gram, large model alone"] = ("large", {"draft": "ngram"})
        rows["speculative System 1 (adaptive)"] = ("speculative", {"draft": "model"})
        for k in (int(x) for x in args.draft.split(",") if x):
            rows[f"speculative System 1 (draft {k})"] = ("speculative", {"draft": "model", "draft_max": k})
        for t in (float(x) for x in args.fs_thresholds.split(",") if x):
            rows[f"fs (entropy > {t:g})"] = ("fs", {"router": "entropy", "threshold": t})
    references = {} if args.no_llama_cpp_python else {
        "llama-cpp-python large": LlamaCppPython(large, args.n_ctx, args.threads)}
    if args.llama_cpp_python_lookup:
        references["llama-cpp-python prompt lookup (10)"] = LlamaCppPython(large, args.n_ctx, args.threads, lookup=True)
    tools = llama_cpp_tools.anchors(small, large, args.max_tokens, args.threads, args.n_ctx, args.spec_simple_draft,
                                    ngram=args.all_rows and not args.no_llama_ngram,
                                    model_draft=args.all_rows and not args.no_spec_simple)

    # Warm-up: page the weights in.
    pair.generate(chat["edit"][0][1], method="speculative", max_tokens=16)
    tables: dict[str, dict[str, list[dict]]] = {}
    for set_name, prompts in chat.items():
        results = tables.setdefault(set_name, {})
        for i, (label, prompt) in enumerate(prompts):
            print(f"{set_name} prompt {i + 1}/{len(prompts)} ({label})", file=sys.stderr, flush=True)
            engines = [(name, lambda m=method, p=params: run_fsgen(pair, prompt, args.max_tokens, m, p))
                       for name, (method, params) in rows.items()]
            engines += [(name, lambda r=reference: r.run(prompt, args.max_tokens))
                        for name, reference in references.items()]
            engines += [(name, lambda e=exe, a=tool_args: llama_cpp_tools.run(e, a(prompt)))
                        for name, (exe, tool_args) in tools.items()]
            run_side_by_side(engines, i, args.repeats, results)

    print(f"\nfsgen {fsgen.__version__} benchmark — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.threads} threads, ≤{args.max_tokens} new tokens, greedy, "
          f"median of {args.repeats} per prompt")
    print(f"small: {pathlib.Path(small).name}\nlarge: {pathlib.Path(large).name}")
    print_table(f"code edits built from HumanEval ({len(chat['edit'])} prompts)", tables["edit"])
    print_table(f"free-form prompts ({len(chat['free'])})", tables["free"])
    sampled = sampled_section(pair, chat, args.max_tokens, args.repeats, settings)
    fs_budget_section(pair, args.fs_humaneval, args.max_tokens, args.fs_freeform,
                      [float(x) for x in args.fs_shares.split(",") if x], args.repeats)
    print_targets({**{f"{name}, greedy": {row: runs for row, runs in table.items() if row in SAMPLED_ROWS}
                      for name, table in tables.items()}, **sampled}, title="greedy and sampled side by side")
    if not args.no_cross:
        sampled.update({f"across tokenizers: {k}": v for k, v in run_cross_section().items()})
    rss = peak_rss_of_pair(small, large, args.threads, args.n_ctx)
    files = os.path.getsize(small) + os.path.getsize(large)
    print(f"\npeak RSS of a loaded pair: {rss / 2**20:.0f} MiB; the two GGUF files: {files / 2**20:.0f} MiB "
          f"({rss / files:.2f}×)")
    print("tok/s: generation phase, median over prompts; × large: per-prompt ratio to fsgen large-only, median "
          "(min: the worst prompt);\naccept / S2: draft acceptance rate, or System 2's share of tokens for fs.")
    print(f"rerun: python benchmarks/bench.py --edit-prompts {args.edit_prompts} --free-prompts {args.free_prompts} "
          f"--max-tokens {args.max_tokens} --threads {args.threads} --repeats {args.repeats}"
          + (" --all-rows" if args.all_rows else ""))
    if args.json:
        tables.update(sampled)
        args.json.write_text(json.dumps({s: {k: [{kk: vv for kk, vv in r.items() if kk != "tokens"} for r in v]
                                             for k, v in t.items()} for s, t in tables.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
