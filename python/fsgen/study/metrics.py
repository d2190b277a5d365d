"""Study metrics, computed from records (see records.py): pure functions, no models.

Collaboration frequency, per method (events / denominator, pooled over the prompts):
  * mismatch   (oracle-mode configs: oracle, contrastive, proxy): tokens where System 2's token
               differs from System 1's greedy token / generated tokens;
  * system2    (fs): tokens where the router consulted System 2 / generated tokens;
  * rejection  (speculative): drafted tokens not accepted / drafted tokens (= 1 − acceptance rate);
  * correction (speculative): drafts cut short by System 2 / generated tokens (each such draft
               ends in exactly one token where System 2 overrode System 1, so this is the
               speculative analogue of the mismatch fraction).
Router thresholds use the core's own rule (``fsgen._core.route``: entropy > t, top1 < t,
margin < t), the one definition shared with the routers of src/distribution.cpp.
Confidence intervals: 95% percentile bootstrap over prompts (prompts resampled with replacement,
the pooled ratio recomputed; 2000 resamples, fixed seed). NaN when fewer than two prompts.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import rankdata

FEATURES = ("entropy", "top1", "margin")
# +1: a higher value means a mismatch is more likely; -1: a lower value does.
ORIENTATION = {"entropy": 1.0, "top1": -1.0, "margin": -1.0}
KINDS = ("whitespace", "punctuation", "identifier", "number", "other")
MEASURES = {"oracle": ("mismatch",), "fs": ("system2",), "speculative": ("rejection", "correction")}


def ok(rec) -> bool:
    return "error" not in rec and "skipped" not in rec and bool(rec.get("trace"))


def mismatch_definition(rec) -> str:
    """How a record's mismatches were counted: "token" (a shared vocabulary: System 2's token id
    against System 1's greedy one) or "text" (a translated pair: System 2's next token against
    System 1's text at the same position, as bytes up to the shorter). Records made before pairs
    could be translated hold no definition: those pairs shared a vocabulary."""
    if rec.get("mismatch_definition"):
        return rec["mismatch_definition"]
    return "text" if (rec.get("vocab") or {}).get("kind") == "translated" else "token"


def col(rec, name, dtype=float):
    return np.asarray(rec["trace"].get(name, []), dtype=dtype)


# ---------------------------------------------------------------- collaboration frequency

def collab_counts(rec, measure) -> tuple:
    """(events, denominator) of one record for a measure (see module docstring)."""
    tr = rec["trace"]
    n = len(tr.get("token", []))
    if measure == "mismatch":
        return int(np.sum(col(rec, "mismatch", bool))), n
    if measure == "system2":
        return int(np.sum(col(rec, "system2_called", bool))), n
    d = rec.get("drafts") or {}
    length = np.asarray(d.get("length", []), dtype=np.int64)
    accepted = np.asarray(d.get("accepted", []), dtype=np.int64)
    if measure == "rejection":
        if not len(length):
            s = rec.get("stats", {})
            return int(s.get("drafted", 0) - s.get("accepted", 0)), int(s.get("drafted", 0))
        return int(length.sum() - accepted.sum()), int(length.sum())
    if measure == "correction":
        return int(np.sum(accepted < length)), n
    raise ValueError(f"unknown measure {measure!r}")


def ratio_ci(events, denoms, *, n_boot=2000, seed=0, level=0.95) -> tuple:
    """Pooled ratio sum(events)/sum(denoms) and its percentile-bootstrap CI over units."""
    e, d = np.asarray(events, float), np.asarray(denoms, float)
    ratio = e.sum() / d.sum() if d.sum() > 0 else math.nan
    if len(e) < 2 or d.sum() == 0:
        return ratio, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(e), size=(n_boot, len(e)))
    de = d[idx].sum(axis=1)
    boot = e[idx].sum(axis=1)[de > 0] / de[de > 0]
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return ratio, float(lo), float(hi)


def mean_ci(values, *, n_boot=2000, seed=0, level=0.95) -> tuple:
    v = np.asarray([x for x in values if x is not None], float)
    return ratio_ci(v, np.ones_like(v), n_boot=n_boot, seed=seed, level=level) if len(v) else \
        (math.nan, math.nan, math.nan)


# ---------------------------------------------------------------- where mismatches happen

def position_deciles(mismatch_seqs) -> tuple:
    """Token counts and mismatch counts per decile of relative position in each output."""
    n_tok, n_mis = np.zeros(10, np.int64), np.zeros(10, np.int64)
    for m in mismatch_seqs:
        m = np.asarray(m, bool)
        if not len(m):
            continue
        dec = np.minimum(9, (10 * np.arange(len(m))) // len(m))
        n_tok += np.bincount(dec, minlength=10)
        n_mis += np.bincount(dec, weights=m, minlength=10).astype(np.int64)
    return n_tok, n_mis


_NUM = re.compile(r"\d+(?:[.,_]\d+)*")


def token_kind(piece: str) -> str:
    """whitespace / punctuation / identifier / number / other, from a token's text
    (surrounding whitespace ignored unless the token is only whitespace)."""
    if piece == "":
        return "other"
    s = piece.strip()
    if not s:
        return "whitespace"
    if _NUM.fullmatch(s):
        return "number"
    if s.isidentifier():
        return "identifier"
    if all(not c.isalnum() and not c.isspace() and c != "_" for c in s):
        return "punctuation"
    return "other"


def kind_counts(piece_seqs, mismatch_seqs) -> dict:
    """{kind: (tokens, mismatches)}."""
    out = {k: [0, 0] for k in KINDS}
    for pieces, mis in zip(piece_seqs, mismatch_seqs):
        for p, m in zip(pieces, mis):
            c = out[token_kind(p)]
            c[0] += 1
            c[1] += int(bool(m))
    return {k: tuple(v) for k, v in out.items()}


# ---------------------------------------------------------------- uncertainty as a predictor

def _finite(scores, labels):
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    keep = np.isfinite(s)
    return s[keep], y[keep]


def auroc(scores, labels) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative) + ½ P(tie),
    from the Mann–Whitney U statistic with mid-ranks for ties (non-finite scores dropped)."""
    s, y = _finite(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    r = rankdata(s)
    u = r[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def roc_curve(scores, labels) -> tuple:
    """(fpr, tpr, thresholds): flagging score >= threshold, thresholds from high to low."""
    s, y = _finite(scores, labels)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1] if len(s) else np.array([], int)
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    P, N = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / N], np.r_[0.0, tps / P], np.r_[np.inf, s[last]]


