"""The draft planner, driven directly with injected costs and acceptance (no timing): it re-probes
with back-off where drafting does not pay (never switches off for good), drops cold first samples,
and picks the draft length a machine's cost curve calls for — a sweet spot (ggml's 4-row kernels:
4 rows cost about as much as 2) and a linear curve."""
from __future__ import annotations

import pytest

from fsgen import _core

MODEL, NGRAM = 1, 2
MS = 1e-3


def planner_with(verify_ms: dict[int, float], draft_ms: float | None = None, prior: float = 0.35):
    """A planner whose costs are known: each size observed twice (the first sample is cold)."""
    p = _core.DraftPlanner(prior)
    for rows, ms in verify_ms.items():
        p.observe_verify(rows, 50 * ms * MS)  # cold: dropped
        p.observe_verify(rows, ms * MS)
    if draft_ms is not None:
        p.observe_draft_step(50 * draft_ms * MS)
        p.observe_draft_step(draft_ms * MS)
    return p


def with_acceptance(p, origin, accepted_of_10: int, rounds: int = 60, match: int = 0):
    """Rounds of 10 judged draft tokens, `accepted_of_10` agreed with: a per-token acceptance of
    accepted / (accepted + 1)."""
    for _ in range(rounds):
        p.observe_round(origin, 10, accepted_of_10, match)
    return p


def test_cold_first_samples_are_dropped():
    p = _core.DraftPlanner()
    p.observe_verify(1, 1.0)  # cold (a thread pool waking up, caches)
    assert p.verify_cost(1) < 0, "one cold sample is no measurement"
    p.observe_verify(1, 0.01)
    assert p.verify_cost(1) == pytest.approx(0.01)
    p.observe_draft_step(1.0)
    p.observe_draft_step(0.002)
    assert p.draft_cost(MODEL) == pytest.approx(0.002)
    assert p.draft_cost(NGRAM) == 0.0


def test_planner_keeps_probing_where_drafting_cannot_pay():
    """A draft step costs a whole verify and each row is dear: no length pays even at full
    acceptance. The planner still probes now and then, less often each time."""
    verify = {r: 100.0 * r for r in range(1, 17)}
    p = planner_with(verify, draft_ms=100.0)
    assert p.best_length(MODEL, 16, 1.0) == 0
    probes = [i for i in range(3000) if p.choose(MODEL, 16) > 0]
    assert len(probes) >= 4, "drafting must never be switched off for good"
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0], f"back-off: {gaps}"
    assert p.probes == len(probes)


def test_planner_drafts_again_when_costs_change():
    p = planner_with({r: 100.0 * r for r in range(1, 17)}, draft_ms=100.0)
    for _ in range(100):
        p.choose(MODEL, 16)
    # The machine changes (another backend, less load): verifying a batch is now nearly free and
    # a draft step cheap. The next observations show it.
    for rows in range(1, 17):
        for _ in range(30):
            p.observe_verify(rows, (10.0 + rows) * MS)
    for _ in range(30):
        p.observe_draft_step(1.0 * MS)
    with_acceptance(p, MODEL, 9)
    assert p.choose(MODEL, 16) > 0


def test_planner_probes_again_after_acceptance_collapsed():
    p = with_acceptance(planner_with({1: 30.0, 2: 40.0, 3: 50.0, 4: 60.0}, draft_ms=5.0), MODEL, 0)
    assert p.acceptance(MODEL) < 0.1
    choices = [p.choose(MODEL, 3) for _ in range(200)]
    assert 0 < sum(c > 0 for c in choices) < 20, "rare probes, not none and not every round"


# Two machines' measured costs (generation phase, the 1.5B model's verify cost by rows).
SWEET_SPOT = {1: 93.0, 2: 134.0, 4: 129.0, 8: 223.0, 16: 287.0}
LINEAR = {r: 33.0 + 23.0 * (r - 1) for r in range(1, 18)}  # 1 row 33 ms, 4 rows 102 ms


