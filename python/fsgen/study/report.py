"""The study report: a self-contained Markdown file (report.md, figures next to it) and
summary.json (the metadata and every table)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from .metrics import FEATURES, KINDS, mismatch_definition
from .records import model_label

FSGEN_RANGES = ("FS-GEN's published frequencies (Qwen1.5 pairs 0.5B–72B, 500 samples per task): "
                "oracle 6.6–15.2% (GSM8K), 9.5–21.9% (MMLU-STEM), 8.3–15.9% (MBPP), "
                "13–28.6% (MT-bench); contrastive 3.7–11% (FS-GEN's own variant: "
                "logits_S + β·(logits_L − logits_S) over the plausible tokens); proxy 5.9–27.1%.")

CONTRASTIVE_VARIANTS = {
    "standard": "variant standard, (1+β)·log p_L − β·log p_S (O'Brien & Lewis 2023): not FS-GEN's "
                "variant, so not directly comparable with FS-GEN's contrastive range",
    "fsgen": "variant fsgen, logits_S + β·(logits_L − logits_S): FS-GEN's own, comparable with "
             "its contrastive range",
}

FSGEN_COUNTS = """\
What FS-GEN counts differently (fsgen's definitions are used above unless a config says
otherwise):

- **End-of-generation step.** FS-GEN's denominator includes the step that emits the end token
  (and counts it as a mismatch when the two systems disagree there); fsgen's traces have no row
  for that step, so it is in neither count here. The bounds below say how much it can matter.
- **Speculative drafts.** FS-GEN drafts a fixed K = 5 tokens; fsgen's default is its cost-aware
  adaptive planner (`draft_max=None`). Run `--method-param speculative.draft_max=5` for
  FS-GEN's setting (config `speculative[draft_max=5]`).
- **Contrastive variant.** FS-GEN's range is for its own variant; run
  `--method-param contrastive.variant=fsgen` to compare like with like (config
  `contrastive[variant=fsgen]`).
- **Position.** FS-GEN plots each position decile's share of all mismatches; fsgen's figure shows
  the mismatch rate within each decile. The table in section 2 gives both.
"""
MISMATCH_DEFINITIONS = {
    "token": "token: System 2's token differs from System 1's greedy token (one vocabulary)",
    "text": "text: the tokenizers differ, so System 2's next token is compared with System 1's "
            "greedy text at the same position, as bytes up to the shorter of the two",
}
DEFINITIONS = """\
- **mismatch** (oracle, contrastive, proxy; all run in oracle mode, System 2 consulted at every
  step): the emitted token differs from System 1's greedy token on the same prefix; frequency =
  mismatches / generated tokens. That is the *token* definition, for pairs that share a
  vocabulary. A *translated* pair (different tokenizers; contrastive and proxy cannot run on it)
  uses the *text* definition: System 2's next token (in its own vocabulary) against System 1's
  greedy text at the same position, compared as bytes up to the shorter of the two; generated
  tokens are the large model's. The pairs table says which definition each pair used.
- **system2** (fs): tokens where the router consulted System 2 / generated tokens.
- **rejection** (speculative): drafted tokens not accepted / drafted tokens (1 − acceptance).
- **correction** (speculative): drafts cut short by System 2 / generated tokens (comparable to the
  mismatch fraction).
- Generated tokens exclude the end-of-generation token (see "What FS-GEN counts differently").
- Frequencies are pooled over prompts (total events / total tokens); 95% CIs are percentile
  bootstrap intervals over prompts (2000 resamples, fixed seed); "–" with fewer than two prompts.
- AUROC: probability that a mismatched token looks more uncertain to System 1 than a matched one
  (entropy higher; top-1 probability and margin lower), ties counted half.
- Router thresholds are chosen on the same tokens they are evaluated on (in-sample, optimistic).
- Speed: generated tokens / generation seconds (prompt processing excluded), pooled over prompts;
  the median of the per-prompt speeds is shown too (robust to a stalled generation).