def risk(feature, values):
    """Values oriented so that higher = more likely a mismatch."""
    return ORIENTATION[feature] * np.asarray(values, float)


def consults(feature, values, threshold) -> np.ndarray:
    """Where the core's router on ``feature`` consults System 2 for these values: the core's own
    rule (``fsgen._core.route``; entropy: value > threshold; top1 and margin: value < threshold,
    compared in float32), so that the study and the routers never disagree at ties."""
    from fsgen import _core   # lazily: the rest of this module needs no compiled code

    v = np.ascontiguousarray(values, dtype=np.float32)
    return np.asarray(_core.route(feature, v, float(threshold)), dtype=bool)


def router_threshold(feature, values, labels, target) -> dict:
    """The threshold on System 1's ``feature`` at which the core's router (see :func:`consults`)
    consults System 2 on at least a ``target`` fraction of tokens, and the share of mismatches it
    catches. The threshold lies midway between the k-th most uncertain token and the next observed
    value beyond it, so that the strict rule flags that token and every tie with it. In-sample,
    so optimistic."""
    v, y = _finite(values, labels)
    if not len(v):
        return {"threshold": math.nan, "system2_fraction": math.nan, "caught": math.nan}
    v = v.astype(np.float32)
    sign = np.float32(ORIENTATION[feature])
    r = sign * v                                       # exact in float32: a sign flip
    k = max(1, math.ceil(target * len(r)))
    rk = np.sort(r)[::-1][k - 1]
    below = r[r < rk]
    if len(below):
        # Midway to the next observed value (that value itself if float32 cannot go between).
        nb = below.max()
        t = np.float32((float(rk) + float(nb)) / 2)
        t = t if nb <= t < rk else nb
    else:
        t = np.nextafter(rk, np.float32(-np.inf))
    threshold = float(sign * t)
    flagged = consults(feature, v, threshold)
    caught = float(flagged[y].mean()) if y.any() else math.nan
    return {"threshold": threshold, "system2_fraction": float(flagged.mean()), "caught": caught}


def describe(values) -> dict:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"n": 0, "mean": math.nan, "median": math.nan, "p10": math.nan, "p90": math.nan}
    p10, med, p90 = np.quantile(v, [0.1, 0.5, 0.9])
    return {"n": int(len(v)), "mean": float(v.mean()), "median": float(med),
            "p10": float(p10), "p90": float(p90)}


# ---------------------------------------------------------------- scaling law

def scaling_law(r, a, b, alpha):
    return b - a * np.power(r, -alpha)