@pytest.mark.parametrize("accepted_of_10", [6, 9])  # acceptance 0.86, 0.9
def test_sweet_spot_picks_three_token_drafts(accepted_of_10):
    # System 1 (0.5B) costs about a third of a one-row verify on that machine.
    p = with_acceptance(planner_with(SWEET_SPOT, draft_ms=30.0), MODEL, accepted_of_10)
    assert p.choose(MODEL, 16) == 3  # 4 rows cost less than 2
    assert p.expected_rate(MODEL, 3) > 1.25 * p.expected_rate(MODEL, 0)


def test_sweet_spot_ngram_drafts():
    p = with_acceptance(planner_with(SWEET_SPOT), NGRAM, 6, match=8)  # acceptance 0.86
    assert p.choose(NGRAM, 16, 8) == 3
    # A free 3-token draft fully accepted would be ~2.9x; at acceptance 0.86 it is still > 2.2x.
    assert p.expected_rate(NGRAM, 3, 8) > 2.2 * p.expected_rate(NGRAM, 0, 8)
    # Free drafts accepted more often are worth the longer batches.
    assert p.choose(NGRAM, 16, 8) <= with_acceptance(p, NGRAM, 9, match=8).choose(NGRAM, 16, 8)
    # Short matches that are always rejected are not drafted (at 0.5 they would pay here: four
    # rows cost less than two).
    with_acceptance(p, NGRAM, 0, match=1)
    assert p.choose(NGRAM, 16, 1) == 0


def test_linear_curve_drafts_little():
    # Each extra row costs 70% of a one-row verify.
    p = with_acceptance(planner_with(LINEAR, draft_ms=12.0), MODEL, 4)  # acceptance 0.8
    assert p.choose(MODEL, 16) == 0
    assert p.best_length(MODEL, 16, 0.95) == 0  # System 1's drafts never pay here
    # Free n-gram drafts pay only when nearly always accepted.
    q = with_acceptance(planner_with(LINEAR), NGRAM, 1, match=2)  # 0.5
    assert q.choose(NGRAM, 16, 2) == 0
    q = with_acceptance(q, NGRAM, 10, match=8)  # every draft accepted
    assert q.choose(NGRAM, 16, 8) > 0


def test_calibration_seeds_the_curve_and_observations_track_drift():
    p = _core.DraftPlanner()
    verify = [-1.0] + [0.1 + 0.01 * r for r in range(1, 17)]
    p.set_calibration(verify, 0.03)
    assert p.verify_cost(4) == pytest.approx(0.14)
    assert p.draft_cost(MODEL) == pytest.approx(0.03)
    assert not p.drifted
    for _ in range(20):  # a busy moment: a fifth slower
        p.observe_verify(2, 1.2 * 0.12)
    assert not p.drifted, "noise is no drift"
    for _ in range(80):  # the machine got twice as slow: observed at 2 rows only
        p.observe_verify(2, 2 * 0.12)
    assert p.drifted
    assert p.verify_cost(8) == pytest.approx(2 * 0.18, rel=0.15), "unobserved sizes scale along"


def test_a_calibration_taken_in_a_slow_spell_drifts():
    """Decodes lastingly faster than the calibration's fastest samples: it was measured while the
    host was slow, and is measured again; a few fast decodes are not enough."""
    p = _core.DraftPlanner()
    p.set_calibration([-1.0] + [0.1 + 0.01 * r for r in range(1, 17)], 0.03)
    for _ in range(10):
        p.observe_verify(1, 0.6 * 0.11)
    assert not p.drifted, "a few fast decodes are no drift"
    for _ in range(60):  # the calibration took half as long again as the decodes now do
        p.observe_verify(1, 0.67 * 0.11)
    assert p.drifted


# The calibration measured on this project's 2-core machine (ms): noisy at the top (16 rows came
# out cheaper than 12), where one decode of 28 rows then took 490 ms and one of 42 rows 720 ms.
MEASURED_HERE = {1: 56.1, 2: 101.9, 3: 142.8, 4: 165.3, 6: 246.8, 8: 370.4, 12: 470.8, 16: 448.1}


