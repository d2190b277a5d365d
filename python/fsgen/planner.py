"""The speculative draft planner's figures as plain Python values (Pair.planner, fsgen calibrate)."""
from __future__ import annotations

from typing import Any

from ._results import DraftSource

MODEL, NGRAM = DraftSource.MODEL, DraftSource.NGRAM
# N-gram acceptance is tracked by match length; these stand for the planner's buckets.
NGRAM_MATCHES = {"1": 1, "2": 2, "3": 3, "4-7": 4, "8+": 8}


def _curve(pair: tuple[list[float], float]) -> tuple[dict[int, float], float | None]:
    verify, draft = pair
    return {rows: s for rows, s in enumerate(verify) if rows >= 1 and s > 0}, (draft if draft > 0 else None)


def planner_figures(planner: Any, max_length: int = 16) -> dict:
    """A dict of what a ``_core.DraftPlanner`` has measured and learnt.

    Parameters
    ----------
    planner : fsgen._core.DraftPlanner
        The planner (a copy, e.g. from a pair).
    max_length : int
        Longest draft considered for ``draft_length``.

    Returns
    -------
    dict
        ``verify_seconds`` (rows -> seconds, measured while generating), ``draft_seconds`` (one
        System 1 step), ``calibration`` (``verify_seconds``/``draft_seconds`` measured up front, or
        empty), ``cost_curve`` (rows -> seconds the planner uses: measured, else calibrated, else
        interpolated), ``acceptance`` (per-token acceptance estimates: ``model``, and ``ngram`` by
        match length), ``draft_length`` (the length it would choose now for each source),
        ``rounds``, ``rejections``, ``probes``, ``drifted``.
    """
    verify, draft = _curve(planner.measured)
    cal_verify, cal_draft = _curve(planner.calibration)
    rows = sorted(set(verify) | set(cal_verify) | {1, 2, 3, 4, 5, 6, 8, 12, 16})
    curve = {r: planner.verify_cost(r) for r in rows if planner.verify_cost(r) > 0}
    ngram = {name: planner.acceptance(NGRAM, m) for name, m in NGRAM_MATCHES.items()}
    a_model = planner.acceptance(MODEL)
    return {
        "verify_seconds": verify,
        "draft_seconds": draft,
        "calibration": {"verify_seconds": cal_verify, "draft_seconds": cal_draft} if cal_verify else {},
        "cost_curve": curve,
        "acceptance": {"model": a_model, "ngram": ngram},
        "draft_length": {"model": planner.best_length(MODEL, max_length, a_model),
                         "ngram": planner.best_length(NGRAM, max_length, ngram["8+"])},
        "rounds": planner.rounds,
        "rejections": planner.rejections,
        "probes": planner.probes,
        "drifted": planner.drifted,
    }


def implied_lengths(verify: dict[int, float], draft: float | None, acceptances=(0.5, 0.7, 0.8, 0.9, 0.95, 1.0),
                    max_length: int = 16) -> list[dict]:
    """The draft length a cost curve implies at each per-token acceptance, for System 1's drafts
    (a step costs ``draft`` seconds) and free n-gram drafts, with the expected speed-up over
    decoding one token per verify.

    Returns
    -------
    list of dict
        One per acceptance: ``acceptance``, ``model`` and ``ngram`` (lengths; ``model`` None without
        a draft cost), ``model_speedup``, ``ngram_speedup``.
    """
    from . import _core
    planner = _core.DraftPlanner()
    rows = max(verify) if verify else 0
    planner.set_calibration([verify.get(r, -1.0) for r in range(rows + 1)], draft if draft else -1.0)
    single = planner.verify_cost(1)

    def speedup(length: int, a: float, step: float) -> float:
        if length == 0 or single <= 0:
            return 1.0
        expected = sum(a ** i for i in range(length + 1))
        return expected * single / (length * step + planner.verify_cost(length + 1))

    out = []
    for a in acceptances:
        row = {"acceptance": a, "ngram": planner.best_length(NGRAM, max_length, a)}
        row["ngram_speedup"] = speedup(row["ngram"], min(a, 0.999), 0.0)
        if draft:
            row["model"] = planner.best_length(MODEL, max_length, a)
            row["model_speedup"] = speedup(row["model"], min(a, 0.999), draft)
        else:
            row["model"] = row["model_speedup"] = None
        out.append(row)
    return out
