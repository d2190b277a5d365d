"""From records to tables, figures and the report. Pure: needs no model.

Every table is a list of row dicts (JSON-ready); ``analyze`` returns them all, writes the PNGs,
``report.md`` and ``summary.json`` into ``out``.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import metrics as M
from . import plots, report
from .records import read_records

RECORDS_FILE = "records.jsonl"
TARGETS = (0.05, 0.10, 0.20)
_ORDER = ("small", "large", "oracle", "contrastive", "proxy", "speculative", "fs")


def config_order(rec) -> tuple:
    base = re.split(r"[@\[]", rec["config"])[0]
    rank = _ORDER.index(base) if base in _ORDER else len(_ORDER)
    return (rank, (rec.get("params") or {}).get("threshold") or 0.0, rec["config"])


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_")[:80]


def group(records) -> dict:
    """{(pair, config): [records...]} over successful records, pairs by ratio, configs in order."""
    g = defaultdict(list)
    for r in records:
        if M.ok(r):
            g[(r["pair"], r["config"])].append(r)
    ratio = {p: pair_ratio(rs[0]) for (p, _), rs in g.items()}
    keys = sorted(g, key=lambda k: (ratio[k[0]], k[0], config_order(g[k][0])))
    return {k: sorted(g[k], key=lambda r: r["prompt_id"]) for k in keys}


def pair_ratio(rec) -> float:
    s, l = rec.get("n_params_small"), rec.get("n_params_large")
    return float(l) / float(s) if s and l else float("nan")


def frequency_table(groups, **ci) -> list:
    rows = []
    for (pair, cfg), recs in groups.items():
        method = recs[0]["method"]
        for measure in M.MEASURES.get(method, ()):
            ev, den = zip(*(M.collab_counts(r, measure) for r in recs))
            f, lo, hi = M.ratio_ci(ev, den, **ci)
            rows.append({"pair": pair, "config": cfg, "method": method, "measure": measure,
                         "params": recs[0].get("params") or {},
                         # replies that ended on end-of-generation: FS-GEN counts that step
                         "n_eog": sum(r.get("finish_reason") == "eog" for r in recs),
                         "ratio": pair_ratio(recs[0]), "n_prompts": len(recs),
                         "mismatch_definition": M.mismatch_definition(recs[0]),
                         "events": int(sum(ev)), "denominator": int(sum(den)),
                         "frequency": f, "ci_low": lo, "ci_high": hi})
    return rows


def skipped_table(records) -> list:
    """Configs a pair could not run (one row per pair and config, with the core's reason)."""
    rows = {}
    for r in records:
        if "skipped" in r:
            row = rows.setdefault((r["pair"], r["config"]), {"pair": r["pair"], "config": r["config"],
                                                             "n_prompts": 0, "reason": r["skipped"]})
            row["n_prompts"] += 1
    return list(rows.values())


def oracle_groups(groups) -> dict:
    return {k: v for k, v in groups.items() if v[0]["method"] == "oracle"}


def position_table(og) -> list:
    rows = []
    for (pair, cfg), recs in og.items():
        tok, mis = M.position_deciles(M.col(r, "mismatch", bool) for r in recs)
        total = int(mis.sum())
        # rate: mismatches / tokens in the decile (ours); share: the decile's part of all
        # mismatches (FS-GEN's plots)
        rows += [{"pair": pair, "config": cfg, "decile": d + 1, "tokens": int(tok[d]),
                  "mismatches": int(mis[d]), "rate": mis[d] / tok[d] if tok[d] else float("nan"),
                  "share": mis[d] / total if total else float("nan")}
                 for d in range(10)]
    return rows


def kind_table(og) -> list:
    rows = []
    for (pair, cfg), recs in og.items():
        counts = M.kind_counts((r["trace"].get("piece", [""] * len(r["trace"]["token"]))
                                for r in recs), (M.col(r, "mismatch", bool) for r in recs))
        rows += [{"pair": pair, "config": cfg, "kind": k, "tokens": n, "mismatches": m,
                  "rate": m / n if n else float("nan")} for k, (n, m) in counts.items()]
    return rows


def pooled(recs, feature):
    return (np.concatenate([M.col(r, feature) for r in recs]),
            np.concatenate([M.col(r, "mismatch", bool) for r in recs]))


def uncertainty_tables(og, targets=TARGETS) -> tuple:
    desc, auc, router = [], [], []
    for (pair, cfg), recs in og.items():
        for f in M.FEATURES:
            v, m = pooled(recs, f)
            for name, sel in (("matched", ~m), ("mismatched", m)):
                desc.append({"pair": pair, "config": cfg, "feature": f, "group": name,
                             **M.describe(v[sel])})
            auc.append({"pair": pair, "config": cfg, "feature": f,
                        "auroc": M.auroc(M.risk(f, v), m),
                        "n_mismatched": int(m.sum()), "n_matched": int((~m).sum())})
            for t in targets:
                router.append({"pair": pair, "config": cfg, "feature": f, "target": t,
                               "n_mismatched": int(m.sum()), **M.router_threshold(f, v, m, t)})
    return desc, auc, router


def scaling_tables(freq) -> tuple:
    points, fits = [], []
    by_cfg = defaultdict(list)
    for r in freq:
        if r["measure"] == "mismatch":
            by_cfg[r["config"]].append(r)
    for cfg, rows in by_cfg.items():
        for r in rows:
            points.append({"config": cfg, "pair": r["pair"], "ratio": r["ratio"],
                           "frequency_pct": 100 * r["frequency"], "ci_low_pct": 100 * r["ci_low"],
                           "ci_high_pct": 100 * r["ci_high"]})
        fit = M.fit_scaling_law([r["ratio"] for r in rows], [100 * r["frequency"] for r in rows])
        fit.pop("points")
        fits.append({"config": cfg, "n_pairs": len(rows), **fit})
    return points, fits


def tradeoff_table(groups, **ci) -> list:
    rows = []
    for (pair, cfg), recs in groups.items():
        st = [r.get("stats", {}) for r in recs]
        scores = [r.get("score") for r in recs if r.get("score") is not None]
        s, lo, hi = M.mean_ci(scores, **ci) if scores else (None, None, None)
        n_tok = sum(x.get("n_tokens", 0) for x in st)
        secs = sum(x.get("generation_seconds", 0.0) for x in st)
        rows.append({"pair": pair, "config": cfg, "method": recs[0]["method"],
                     "threshold": (recs[0].get("params") or {}).get("threshold"),
                     "router": (recs[0].get("params") or {}).get("router"),
                     "system2_share": (recs[0].get("params") or {}).get("system2_share"),
                     "n_prompts": len(recs), "n_scored": len(scores), "score": s,
                     "score_ci_low": lo, "score_ci_high": hi, "n_tokens": n_tok,
                     "tokens_per_second": n_tok / secs if secs > 0 else float("nan"),
                     "tokens_per_second_median": float(np.median(
                         [x.get("tokens_per_second", np.nan) for x in st])),
                     # share of output tokens System 2 wrote (stats' own definition)
                     "system2_fraction": (sum(x.get("system2_fraction", 0.0) * x.get("n_tokens", 0)
                                              for x in st) / n_tok if n_tok else float("nan"))})
    return rows


def figures(tables, og, out) -> list:
    out = Path(out)
    figs = []
    if tables["position"]:
        figs.append(plots.position_deciles(tables["position"], out / "position_deciles.png"))
        figs.append(plots.token_kinds(tables["token_kind"], out / "token_kinds.png"))
    auc = {(r["pair"], r["config"], r["feature"]): r["auroc"] for r in tables["auroc"]}
    for pair in dict.fromkeys(p for p, _ in og):
        mine = [(cfg, recs) for (p, cfg), recs in og.items() if p == pair]
        figs.append(plots.uncertainty([(cfg, {f: pooled(recs, f) for f in M.FEATURES})
                                       for cfg, recs in mine],
                                      out / f"uncertainty_{slug(pair)}.png",
                                      f"System 1 uncertainty, matched vs mismatched tokens: {pair}"))
        curves = []
        for cfg, recs in mine:
            for f in M.FEATURES:
                v, m = pooled(recs, f)
                fpr, tpr, _ = M.roc_curve(M.risk(f, v), m)
                curves.append((cfg, f, fpr, tpr, auc[(pair, cfg, f)]))
        figs.append(plots.roc(curves, out / f"roc_{slug(pair)}.png",
                              f"Uncertainty as a mismatch predictor: {pair}"))
    if tables["scaling"]:
        figs.append(plots.scaling(tables["scaling"], tables["scaling_points"],
                                  out / "scaling_law.png"))
    for pair in dict.fromkeys(r["pair"] for r in tables["tradeoff"]):
        rows = [r for r in tables["tradeoff"] if r["pair"] == pair]
        if any(r["method"] == "fs" for r in rows):
            figs.append(plots.tradeoff(rows, out / f"tradeoff_{slug(pair)}.png",
                                       f"fs quality/speed trade-off: {pair}"))
    return [Path(f).name for f in figs]


def analyze(out="study-out", records=None, *, meta=None, targets=TARGETS, n_boot=2000,
            seed=0) -> dict:
    """Tables from the records (read from ``out/records.jsonl`` unless given), with the figures,
    ``report.md`` and ``summary.json`` written into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if records is None:
        records = read_records(out / RECORDS_FILE)
    ci = {"n_boot": n_boot, "seed": seed}
    groups = group(records)
    og = oracle_groups(groups)
    t = {"frequency": frequency_table(groups, **ci)}
    t["position"] = position_table(og)
    t["token_kind"] = kind_table(og)
    t["uncertainty"], t["auroc"], t["router"] = uncertainty_tables(og, targets)
    t["scaling_points"], t["scaling"] = scaling_tables(t["frequency"])
    t["tradeoff"] = tradeoff_table(groups, **ci)
    t["consistency"] = [{"pair": r["pair"], "config": r["config"], "prompt_id": r["prompt_id"],
                         "problem": p} for r in records for p in M.consistency(r)]
    t["errors"] = [{"pair": r["pair"], "config": r["config"], "prompt_id": r["prompt_id"],
                    "error": r["error"]} for r in records if "error" in r]
    t["skipped"] = skipped_table(records)
    figs = figures(t, og, out)
    report.write(out, t, figs, meta or {}, records)
    return t