def calibrated(curve_ms: dict[int, float], draft_ms: float = 38.6):
    """A planner seeded with a calibration (ms by rows), nothing observed yet."""
    p = _core.DraftPlanner()
    verify = [-1.0] * (max(curve_ms) + 1)
    for rows, ms in curve_ms.items():
        verify[rows] = ms * MS
    p.set_calibration(verify, draft_ms * MS)
    return p


def test_long_verifies_are_priced_from_the_upper_half_of_the_curve():
    """Beyond the calibration a batch is priced at the per-row slope of the curve's upper half,
    not of its two largest sizes: those were 12 and 16 rows here, 16 the cheaper, so a 42-row
    verify was priced like a 16-row one and long n-gram drafts into prose looked nearly free."""
    p = calibrated(MEASURED_HERE)
    assert p.verify_cost(32) > 1.2 * p.verify_cost(16)
    assert p.verify_cost(42) > p.verify_cost(32) > p.verify_cost(16)


def test_an_uncalibrated_size_is_learnt_from_its_first_sample():
    """A calibrated size's first sample is dropped (the calibration stands in); a size beyond the
    calibration is learnt from its first sample, which its second replaces. Before, every size's
    first sample was dropped, and drafts of ever new lengths (24, 28, 31, 42 rows in one
    generation) were each priced by extrapolation."""
    p = calibrated(MEASURED_HERE)
    p.observe_verify(1, 0.056)  # the first sample of all: cold
    p.observe_verify(4, 1.0)
    assert p.verify_cost(4) == pytest.approx(0.1653)
    p.observe_verify(42, 0.72)
    assert p.verify_cost(42) == pytest.approx(0.72)
    assert p.verify_cost(30) == pytest.approx(0.448 + (0.72 - 0.448) * 14 / 26, rel=0.01), "interpolated"
    p.observe_verify(42, 0.60)
    assert p.verify_cost(42) == pytest.approx(0.60), "the second sample replaces the first"


def test_acceptance_is_per_prompt():
    p = with_acceptance(_core.DraftPlanner(), MODEL, 9)
    assert p.acceptance(MODEL) > 0.85
    p.begin_prompt()
    for _ in range(6):  # the new prompt's drafts are mostly rejected
        p.observe_round(MODEL, 4, 0)
    assert p.acceptance(MODEL) < 0.6


# A remote System 2: every call pays a round trip on top of the remote compute.
LOCAL_TINY = {r: 1.0 + 0.25 * r for r in range(1, 17)}  # ms: a small model computed locally
ROUND_TRIP_MS = 2 * 20.0 * 2  # 20 ms each way, a remote decode takes two exchanges


@pytest.mark.parametrize("known_rows", [16, 2], ids=["calibrated", "two-sizes-seen"])
def test_drafts_grow_with_the_round_trip(known_rows):
    """The same model and acceptance, with and without a network in front of System 2: the round
    trip is a fixed cost per call, so the planner drafts longer over the network — also when only
    one- and two-row calls were seen so far (longer ones are priced at the seen per-row slope, not
    at a fraction of the round trip)."""
    def planner(extra_ms):
        verify = {r: ms + extra_ms for r, ms in LOCAL_TINY.items() if r <= known_rows}
        return with_acceptance(planner_with(verify, draft_ms=0.5), MODEL, 4)  # acceptance 0.8

    local, remote = planner(0.0), planner(ROUND_TRIP_MS)
    near, far = local.choose(MODEL, 15), remote.choose(MODEL, 15)
    assert 0 < near < far, (near, far)
    assert far >= 8
    # Priced as fixed + per row: the 10-row call over the network costs the round trip plus ten rows.
    assert remote.verify_cost(10) == pytest.approx((ROUND_TRIP_MS + LOCAL_TINY[10]) * MS, rel=0.05)