"""


def _fmt(x, kind="num"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if kind == "pct":
        return f"{100 * x:.1f}%"
    if kind == "3f":
        return f"{x:.3f}"
    if kind == "int":
        return f"{int(x):,}"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def _model(m) -> str:
    """A model as file name and the start of its SHA-256."""
    sha = m.get("sha256") if isinstance(m, dict) else None
    return model_label(m) + (f" (sha256 {sha[:12]}…)" if sha else "")


def _param(r, name) -> str:
    """A scaling-law parameter: "value ± se" for a fit, the value alone for an interpolation."""
    if r["fitted"]:
        return f"{_fmt(r[name])} ± {_fmt(r['se_' + name])}"
    return _fmt(r[name]) if r.get("interpolated") else "–"


def table(rows, columns) -> str:
    """Markdown table; columns: list of (header, function of a row -> str)."""
    if not rows:
        return "_(none)_\n"
    head = "| " + " | ".join(h for h, _ in columns) + " |\n"
    rule = "|" + "|".join("---" for _ in columns) + "|\n"
    return head + rule + "".join("| " + " | ".join(str(f(r)).replace("|", "\\|")
                                                   for _, f in columns) + " |\n" for r in rows)


def _ci(r, lo="ci_low", hi="ci_high", key="frequency"):
    if r[lo] is None or (isinstance(r[lo], float) and math.isnan(r[lo])):
        return _fmt(r[key], "pct")
    return f"{_fmt(r[key], 'pct')} [{_fmt(r[lo], 'pct')}, {_fmt(r[hi], 'pct')}]"


def _wide(rows, column, cell, keys=("pair", "config")) -> list:
    """Long rows to one row per ``keys`` with a cell per value of ``column``."""
    out = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), dict(zip(keys, (r[k] for k in keys))))[
            r[column]] = cell(r)
    return list(out.values())


def _variants(freq) -> str:
    """Which contrastive variant each contrastive config used, and whether it compares."""
    seen = {}
    for r in freq:
        if (r.get("params") or {}).get("system2") == "contrastive" or \
                r["config"].startswith("contrastive"):
            seen[r["config"]] = (r.get("params") or {}).get("variant", "standard")
    if not seen:
        return ""
    return "Contrastive configs: " + "; ".join(
        f"`{c}`: {CONTRASTIVE_VARIANTS.get(v, f'variant {v}')}" for c, v in seen.items()) + "."


def _eog_bounds(freq) -> str:
    """Mismatch frequencies with the end-of-generation step counted as FS-GEN counts it: the
    step is unrecorded, so a range (agreeing at every such step .. disagreeing at every one)."""
    rows = [r for r in freq if r["measure"] == "mismatch" and r.get("n_eog")]
    if not rows:
        return ""
    cells = []
    for r in rows:
        den = r["denominator"] + r["n_eog"]
        lo, hi = r["events"] / den, (r["events"] + r["n_eog"]) / den
        cells.append(f"{r['config']} {_fmt(r['frequency'], 'pct')} → "
                     f"{_fmt(lo, 'pct')}–{_fmt(hi, 'pct')}")
    return ("Mismatch frequency with the end-of-generation step counted (FS-GEN's denominator; "
            "range from \"the systems agreed on every end step\" to \"disagreed on every one\"): "
            + "; ".join(cells) + ".")


def _vocab(v) -> str:
    """A pair's vocabulary relation (Pair.vocab) as text; records made before it was recorded: –."""
    if not v:
        return "–"
    if v.get("kind") == "translated":
        return f"translated ({_fmt(v.get('overlap'), 'pct')} of tokens in both)"
    return str(v.get("kind", "–"))


def _definitions(pairs) -> str:
    """Which mismatch definition each pair used, when the study mixes them or uses "text"."""
    used = {p["pair"]: p.get("mismatch_definition") or "token" for p in pairs}
    if set(used.values()) <= {"token"}:
        return ""
    mixed = " Section 4's fits pool pairs of both definitions." if len(set(used.values())) > 1 else ""
    return "Mismatch definition by pair: " + "; ".join(
        f"`{pair}`: {MISMATCH_DEFINITIONS.get(d, d)}" for pair, d in used.items()) + "." + mixed


def _skipped(rows) -> str:
    if not rows:
        return ""
    return "Not run (the pair cannot): " + "; ".join(
        f"`{r['config']}` on `{r['pair']}` ({r['reason']})" for r in rows) + "."


def _fig(figs, name, alt):
    return f"![{alt}]({name})\n" if name in figs else ""


