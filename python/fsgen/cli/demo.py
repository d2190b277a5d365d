"""`fsgen demo`: the collaborative method that pays on this machine, next to the others.

The headline row is chosen from the machine's verify cost curve (measured once, cached): System
1's drafts verified by System 2 (speculative decoding) where a batch of rows costs little more than
one, fast-and-slow where a System 1 step plus System 2's batched read of the token is cheap
against a System 2 step, and otherwise speculative decoding with its automatic draft source
(n-gram drafts where the text repeats, the large model's own speed elsewhere). The other
collaborative method keeps its row beside it (fs with the share of tokens System 2 wrote), then
large-only and small-only.

The prompt is an edit of code it quotes (type hints and a docstring): what a user asks of a
coding assistant most, and the kind of text where drafting pays on any machine.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from .render import legend, print_stream, use_colour

PROMPT = """Add type hints and a one-line docstring to this function. Reply with the code only.

```python
def merge_intervals(intervals):
    intervals.sort(key=lambda x: x[0])
    merged = []
    for interval in intervals:
        if not merged or interval[0] > merged[-1][1]:
            merged.append(interval)
        else:
            merged[-1][1] = max(merged[-1][1], interval[1])
    return merged
```"""

# fs consults System 2 where System 1's entropy exceeds 1 nat: on the demo pair that is a few
# percent of the tokens of a coding answer, enough to see it step in.
DEMO_THRESHOLD = 1.0
# fs writes with System 1 and pays System 2's reads on top: each token costs a System 1 step, and
# System 2 reads it in the batch of its next consultation (priced here at one per 16 tokens). fs
# heads the demo only where that costs at most this share of a System 2 step. On a 2-core CPU
# (4 rows 2.3x one row, 16 rows 7x, a System 1 step 0.45) it is 0.89 and the guard handed 93% of
# the demo's tokens to speculative decoding: fs ran at 0.93x large-only there.
FS_MAX_TOKEN_COST = 0.75
FS_READ_BATCH = 16
# The acceptance of System 1's drafts assumed when judging whether they can pay.
ASSUMED_ACCEPTANCE = 0.7


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="pull the demo pair and show the collaboration that pays on this machine")
    p.add_argument("--small", default=None,
                   help="System 1, a path or a known name, pulled if need be (default: the demo pair's 0.5B; "
                        "smollm2-135m: a pair whose tokenizers differ)")
    p.add_argument("--large", default=None, help="System 2, as --small (default: the demo pair's 1.5B)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=160)
    p.add_argument("--threshold", type=float, default=None, help="fs: entropy router threshold (nats)")
    p.set_defaults(run=run)


def choose(calibration: dict) -> tuple[str, dict, str]:
    """The headline method, its parameters and one line on why, from a calibration's figures
    (``verify_seconds`` by rows, ``draft_seconds``; empty: unknown).

    Returns
    -------
    tuple
        (label, generate() keywords, the regime line).
    """
    from ..planner import implied_lengths
    verify = calibration.get("verify_seconds") or {}
    draft = calibration.get("draft_seconds")
    auto = ("speculative (auto drafts)", {"method": "speculative"})
    if not verify or 1 not in verify or 4 not in verify or not draft:
        return (*auto, "the cost curve is unknown here (calibration off): speculative decoding follows the large "
                "model's text at no less than its speed, drafting where the text repeats")
    batch4 = verify[4] / verify[1]
    step = draft / verify[1]
    regime = f"verifying 4 tokens costs {batch4:.1f} decode steps here and a System 1 step {step:.2f} of one"
    implied = {row["acceptance"]: row for row in implied_lengths(verify, draft)}
    model_pays = (implied.get(ASSUMED_ACCEPTANCE) or {}).get("model")
    if model_pays:
        return ("speculative (System 1 drafts)", {"method": "speculative", "draft": "model"},
                f"{regime}, so System 1's drafts pay: System 2 checks several of them in one step")
    rows = max(r for r in verify if r <= FS_READ_BATCH)
    fs_token = step + verify[rows] / (rows * verify[1])  # a System 1 step and a row of System 2's batched read
    if fs_token <= FS_MAX_TOKEN_COST:
        return (f"fs (entropy > {DEMO_THRESHOLD:g})", {"method": "fs", "router": "entropy", "threshold": DEMO_THRESHOLD},
                f"{regime}, so System 1 writing and System 2 stepping in where it is unsure pays")
    return (*auto, f"{regime}, so neither System 1's drafts nor System 1 writing pays (a token of fs costs "
            f"{fs_token:.2f} of a step with System 2's batched read): speculative decoding drafts from the text "
            "itself (n-grams) where it repeats and runs at the large model's speed elsewhere")


def models(small: Optional[str], large: Optional[str]) -> tuple[str, str]:
    """The demo's two model files: each given one as a path, or as a known name pulled if need be
    (``fsgen pull``: at once when cached); either left out is the demo pair's own.

    Parameters
    ----------
    small, large : str or None
        System 1 and System 2: a GGUF path, a known model name, or None.

    Returns
    -------
    tuple of str
        The paths of System 1's and System 2's files.
    """
    from .. import hub

    default = dict(zip(("small", "large"), hub.GROUPS["demo"]))
    paths = []
    for role, arg in (("small", small), ("large", large)):
        arg = default[role] if arg is None else arg
        if arg in hub.REGISTRY and not os.path.exists(arg):
            paths.append(str(hub.pull(arg)[0]))
        else:
            paths.append(str(arg))
    return paths[0], paths[1]


def run(args) -> int:
    from .._api import Pair

    if args.small is None and args.large is None:
        print("fsgen demo: Qwen2.5-Coder 0.5B (System 1, fast) + 1.5B (System 2, slow)", file=sys.stderr)
    small_path, large_path = models(args.small, args.large)
    messages = [{"role": "user", "content": PROMPT}]
    threshold = DEMO_THRESHOLD if args.threshold is None else args.threshold
    fs = (f"fs (entropy > {threshold:g})", {"method": "fs", "router": "entropy", "threshold": threshold})
    with Pair(small_path, large_path, n_threads=args.threads, n_ctx=2048) as pair:
        calibration = pair.calibrate(cached=True)["calibration"] if pair.calibration_enabled else {}
        label, params, why = choose(calibration)
        translated = pair.vocab["kind"] == "translated"
        if translated:
            why += "; the two models do not share a tokenizer: they meet in text"
        if params.get("method") == "fs":
            params, label = fs[1], fs[0]
        print(f"\nPrompt: {PROMPT}\n{legend(use_colour(sys.stdout))}\n{label}: {why}.\n", file=sys.stderr)
        headline = print_stream(pair.stream(messages=messages, max_tokens=args.max_tokens, **params))
        if headline is None:
            return 130
        rows = [(label, headline)]
        auto = ("speculative (auto drafts)", {"method": "speculative"})
        others = [row for row in (auto, fs) if row[1] != params]
        others += [("large only", {"method": "large"}), ("small only", {"method": "small"})]
        for name, call in others:
            print(f"[running {name} on the same prompt for comparison ...]", file=sys.stderr)
            rows.append((name, pair.generate(messages=messages, max_tokens=args.max_tokens, **call)))
    print_table(rows)
    return 0


def print_table(rows: list) -> None:
    large: Optional[float] = next((r.stats["tokens_per_second"] for name, r in rows if name == "large only"), None)
    print(f"\n{'method':<30}{'tokens':>7}{'tokens/s':>10}{'vs large':>10}{'System 2 share':>16}")
    for name, r in rows:
        s = r.stats
        ratio = s["tokens_per_second"] / large if large else float("nan")
        print(f"{name:<30}{s['n_tokens']:>7}{s['tokens_per_second']:>10.1f}{ratio:>9.2f}x"
              f"{100 * s['system2_fraction']:>15.1f}%")