def test_confidence_cutoff_follows_the_cost_of_a_draft_token():
    """System 1 ends a draft where its top-1 probability is below what a further token costs, in
    one-row verifies: high on a linear CPU curve, low behind a round trip, and 0.3 only while
    nothing is measured."""
    assert _core.DraftPlanner().confidence_cutoff(3) == pytest.approx(0.3)
    linear = planner_with(LINEAR, draft_ms=12.0)
    remote = planner_with({r: ms + ROUND_TRIP_MS for r, ms in LOCAL_TINY.items()}, draft_ms=0.5)
    local = planner_with(LOCAL_TINY, draft_ms=0.5)
    assert linear.confidence_cutoff(3) > 0.6
    assert remote.confidence_cutoff(8) < 0.05 < local.confidence_cutoff(8)


def test_probes_weigh_system1s_catch_up():
    """A probe first makes System 1 catch up on everything written since it last drafted. On a
    linear curve, where even fully accepted drafts would save ~1 ms a token, a 200-token catch-up
    is never repaid by the rest of a 128-token generation: no probe. A probe that could repay it
    (System 1 in step, a long generation left, or a sweet-spot curve) is still made."""
    def probes(p, lag, horizon, rounds=3000):
        made = 0
        for _ in range(rounds):
            if p.choose(MODEL, 16, 0, lag, horizon):
                assert p.probing
                made += 1
                p.observe_round(MODEL, 3, 0)
        return made

    # The curve measured on this project's quiet 2-core machine (4 rows 2.2x one row).
    here = {1: 43.3, 2: 63.6, 3: 76.8, 4: 95.7, 6: 137.6, 8: 232.7, 12: 275.4, 16: 262.1}
    linear = lambda: with_acceptance(planner_with(here, draft_ms=25.2), MODEL, 0)
    sweet = lambda: with_acceptance(planner_with(SWEET_SPOT, draft_ms=30.0), MODEL, 0)
    assert linear().best_length(MODEL, 16, 1.0) > 0, "full acceptance would pay a little here"
    assert probes(linear(), lag=200, horizon=128) == 0
    # Even fully accepted, a probe-length draft (2 tokens) would gain 2% here: less than the 5% a
    # draft must promise, so no probe however long the generation; a cheaper System 1 probes.
    assert probes(linear(), lag=0, horizon=4096) == 0
    cheap = lambda: with_acceptance(planner_with(here, draft_ms=10.0), MODEL, 0)
    assert probes(cheap(), lag=0, horizon=4096) >= 3
    assert probes(linear(), lag=200, horizon=-1) >= 3, "horizon unknown: the back-off alone"
    assert probes(sweet(), lag=200, horizon=128) >= 3
    # A catch-up of 200 tokens costs System 1 a batch: less than 200 of its one-token steps.
    p = linear()
    assert 0 < p.catch_up_cost(200) < 200 * p.draft_cost(MODEL)


def test_a_probe_bets_on_a_well_matched_pairs_acceptance():
    """The cost table measured on this project's 2-core machine (a 0.5B System 1 at 0.42 of a
    one-row verify, its 16-token catch-up 5.2 of its steps). Fully accepted 2-token drafts would
    save 12% a token, enough to repay System 1's catch-up on a 54-token prompt over a 128-token
    generation; at a well-matched pair's acceptance (0.9) they save 2%, which does not: no probe
    (measured, the probe that was made cost 9% of the generation). Over a long generation with
    System 1 in step the same bet is still made."""
    verify_ms = [78.2, 112.0, 141.2, 181.6, 216.8, 251.9, 344.4, 436.9, 460.2, 483.6, 506.9, 530.3, 524.1, 517.9,
                 511.7, 505.5]
    table = _core.CostTable([-1.0] + [ms * MS for ms in verify_ms], 32.9 * MS, "measured", 1.44 * MS, 170.9 * MS)
    prompt, max_tokens = 54, 128
    p = _core.DraftPlanner.for_generation(table)
    assert p.best_length(MODEL, 2, 1.0) == 2, "full acceptance would pay here"
    made = [i for i in range(max_tokens) if p.choose(MODEL, 16, 0, prompt + i, max_tokens - i)]
    assert made == []
    p = _core.DraftPlanner.for_generation(table)
    assert any(p.choose(MODEL, 16, 0, 0, 4096) for _ in range(64)), "in step, a long generation left: it probes"