def render(t, figs, meta) -> str:
    pairs = meta.get("pairs", [])
    md = ["# fsgen study report\n"]
    md.append(f"Task **{meta.get('task', '?')}**, {meta.get('n_prompts', '?')} prompts, "
              f"≤ {meta.get('max_tokens', '?')} new tokens, greedy. "
              f"Generated {meta.get('date', '')} with fsgen {meta.get('fsgen_version', '?')}.\n")
    if meta.get("rescored"):
        md.append(f"Rescored {meta['rescored']} from the records' reply texts with HumanEval "
                  f"scorer version {meta.get('scorer', '?')} (a pass means check() ran to its "
                  "end).\n")
    if pairs:
        md.append(table(pairs, [("pair", lambda p: p["pair"]),
                                ("small", lambda p: _model(p["small"])),
                                ("large", lambda p: _model(p["large"])),
                                ("params small", lambda p: _fmt(p.get("n_params_small"), "int")),
                                ("params large", lambda p: _fmt(p.get("n_params_large"), "int")),
                                ("ratio r", lambda p: _fmt(p.get("ratio"))),
                                ("vocabulary", lambda p: _vocab(p.get("vocab"))),
                                ("mismatch", lambda p: p.get("mismatch_definition") or "token")]))
    md.append("\n## 1. Collaboration frequency\n")
    md.append(table(t["frequency"], [("pair", lambda r: r["pair"]), ("config", lambda r: r["config"]),
                                     ("measure", lambda r: r["measure"]),
                                     ("prompts", lambda r: r["n_prompts"]),
                                     ("events / denominator",
                                      lambda r: f"{r['events']:,} / {r['denominator']:,}"),
                                     ("frequency [95% CI]", _ci)]))
    md.append(_definitions(pairs))
    md.append(_skipped(t.get("skipped", [])))
    md.append(f"\n{FSGEN_RANGES}\n")
    md.append(_variants(t["frequency"]))
    md.append(FSGEN_COUNTS)
    md.append(_eog_bounds(t["frequency"]))
    md.append("\n## 2. Where collaboration happens\n")
    md.append(_fig(figs, "position_deciles.png", "mismatch rate by position decile"))
    md.append(table(_wide(t["position"], "decile",
                          lambda r: f"{_fmt(r['rate'], 'pct')} ({_fmt(r.get('share'), 'pct')})"),
                    [("pair", lambda r: r["pair"]), ("config", lambda r: r["config"])] +
                    [(f"decile {d}", (lambda d: lambda r: r.get(d, "–"))(d))
                     for d in range(1, 11)]))
    md.append("Per position decile of the reply: mismatch rate within the decile (share of all "
              "mismatches in that decile, FS-GEN's view).")
    md.append(_fig(figs, "token_kinds.png", "mismatch rate by token kind"))
    md.append(table(_wide(t["token_kind"], "kind", lambda r: f"{_fmt(r['rate'], 'pct')} "
                                                             f"({r['mismatches']}/{r['tokens']})"),
                    [("pair", lambda r: r["pair"]), ("config", lambda r: r["config"])] +
                    [(k, (lambda k: lambda r: r.get(k, "–"))(k)) for k in KINDS]))
    md.append("Mismatch rate by token kind (mismatches/tokens).")
    md.append("\n## 3. Uncertainty of System 1 as a predictor of a mismatch\n")
    auc = _wide(t["auroc"], "feature", lambda r: _fmt(r["auroc"], "3f"))
    n = {(r["pair"], r["config"]): r for r in t["auroc"]}
    md.append(table(auc, [("pair", lambda r: r["pair"]), ("config", lambda r: r["config"])] +
                    [(f"AUROC {f}", (lambda f: lambda r: r.get(f, "–"))(f)) for f in FEATURES] +
                    [("mismatched / matched tokens", lambda r: "{:,} / {:,}".format(
                        n[(r["pair"], r["config"])]["n_mismatched"],
                        n[(r["pair"], r["config"])]["n_matched"]))]))
    md.append("Distributions, matched vs mismatched tokens (mean / median [p10, p90]):")
    md.append(table(_wide(t["uncertainty"], "group", lambda r: f"{_fmt(r['mean'])} / "
                          f"{_fmt(r['median'])} [{_fmt(r['p10'])}, {_fmt(r['p90'])}] (n={r['n']})",
                          ("pair", "config", "feature")),
                    [("pair", lambda r: r["pair"]), ("config", lambda r: r["config"]),
                     ("feature", lambda r: r["feature"]),
                     ("matched", lambda r: r.get("matched", "–")),
                     ("mismatched", lambda r: r.get("mismatched", "–"))]))
    md.append("Router thresholds reaching a target System 2 fraction (in-sample):")
    md.append(table(_wide(t["router"], "feature",
                          lambda r: f"{_fmt(r['threshold'])}: {_fmt(r['caught'], 'pct')} "
                                    f"({_fmt(r['system2_fraction'], 'pct')})",
                          ("pair", "config", "target")),
                    [("pair", lambda r: r["pair"]), ("config", lambda r: r["config"]),
                     ("target System 2 fraction", lambda r: _fmt(r["target"], "pct"))] +
                    [(f, (lambda f: lambda r: r.get(f, "–"))(f)) for f in FEATURES]))
    md.append("Cells: threshold: share of mismatches caught (System 2 fraction reached). "
              "The core's rule: entropy consults System 2 when > the threshold; top1 and "
              "margin when < (the threshold lies midway between the last token flagged and the "
              "next observed value).")
    for f in figs:
        if f.startswith(("uncertainty_", "roc_")):
            md.append(_fig(figs, f, f[:-4]))
    md.append("\n## 4. Scaling law: frequency = b − a·r^(−α)\n")
    md.append(table(t["scaling_points"], [("config", lambda r: r["config"]),
                                          ("pair", lambda r: r["pair"]),
                                          ("ratio r", lambda r: _fmt(r["ratio"])),
                                          ("frequency", lambda r: f"{r['frequency_pct']:.2f}%")]))
    md.append("\n" + table(t["scaling"], [
        ("config", lambda r: r["config"]), ("pairs", lambda r: r["n_pairs"]),
        ("kind", lambda r: r.get("kind", "fit" if r["fitted"] else "none")),
        ("a ± se", lambda r: _param(r, "a")), ("b ± se", lambda r: _param(r, "b")),
        ("α ± se", lambda r: _param(r, "alpha")),
        ("R²", lambda r: _fmt(r["r2"]) if r["fitted"] else "–"),
        ("note", lambda r: r["message"])]))
    md.append("\nFrequencies in percent; parameters bounded ≥ 0.05 as in FS-GEN. A fit (≥ 4 "
              "distinct ratios) gives R² and standard errors from curve_fit's covariance; with "
              "exactly 3 ratios the three parameters interpolate the points exactly and there is "
              "no goodness of fit to report.\n\n" + _fig(figs, "scaling_law.png", "scaling law"))
    md.append("\n## 5. Quality and speed\n")
    md.append(table(t["tradeoff"], [("pair", lambda r: r["pair"]), ("config", lambda r: r["config"]),
                                    ("prompts", lambda r: r["n_prompts"]),
                                    ("score [95% CI]", lambda r: _ci(r, "score_ci_low",
                                                                     "score_ci_high", "score")),
                                    ("tokens/s", lambda r: _fmt(r["tokens_per_second"])),
                                    ("median tokens/s per prompt",
                                     lambda r: _fmt(r.get("tokens_per_second_median"))),
                                    ("System 2 fraction", lambda r: _fmt(r["system2_fraction"], "pct")),
                                    ("tokens", lambda r: _fmt(r["n_tokens"], "int"))]))
    for f in figs:
        if f.startswith("tradeoff_"):
            md.append(_fig(figs, f, f[:-4]))
    md.append("\n## 6. Checks\n")
    md.append(f"Stats/trace disagreements: {len(t['consistency'])}; failed generations: "
              f"{len(t['errors'])}.\n\n")
    if t["consistency"]:
        md.append(table(t["consistency"][:50], [(k, (lambda k: lambda r: r[k])(k))
                                                for k in ("pair", "config", "prompt_id", "problem")]))
    if t["errors"]:
        md.append(table(t["errors"][:50], [(k, (lambda k: lambda r: r[k])(k))
                                           for k in ("pair", "config", "prompt_id", "error")]))
    md.append("\n## Definitions\n\n" + DEFINITIONS)
    return "\n\n".join(b.strip("\n") for b in md if b.strip()) + "\n"


