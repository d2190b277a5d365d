"""Study figures (PNG). Figures are built with matplotlib's object API (no pyplot state, no GUI
backend), from the tables of analysis.py; every function writes one file and returns its path."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

DPI = 120
UNITS = {"entropy": "entropy of System 1 (nats)", "top1": "top-1 probability of System 1",
         "margin": "margin p1 − p2 of System 1"}
RANGES = {"top1": (0.0, 1.0), "margin": (0.0, 1.0)}


def _save(fig, path):
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return str(path)


def _series(rows, *keys):
    """Distinct values of (row[k] for k in keys), in first-seen order."""
    seen = []
    for r in rows:
        v = tuple(r[k] for k in keys)
        if v not in seen:
            seen.append(v)
    return seen


def position_deciles(rows, path):
    """Heatmap: mismatch rate (%) by position decile, one row per (pair, config)."""
    series = _series(rows, "pair", "config")
    grid = np.full((len(series), 10), np.nan)
    for r in rows:
        grid[series.index((r["pair"], r["config"])), r["decile"] - 1] = 100 * r["rate"]
    fig = Figure(figsize=(10, 1.2 + 0.55 * max(1, len(series))), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(grid, aspect="auto", cmap="viridis")
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if v < np.nanmax(grid) * 0.6 else "black")
    ax.set_xticks(range(10), [f"{10 * k}–{10 * k + 10}" for k in range(10)])
    ax.set_yticks(range(len(series)), [f"{p} · {c}" for p, c in series])
    ax.set_xlabel("position in the output (% of its tokens)")
    ax.set_title("Where mismatches happen: mismatch rate by position decile")
    fig.colorbar(im, ax=ax, label="mismatch rate (% of tokens)")
    return _save(fig, path)


def token_kinds(rows, path):
    """Grouped bars: mismatch rate (%) per token kind, one bar per (pair, config)."""
    kinds = [k for (k,) in _series(rows, "kind")]
    series = _series(rows, "pair", "config")
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        rate = {r["kind"]: r for r in rows if (r["pair"], r["config"]) == s}
        y = [100 * rate[k]["rate"] if rate[k]["tokens"] else 0.0 for k in kinds]
        ax.bar(np.arange(len(kinds)) + (i - (len(series) - 1) / 2) * width, y, width,
               label=f"{s[0]} · {s[1]}")
    counts = {k: max(r["tokens"] for r in rows if r["kind"] == k) for k in kinds}
    ax.set_xticks(range(len(kinds)), [f"{k}\n(n={counts[k]})" for k in kinds])
    ax.set_xlabel("token kind (n = tokens of that kind, largest series)")
    ax.set_ylabel("mismatch rate (% of tokens of that kind)")
    ax.set_title("Where mismatches happen: by token kind")
    ax.legend(fontsize=8)
    return _save(fig, path)


def uncertainty(groups, path, title):
    """Histograms of System 1's entropy, top-1 probability and margin, matched vs mismatched.
    ``groups``: list of (label, {feature: (values, mismatch)})."""
    fig = Figure(figsize=(13, 3.4 * max(1, len(groups))), layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(1, len(groups)), 3, squeeze=False))
    for i, (label, feats) in enumerate(groups):
        for j, f in enumerate(("entropy", "top1", "margin")):
            ax = axes[i, j]
            v, m = (np.asarray(a) for a in feats[f])
            v = v.astype(float)
            m = m.astype(bool)
            finite = np.isfinite(v)
            lo, hi = RANGES.get(f, (0.0, max(1e-6, float(np.nanmax(v)) if finite.any() else 1.0)))
            bins = np.linspace(lo, hi, 31)
            for sel, name, color in ((~m, "matched", "tab:blue"), (m, "mismatched", "tab:red")):
                x = v[sel & finite]
                if len(x):
                    ax.hist(x, bins=bins, density=True, alpha=0.55, color=color,
                            label=f"{name} (n={len(x)})")
            ax.set_xlabel(UNITS[f])
            ax.set_ylabel("density")
            ax.set_title(f"{label}: {f}")
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def roc(curves, path, title):
    """ROC curves. ``curves``: list of (label, feature, fpr, tpr, auroc); one panel per label."""
    labels = [lab for (lab,) in _series([{"l": c[0]} for c in curves], "l")]
    fig = Figure(figsize=(4.6 * max(1, len(labels)), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(labels)), squeeze=False)[0])
    for ax, lab in zip(axes, labels):
        for (l, f, fpr, tpr, auc) in curves:
            if l == lab:
                ax.plot(fpr, tpr, label=f"{f} (AUROC {auc:.3f})")
        ax.plot([0, 1], [0, 1], ls=":", color="grey", label="chance")
        ax.set_xlabel("matched tokens flagged (false-positive rate)")
        ax.set_ylabel("mismatches caught (true-positive rate)")
        ax.set_title(lab)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    return _save(fig, path)


def scaling(fits, points, path):
    """Frequency (%) against the parameter ratio, per config, with the fitted law where there is
    one (≥ 4 ratios; dashed and labelled as an interpolation with exactly 3). ``fits``: rows of analysis' scaling table; ``points``: rows with ratio, frequency_pct,
    ci_low_pct, ci_high_pct, config."""
    fig = Figure(figsize=(7, 4.6), layout="constrained")
    ax = fig.subplots()
    top = 1.0
    for k, fit in enumerate(fits):
        cfg = fit["config"]
        pts = [p for p in points if p["config"] == cfg]
        x = np.array([p["ratio"] for p in pts], float)
        y = np.array([p["frequency_pct"] for p in pts], float)
        lo = np.array([p["ci_low_pct"] for p in pts], float)
        hi = np.array([p["ci_high_pct"] for p in pts], float)
        err = np.nan_to_num(np.vstack([y - lo, hi - y]), nan=0.0)
        color = f"C{k}"
        ax.errorbar(x, y, yerr=err, fmt="o", color=color, capsize=3, label=f"{cfg} (95% CI)")
        top = max(top, np.nanmax(np.r_[y, hi]) if len(y) else 0)
        if fit["fitted"] or fit.get("interpolated"):
            xs = np.geomspace(x.min() / 1.2, x.max() * 1.5, 200)
            law = f"{fit['b']:.2f} − {fit['a']:.2f}·r^(−{fit['alpha']:.2f})"
            # Three ratios: the curve interpolates the points; there is no fit to judge.
            label = (f"{cfg} fit: {law}, R² {fit['r2']:.2f}" if fit["fitted"] else
                     f"{cfg} exact interpolation (3 ratios, no fit statistics): {law}")
            ax.plot(xs, fit["b"] - fit["a"] * xs ** (-fit["alpha"]), color=color,
                    linestyle="-" if fit["fitted"] else "--", label=label)
    ax.set_xscale("log")
    ratios = sorted({float(p["ratio"]) for p in points if np.isfinite(p["ratio"])})
    ax.xaxis.set_minor_formatter(NullFormatter())
    if ratios:
        ax.set_xticks(ratios, [f"{r:.3g}" for r in ratios])
    ax.set_ylim(0, 1.25 * top)
    ax.set_xlabel("parameter ratio r = params(large) / params(small)")
    ax.set_ylabel("collaboration frequency (% of tokens)")
    ax.set_title("Scaling law: frequency = b − a·r^(−α)")
    notes = [f"{f['config']}: {f['message']}" for f in fits
             if not f["fitted"] and not f.get("interpolated")]
    if notes:
        ax.text(0.01, 0.01, "\n".join(notes), transform=ax.transAxes, fontsize=7, va="bottom")
    ax.legend(fontsize=8)
    return _save(fig, path)


def tradeoff(rows, path, title):
    """fs: score and tokens/s against the router threshold, with small and large as references,
    and the score/speed plane (the Pareto view)."""
    fs = sorted((r for r in rows if r["method"] == "fs"), key=lambda r: r["threshold"])
    ref = {r["method"]: r for r in rows if r["method"] in ("small", "large")}
    has_score = any(r["score"] is not None and not _nan(r["score"]) for r in rows)
    fig = Figure(figsize=(15, 4.3), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    t = [r["threshold"] for r in fs]
    for ax, key, ylabel in ((ax1, "score", "score (pass@1 or task score, %)"),
                            (ax2, "tokens_per_second", "generation speed (tokens/s)")):
        scale = 100 if key == "score" else 1
        if key == "score" and not has_score:
            ax.text(0.5, 0.5, "task has no scores", ha="center", transform=ax.transAxes)
        else:
            ax.plot(t, [_v(r[key]) * scale for r in fs], "o-", label="fs (entropy router)")
            for m, ls in (("small", "--"), ("large", ":")):
                if m in ref:
                    ax.axhline(_v(ref[m][key]) * scale, ls=ls, color="grey" if m == "small"
                               else "black", label=m)
        if key == "score":
            ax.set_ylim(-3, 103)
        ax.set_xlabel("router threshold (entropy, nats; higher = System 2 consulted less)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    ax1.set_title("Quality against threshold")
    ax2.set_title("Speed against threshold")
    if has_score:
        ax3.plot([_v(r["tokens_per_second"]) for r in fs], [100 * _v(r["score"]) for r in fs],
                 "o-", label="fs")
        for r in fs:
            ax3.annotate(f"{r['threshold']:g}", (_v(r["tokens_per_second"]), 100 * _v(r["score"])),
                         fontsize=7, xytext=(3, 3), textcoords="offset points")
        for m, mk in (("small", "s"), ("large", "D")):
            if m in ref:
                ax3.plot([_v(ref[m]["tokens_per_second"])], [100 * _v(ref[m]["score"])], mk,
                         label=m, ms=8)
        ax3.legend(fontsize=8)
    else:
        ax3.text(0.5, 0.5, "task has no scores", ha="center", transform=ax3.transAxes)
    ax3.set_ylim(-3, 103)
    ax3.set_xlabel("generation speed (tokens/s)")
    ax3.set_ylabel("score (%)")
    ax3.set_title("Quality/speed (labels: threshold)")
    fig.suptitle(title)
    return _save(fig, path)


def _nan(x):
    return isinstance(x, float) and math.isnan(x)


def _v(x):
    return math.nan if x is None else float(x)