def fit_scaling_law(ratios, freqs, *, lower=0.05) -> dict:
    """The law frequency = b − a·r^(−α) (frequency in percent, as FS-GEN reports it) through the
    points, with scipy's curve_fit, every parameter bounded ≥ ``lower`` as in FS-GEN.

    What it can say depends on the number of distinct ratios, since the law has 3 parameters:

    * fewer than 3: nothing (``kind="none"``; the points and a message only);
    * exactly 3: ``kind="interpolation"``: a, b and α pass the curve through the three points
      (exactly unless a bound binds; ``max_residual`` says how close), with no degree of freedom
      left, so no R² and no standard errors (NaN); ``fitted`` is False;
    * 4 or more: ``kind="fit"``, ``fitted=True``, with R² and standard errors (the square roots
      of the diagonal of curve_fit's covariance estimate; NaN where it is undetermined).
    """
    r, y = np.asarray(ratios, float), np.asarray(freqs, float)
    keep = np.isfinite(r) & np.isfinite(y) & (r > 0)
    r, y = r[keep], y[keep]
    out = {"points": [{"ratio": float(a), "frequency": float(b)} for a, b in zip(r, y)],
           "kind": "none", "fitted": False, "interpolated": False,
           "a": math.nan, "b": math.nan, "alpha": math.nan, "se_a": math.nan, "se_b": math.nan,
           "se_alpha": math.nan, "r2": math.nan, "max_residual": math.nan}
    n_ratios = len(np.unique(r))
    if n_ratios < 3:
        out["message"] = (f"no fit: {n_ratios} distinct parameter ratio(s); a 3-parameter law "
                          "needs at least 3 (points reported only)")
        return out
    p0 = [max(lower, float(y.max() - y.min()) or 1.0), max(lower, float(y.max())), 0.5]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            p, pcov = curve_fit(scaling_law, r, y, p0=p0, bounds=([lower] * 3, [np.inf] * 3),
                                maxfev=20000)
    except (RuntimeError, ValueError) as e:
        out["message"] = f"no fit: curve_fit failed ({e})"
        return out
    resid = y - scaling_law(r, *p)
    at_bound = [n for n, v in zip(("a", "b", "alpha"), p) if abs(v - lower) < 1e-6]
    bound_note = f"; at the lower bound: {', '.join(at_bound)}" if at_bound else ""
    out.update(a=float(p[0]), b=float(p[1]), alpha=float(p[2]),
               max_residual=float(np.max(np.abs(resid))))
    if n_ratios == 3:
        out.update(kind="interpolation", interpolated=True,
                   message=f"exact interpolation, not a fit: 3 parameters through 3 distinct "
                           f"ratios leave no degree of freedom, so no R² or standard errors "
                           f"(largest residual {out['max_residual']:.3g} points){bound_note}")
        return out
    se = np.sqrt(np.clip(np.diag(pcov), 0, None)) if np.all(np.isfinite(pcov)) else [math.nan] * 3
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    out.update(kind="fit", fitted=True, se_a=float(se[0]), se_b=float(se[1]),
               se_alpha=float(se[2]),
               r2=1 - float(np.sum(resid ** 2)) / ss_tot if ss_tot > 0 else math.nan,
               message=f"fit on {len(r)} points, {n_ratios} ratios{bound_note}")
    return out


# ---------------------------------------------------------------- consistency

def consistency(rec) -> list:
    """Disagreements between a record's stats and its trace (empty when they agree). Counts
    checked: tokens (all), mismatches (oracle mode), System 2 calls (oracle, fs), drafted and
    accepted tokens (speculative)."""
    if not ok(rec):
        return []
    s, d, method = rec.get("stats", {}), rec.get("drafts") or {}, rec.get("method")
    checks = [("n_tokens", len(rec["trace"].get("token", [])))]
    if method == "oracle":
        checks.append(("mismatches", int(np.sum(col(rec, "mismatch", bool)))))
    if method in ("oracle", "fs"):
        calls = int(np.sum(col(rec, "system2_called", bool)))
        # A call that chose the end-of-generation token is counted in stats but has no trace row.
        if rec.get("finish_reason") == "eog" and int(s.get("system2_calls", 0)) == calls + 1:
            calls += 1
        checks.append(("system2_calls", calls))
    if method == "speculative" and d.get("length") is not None:
        checks += [("drafted", int(np.sum(d["length"]))), ("accepted", int(np.sum(d["accepted"])))]
    return [f"{k}: stats {s.get(k)} != trace {v}" for k, v in checks
            if k in s and int(s[k]) != v]