def _clean(x):
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):  # numpy scalar
        return _clean(x.item())
    return x


def _version():
    try:
        import fsgen
        return fsgen.__version__
    except ImportError:
        return "?"


def write(out, tables, figs, meta, records=None):
    out = Path(out)
    meta = dict(meta)
    meta.setdefault("date", time.strftime("%Y-%m-%d"))
    meta.setdefault("fsgen_version", _version())
    if records is not None:
        meta.setdefault("n_prompts", len({r["prompt_id"] for r in records}))
        meta.setdefault("n_records", len(records))
        if not meta.get("pairs"):
            seen = {}
            for r in records:
                seen.setdefault(r["pair"], {
                    "pair": r["pair"], "small": r.get("small"), "large": r.get("large"),
                    "n_params_small": r.get("n_params_small"),
                    "n_params_large": r.get("n_params_large"),
                    "vocab": r.get("vocab"), "mismatch_definition": mismatch_definition(r),
                    "ratio": (r["n_params_large"] / r["n_params_small"]
                              if r.get("n_params_small") and r.get("n_params_large") else None)})
            meta["pairs"] = list(seen.values())
        if "max_tokens" not in meta and records:
            meta["max_tokens"] = records[0].get("max_tokens")
        if "task" not in meta and records:
            meta["task"] = records[0].get("task")
    (out / "report.md").write_text(render(tables, figs, meta), encoding="utf-8")
    summary = {"meta": meta, "figures": figs, "tables": tables}
    (out / "summary.json").write_text(json.dumps(_clean(summary), indent=1, allow_nan=False),
                                      encoding="utf-8")
