"""fsgen.study metrics on synthetic data: AUROC, ROC, router thresholds, the scaling-law fit,
collaboration counts, position deciles and token kinds."""
import math

import numpy as np
import pytest

from helpers import require

require("scipy", "pip install 'fsgen[study]'")
from fsgen.study import metrics as M  # noqa: E402


def pairwise_auroc(s, y):
    pos, neg = s[y], s[~y]
    d = pos[:, None] - neg[None, :]
    return ((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pairwise(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(300) < 0.2
    s = np.round(rng.normal(size=300) + 1.2 * y, 1)      # rounding makes many ties
    assert M.auroc(s, y) == pytest.approx(pairwise_auroc(s, y), abs=1e-12)
    fpr, tpr, _ = M.roc_curve(s, y)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz
    assert trapezoid(tpr, fpr) == pytest.approx(M.auroc(s, y), abs=1e-12)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1


def test_auroc_edge_cases():
    assert M.auroc([1, 2, 3], [True, True, True]) != M.auroc([1, 2, 3], [True, True, True])
    assert M.auroc([3, 2, 1], [True, False, False]) == 1.0
    assert M.auroc([1, 1, 1, 1], [True, False, True, False]) == 0.5
    assert M.auroc([np.nan, 2.0, 1.0], [False, True, False]) == 1.0   # NaN dropped


def test_risk_orientation():
    y = np.array([True, False, False])
    assert M.auroc(M.risk("entropy", [2.0, 0.1, 0.2]), y) == 1.0
    assert M.auroc(M.risk("top1", [0.3, 0.9, 0.95]), y) == 1.0
    assert M.auroc(M.risk("margin", [0.05, 0.8, 0.9]), y) == 1.0


def test_router_threshold():
    ent = np.r_[np.linspace(0, 0.1, 90), np.linspace(1, 2, 10)]
    mis = np.r_[np.zeros(95, bool), np.ones(5, bool)]
    r = M.router_threshold("entropy", ent, mis, 0.10)
    assert r["system2_fraction"] == pytest.approx(0.10) and r["caught"] == 1.0
    assert r["threshold"] == pytest.approx(0.55)          # midway between 0.1 and 1.0
    r = M.router_threshold("top1", 1 - ent / 2, mis, 0.05)
    assert r["system2_fraction"] == pytest.approx(0.05) and r["caught"] == 1.0
    assert r["threshold"] == pytest.approx(1 - (ent[94] + ent[95]) / 4)


def test_router_rule_is_the_cores_at_ties():
    """The study flags with the core's strict rule, and a reported threshold
    applied by the core's router reproduces the reported System 2 fraction."""
    from fsgen import _core

    cases = {"entropy": np.r_[np.zeros(6), [1.0, 1.0, 2.0, 2.0]],
             "top1": np.r_[np.ones(6), [0.5, 0.5, 0.25, 0.25]],
             "margin": np.r_[np.ones(6), [0.5, 0.5, 0.0, 0.0]]}
    for feature, v in cases.items():
        mis = np.r_[np.zeros(8, bool), [True, True]]
        for target, frac in ((0.2, 0.2), (0.3, 0.4), (1.0, 1.0)):   # ties flagged together
            r = M.router_threshold(feature, v, mis, target)
            core = np.asarray(_core.route(feature, v.astype(np.float32), r["threshold"]), bool)
            assert core.mean() == r["system2_fraction"] == pytest.approx(frac), (feature, target)
            assert r["caught"] == 1.0
    assert M.consults("entropy", [0.4, 0.5, 0.6], 0.5).tolist() == [False, False, True]
    assert M.consults("top1", [0.4, 0.5, 0.6], 0.5).tolist() == [True, False, False]
    assert M.consults("margin", [0.1, 0.2, 0.3], 0.2).tolist() == [True, False, False]


def test_scaling_fit_recovers_constants():
    a, b, alpha = 12.0, 20.0, 0.6
    r = np.array([2, 3, 5, 8, 14, 30, 72, 144.0])
    y = M.scaling_law(r, a, b, alpha) + np.random.default_rng(0).normal(0, 0.01, len(r))
    fit = M.fit_scaling_law(r, y)
    assert fit["fitted"] and fit["r2"] > 0.999
    assert fit["a"] == pytest.approx(a, rel=0.03) and fit["b"] == pytest.approx(b, rel=0.01)
    assert fit["alpha"] == pytest.approx(alpha, rel=0.03)
    assert 0 < fit["se_alpha"] < 0.05 and len(fit["points"]) == len(r)


def test_scaling_fit_respects_lower_bound():
    fit = M.fit_scaling_law([2, 4, 8, 16], [5.0, 5.0, 5.0, 5.0])   # flat: a and α pinned
    assert fit["fitted"] and min(fit["a"], fit["b"], fit["alpha"]) >= 0.05 - 1e-9


def test_three_ratios_are_an_exact_interpolation_not_a_fit():
    r = np.array([2.0, 8.0, 32.0])
    fit = M.fit_scaling_law(r, M.scaling_law(r, 10.0, 20.0, 0.5))
    assert not fit["fitted"] and math.isnan(fit["r2"]), (fit["fitted"], fit["r2"])
    assert fit["kind"] == "interpolation" and fit["interpolated"] and all(math.isnan(fit[k]) for k in ("se_a", "se_b", "se_alpha"))
    assert "interpolation" in fit["message"] and "no R²" in fit["message"]
    assert fit["max_residual"] < 1e-6
    assert (fit["a"], fit["b"], fit["alpha"]) == pytest.approx((10.0, 20.0, 0.5), rel=1e-4)
    four = M.fit_scaling_law(np.r_[r, 64.0], M.scaling_law(np.r_[r, 64.0], 10.0, 20.0, 0.5) +
                             np.array([0.1, -0.1, 0.1, -0.1]))
    assert four["kind"] == "fit" and four["fitted"] and 0.99 < four["r2"] < 1.0
    assert all(0 < four[k] < np.inf for k in ("se_a", "se_b", "se_alpha"))


@pytest.mark.parametrize("ratios", [[3.0], [3.0, 3.0, 3.0], [3.0, 10.0, 3.0, 10.0]])
def test_no_fit_with_fewer_than_three_ratios(ratios):
    fit = M.fit_scaling_law(ratios, np.linspace(5, 9, len(ratios)))
    assert not fit["fitted"] and fit["kind"] == "none" and "no fit" in fit["message"]
    assert len(fit["points"]) == len(ratios) and math.isnan(fit["a"])


def test_ratio_ci():
    f, lo, hi = M.ratio_ci([1, 2, 3, 10], [10, 10, 10, 20])
    assert f == pytest.approx(16 / 50) and lo < f < hi
    assert M.ratio_ci([1, 2, 3, 10], [10, 10, 10, 20]) == (f, lo, hi)   # fixed seed
    f, lo, hi = M.ratio_ci([1], [10])
    assert f == 0.1 and math.isnan(lo) and math.isnan(hi)


def test_collab_counts():
    rec = {"method": "speculative", "trace": {"token": [1] * 10, "mismatch": [0] * 10,
                                              "system2_called": [1, 0] * 5},
           "drafts": {"length": [5, 5, 3], "accepted": [5, 2, 1]}, "stats": {}}
    assert M.collab_counts(rec, "rejection") == (5, 13)
    assert M.collab_counts(rec, "correction") == (2, 10)
    assert M.collab_counts(rec, "system2") == (5, 10)
    rec["drafts"] = {}
    rec["stats"] = {"drafted": 8, "accepted": 6}
    assert M.collab_counts(rec, "rejection") == (2, 8)


def test_position_deciles():
    m1 = np.zeros(20, bool)
    m1[[0, 1, 19]] = True                      # deciles 0, 0, 9
    m2 = np.zeros(10, bool)
    m2[5] = True                               # decile 5
    tok, mis = M.position_deciles([m1, m2, np.zeros(0, bool)])
    assert tok.tolist() == [3] * 10
    assert mis.tolist() == [2, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    tok, _ = M.position_deciles([np.zeros(7, bool)])   # shorter than 10: every token counted once
    assert tok.sum() == 7


@pytest.mark.parametrize("piece, kind", [
    (" ", "whitespace"), ("\n    ", "whitespace"), (" (", "punctuation"), ("):", "punctuation"),
    (" foo", "identifier"), ("_x1", "identifier"), (" 42", "number"), ("3.14", "number"),
    ("1e5", "other"), ("a.b", "other"), ("", "other"), ("é", "identifier"),
])
def test_token_kind(piece, kind):
    assert M.token_kind(piece) == kind


def test_kind_counts():
    c = M.kind_counts([[" def", " f", "(", "1", " "], ["x"]],
                      [[False, True, True, False, False], [True]])
    assert c["identifier"] == (3, 2) and c["punctuation"] == (1, 1)
    assert c["number"] == (1, 0) and c["whitespace"] == (1, 0) and c["other"] == (0, 0)


def test_consistency():
    rec = {"method": "oracle", "stats": {"n_tokens": 3, "mismatches": 1, "system2_calls": 3},
           "trace": {"token": [1, 2, 3], "mismatch": [0, 1, 0], "system2_called": [1, 1, 1]}}
    assert M.consistency(rec) == []
    rec["stats"]["mismatches"] = 2
    assert M.consistency(rec) == ["mismatches: stats 2 != trace 1"]
    assert M.consistency({"error": "x"}) == []


def test_describe():
    d = M.describe([0.0, 1.0, 2.0, np.nan])
    assert d["n"] == 3 and d["mean"] == 1.0 and d["median"] == 1.0
    assert M.describe([])["n"] == 0
