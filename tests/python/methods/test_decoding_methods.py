"""The collaborative decoding methods: speculative (greedy equality with the large model, trace
structure), fast-and-slow routing, oracle, and contrastive decoding / proxy tuning checked against a
numpy reference computed from each model's own logits (llama-cpp-python on fsgen's libllama)."""
from __future__ import annotations

import numpy as np
import pytest

import fsgen
from helpers import PROMPTS, Reference, check_result, import_llama_cpp, log_softmax, uncertainty

# Contexts exactly like the reference's (llama-cpp-python caps n_batch at n_ctx).
CTX = dict(n_ctx=256, n_threads=1, n_batch=256)
MAX_TOKENS = 48
DRAFT_LENGTHS = [1, 2, 3, 5, 8, None]  # None: the cost-aware adaptive mode


@pytest.fixture(scope="module")
def pair(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **CTX) as p:
        yield p


@pytest.fixture(scope="module")
def mixed_pair(tiny_mixed, tiny_large, small_base):
    """System 1 unsure at about half the steps: routers consult System 2 some of the time."""
    with fsgen.Pair(tiny_mixed, tiny_large, small_base=small_base, **CTX) as p:
        yield p


@pytest.fixture(scope="module")
def large_outputs(pair):
    return {p: pair.generate(p, method="large", max_tokens=MAX_TOKENS) for p in PROMPTS}


def check_speculative_trace(r, draft_max=None):
    """Structure of a speculative trace: rounds of accepted drafts (System 1's or n-gram lookups),
    then one token of System 2."""
    check_result(r)
    t, d, s = r.trace, r.trace.drafts, r.stats
    assert t.system2_called.all(), "every token is verified by System 2"
    assert set(np.unique(t.source).tolist()) <= {0, 1}
    # Accepted drafts of System 1's are its tokens; an accepted end-of-generation draft ends the
    # output without being part of it. Accepted n-gram drafts are System 2's choice.
    slack = 1 if r.finish_reason == "eog" else 0
    model_accepted = s["accepted"] - s["accepted_ngram"]
    assert model_accepted - slack <= int((t.source == 0).sum()) <= model_accepted
    assert ((t.source == 0) == (t.draft_source == 1)).all()
    if draft_max is not None:
        assert (d.length <= draft_max).all()
    if r.finish_reason == "length":
        # Each verify call ends with exactly one token not drafted (a correction or the bonus).
        assert int((t.draft_source == 0).sum()) == s["system2_calls"]
        assert s["n_tokens"] == s["system2_calls"] + s["accepted"]
        # Each rejected draft of System 1's is one mismatch: its token overruled.
        assert s["mismatches"] == int(((d.accepted < d.length) & (d.source == 1)).sum())
        assert not (t.mismatch & (t.source == 0)).any(), "an accepted draft is no mismatch"
        runs = [len(run) for run in "".join("1" if x else "0" for x in (t.draft_source == 0)).split("1")[:-1]]
        assert [a for a in runs if a] == [int(a) for a in d.accepted if a]
    assert len(d) <= s["system2_calls"]


# ---- greedy speculative == greedy large, exactly, on the f32 bed ----

@pytest.mark.parametrize("draft, draft_max", [("model", n) for n in DRAFT_LENGTHS]
                         + [("ngram", 3), ("ngram", None), ("auto", 3), ("auto", None)])
def test_greedy_speculative_equals_large(pair, large_outputs, draft, draft_max):
    drafted = accepted = 0
    for prompt in PROMPTS:
        r = pair.generate(prompt, method="speculative", draft=draft, draft_max=draft_max, max_tokens=MAX_TOKENS,
                          trace=True)
        assert r.tokens == large_outputs[prompt].tokens, prompt
        assert r.text == large_outputs[prompt].text
        check_speculative_trace(r, draft_max)
        drafted += r.stats["drafted"]
        accepted += r.stats["accepted"]
    if draft_max is not None:
        # The bed makes the two models disagree now and then: both outcomes are exercised.
        assert 0 < accepted < drafted


def test_greedy_speculative_with_confidence_cutoff(pair, large_outputs):
    for prompt in PROMPTS[:4]:
        r = pair.generate(prompt, method="speculative", draft="model", draft_max=8, draft_p_min=0.9, max_tokens=MAX_TOKENS,
                          trace=True)
        assert r.tokens == large_outputs[prompt].tokens
        check_speculative_trace(r, 8)
        # Drafts stop where System 1's top-1 probability is below the cutoff.
        drafted = r.trace.source == 0
        assert (r.trace.top1[drafted] >= 0.9).all()


def test_greedy_speculative_equals_large_with_a_flat_drafter(tiny_flat, tiny_large):
    # A drafter that is nearly always wrong: rejections everywhere, still the large model's text.
    with fsgen.Pair(tiny_flat, tiny_large, **CTX) as p:
        for prompt in PROMPTS[:4]:
            expected = p.generate(prompt, method="large", max_tokens=32).tokens
            r = p.generate(prompt, method="speculative", draft="model", draft_max=4, max_tokens=32, trace=True)
            assert r.tokens == expected
            check_speculative_trace(r, 4)


def test_speculative_near_the_end_of_the_context(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, n_ctx=40, n_threads=1, n_batch=40) as p:
        expected = p.generate("hello world", method="large", max_tokens=100)
        for draft_max, draft in ((3, "model"), (8, "auto"), (None, "auto"), (8, "ngram"), (None, "ngram")):
            r = p.generate("hello world", method="speculative", draft=draft, draft_max=draft_max, max_tokens=100,
                           trace=True)
            assert r.tokens == expected.tokens and r.finish_reason == "length"
            check_speculative_trace(r, draft_max)


def test_speculative_with_stop_string(pair, large_outputs):
    full = large_outputs["hello world"]
    stop = full.text[20:23]
    assert stop and full.text.find(stop) == 20
    r = pair.generate("hello world", method="speculative", draft_max=5, max_tokens=MAX_TOKENS, stop=stop, trace=True)
    assert r.finish_reason == "stop" and r.text == full.text[:20]
    check_result(r)


# ---- a model paired with itself ----

@pytest.mark.parametrize("which", ["tiny_small", "tiny_large"])
def test_self_pair_accepts_every_draft(request, which):
    path = request.getfixturevalue(which)
    with fsgen.Pair(path, path, **CTX) as p:
        assert p.small is p.large
        for prompt in PROMPTS[:4]:
            alone = p.generate(prompt, method="small", max_tokens=MAX_TOKENS)
            for draft_max in (3, 8):
                r = p.generate(prompt, method="speculative", draft="model", draft_max=draft_max, max_tokens=MAX_TOKENS,
                               trace=True)
                assert r.tokens == alone.tokens
                assert r.stats["drafted"] > 0 and r.stats["acceptance_rate"] == 1.0
                assert r.stats["mismatches"] == 0
                check_speculative_trace(r, draft_max)
            oracle = p.generate(prompt, method="oracle", max_tokens=MAX_TOKENS, trace=True)
            assert oracle.tokens == alone.tokens
            assert oracle.stats["mismatches"] == 0 and not oracle.trace.mismatch.any()
            assert oracle.trace.system2_called.all() and oracle.stats["system2_calls"] == MAX_TOKENS
            check_result(oracle)


# ---- fast and slow: routers ----

def no_guard(system2: str) -> dict:
    """fs's routing as FS-GEN defines it: without the guard (which exists where System 2 is the
    large model), since it hands the writing to speculative verification on tiny_mixed."""
    return {"guard": False} if system2 == "large" else {}


@pytest.mark.parametrize("system2, method, params", [
    ("large", "large", {}),
    ("contrastive", "contrastive", {}),
    ("contrastive", "contrastive", {"alpha": 0.3, "beta": 1.0}),
    ("contrastive", "contrastive", {"variant": "fsgen", "beta": 0.7}),
    ("proxy", "proxy", {}),
    ("proxy", "proxy", {"alpha": 0.5}),
])
def test_fs_always_equals_its_system2(mixed_pair, system2, method, params):
    for prompt in PROMPTS[:5]:
        fs = mixed_pair.generate(prompt, method="fs", router="always", system2=system2, max_tokens=MAX_TOKENS,
                                 trace=True, **params, **no_guard(system2))
        direct = mixed_pair.generate(prompt, method=method, max_tokens=MAX_TOKENS, trace=True, **params)
        assert fs.tokens == direct.tokens, prompt
        check_result(fs)
        check_result(direct)
        for r in (fs, direct):
            assert r.trace.system2_called.all() and (r.trace.source != 0).all()
            assert r.stats["system2_calls"] == r.stats["n_tokens"] and r.stats["system2_fraction"] == 1.0


def test_combined_methods_differ_from_large(mixed_pair):
    # Otherwise the equalities above would prove little.
    large = mixed_pair.generate(PROMPTS[0], method="large", max_tokens=MAX_TOKENS).tokens
    assert mixed_pair.generate(PROMPTS[0], method="contrastive", beta=2.0, max_tokens=MAX_TOKENS).tokens != large
    assert mixed_pair.generate(PROMPTS[0], method="proxy", max_tokens=MAX_TOKENS).tokens != large


@pytest.mark.parametrize("system2", ["large", "contrastive", "proxy"])
def test_fs_never_equals_small(mixed_pair, system2):
    for prompt in PROMPTS[:5]:
        small = mixed_pair.generate(prompt, method="small", max_tokens=MAX_TOKENS)
        r = mixed_pair.generate(prompt, method="fs", router="never", system2=system2, max_tokens=MAX_TOKENS,
                                trace=True)
        assert r.tokens == small.tokens
        assert r.stats["system2_calls"] == 0 and r.stats["system2_fraction"] == 0
        assert not r.trace.system2_called.any() and (r.trace.source == 0).all()
        check_result(r)


@pytest.mark.parametrize("router, threshold, consult", [
    ("entropy", None, lambda t: t.entropy > 0.5),
    ("entropy", 1.5, lambda t: t.entropy > 1.5),
    ("top1", None, lambda t: t.top1 < 0.5),
    ("top1", 0.8, lambda t: t.top1 < 0.8),
    ("margin", None, lambda t: t.margin < 0.4),
    ("margin", 0.1, lambda t: t.margin < 0.1),
])
def test_router_consults_exactly_where_system1_is_unsure(mixed_pair, router, threshold, consult):
    params = {} if threshold is None else {"threshold": threshold}
    consulted = total = 0
    for prompt in PROMPTS:
        r = mixed_pair.generate(prompt, method="fs", router=router, max_tokens=MAX_TOKENS, trace=True, guard=False,
                                **params)
        check_result(r)
        t = r.trace
        expected = consult(t)
        assert t.system2_called.tolist() == expected.tolist(), prompt
        assert (t.source[~expected] == 0).all() and (t.source[expected] == 1).all()
        assert r.stats["system2_calls"] == int(expected.sum())
        consulted += int(expected.sum())
        total += len(t)
    assert 0 < consulted < total, "the router should consult System 2 on some steps, not all"


def test_oracle_emits_system2_tokens_and_counts_mismatches(mixed_pair):
    for prompt in PROMPTS[:5]:
        large = mixed_pair.generate(prompt, method="large", max_tokens=MAX_TOKENS)
        oracle = mixed_pair.generate(prompt, method="oracle", max_tokens=MAX_TOKENS, trace=True)
        assert oracle.tokens == large.tokens
        check_result(oracle)
        assert oracle.trace.system2_called.all() and (oracle.trace.source == 1).all()
        assert oracle.stats["system2_calls"] == MAX_TOKENS
        assert oracle.stats["mismatch_fraction"] == pytest.approx(oracle.stats["mismatches"] / MAX_TOKENS)
        contrastive = mixed_pair.generate(prompt, method="oracle", system2="contrastive", max_tokens=MAX_TOKENS)
        assert contrastive.tokens == mixed_pair.generate(prompt, method="contrastive", max_tokens=MAX_TOKENS).tokens


def test_fs_trace_counts(mixed_pair):
    for system2 in ("large", "contrastive", "proxy"):
        r = mixed_pair.generate(PROMPTS[2], method="fs", system2=system2, max_tokens=MAX_TOKENS, trace=True,
                                **no_guard(system2))
        check_result(r)
        t, s = r.trace, r.stats
        assert s["n_tokens"] == len(t) == int((t.source == 0).sum()) + int((t.source != 0).sum())
        assert s["system2_calls"] == int(t.system2_called.sum()) == int((t.source != 0).sum())
        assert s["system2_fraction"] == pytest.approx(float((t.source != 0).mean()))
        assert s["mismatches"] == int(t.mismatch.sum())
        assert s["drafted"] == s["accepted"] == 0 and len(t.drafts) == 0


# ---- contrastive and proxy against a numpy reference ----

def contrastive_reference(small, large, alpha, beta, variant):
    logp_l, logp_s = log_softmax(large), log_softmax(small)
    keep = logp_l >= np.log(alpha) + logp_l.max()
    if variant == "standard":
        scores = (1 + beta) * logp_l - beta * logp_s
    else:
        scores = small.astype(np.float64) + beta * (large.astype(np.float64) - small.astype(np.float64))
    return np.where(keep, scores, -np.inf)


def proxy_reference(large_base, small_tuned, small_base, alpha):
    return large_base.astype(np.float64) + alpha * (small_tuned.astype(np.float64) - small_base.astype(np.float64))


def follow_reference(refs, prompt_tokens, tokens, score):
    """Teacher-forced along fsgen's tokens: at each step the reference scores from each model's own
    logits; fsgen's token must be the reference's argmax (or tie with it within float rounding).
    Returns the per-step small-model logits."""
    logits = [ref.start(prompt_tokens) for ref in refs]
    small_logits = []
    for step, token in enumerate(tokens):
        scores = score(*logits)
        best = float(np.max(scores))
        assert np.isfinite(scores[token]), f"step {step}: fsgen chose token {token}, masked out by the reference"
        tolerance = 1e-4 * max(1.0, abs(best))
        assert scores[token] >= best - tolerance, \
            f"step {step}: fsgen chose {token} (score {scores[token]}), the reference {int(np.argmax(scores))} ({best})"
        small_logits.append(logits[0])
        logits = [ref.feed(token) for ref in refs]
    return small_logits


@pytest.fixture(scope="module")
def references(tiny_mixed, tiny_large, small_base):
    import_llama_cpp()
    refs = {name: Reference(path, **CTX) for name, path in
            (("small", tiny_mixed), ("large", tiny_large), ("base", small_base))}
    yield refs
    for ref in refs.values():
        ref.close()


@pytest.mark.parametrize("variant", ["standard", "fsgen"])
@pytest.mark.parametrize("alpha, beta", [(0.1, 0.5), (0.01, 1.0), (0.5, 0.25)])
def test_contrastive_matches_numpy_reference(mixed_pair, references, variant, alpha, beta):
    refs = [references["small"], references["large"]]
    for prompt in PROMPTS[:4]:
        r = mixed_pair.generate(prompt, method="contrastive", alpha=alpha, beta=beta, variant=variant,
                                max_tokens=32, trace=True)
        assert len(r.tokens) == 32
        prompt_tokens = refs[0].tokenize(prompt)
        assert prompt_tokens == mixed_pair.large.tokenize(prompt)
        small_logits = follow_reference(refs, prompt_tokens, r.tokens,
                                        lambda s, l: contrastive_reference(s, l, alpha, beta, variant))
        # System 1's uncertainty in the trace is computed from the same logits.
        measured = np.array([uncertainty(x) for x in small_logits])
        np.testing.assert_allclose(r.trace.entropy, measured[:, 0], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(r.trace.top1, measured[:, 1], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(r.trace.margin, measured[:, 2], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_proxy_matches_numpy_reference(mixed_pair, references, alpha):
    refs = [references["small"], references["large"], references["base"]]
    for prompt in PROMPTS[:4]:
        r = mixed_pair.generate(prompt, method="proxy", alpha=alpha, max_tokens=32)
        assert len(r.tokens) == 32
        follow_reference(refs, refs[0].tokenize(prompt), r.tokens,
                         lambda s, l, b: proxy_reference(l, s, b, alpha))


def test_oracle_mismatches_match_reference(mixed_pair, references):
    refs = [references["small"], references["large"]]
    for prompt in PROMPTS[:4]:
        r = mixed_pair.generate(prompt, method="oracle", max_tokens=32, trace=True)
        small_logits = follow_reference(refs, refs[0].tokenize(prompt), r.tokens, lambda s, l: l.astype(np.float64))
        expected = [int(np.argmax(x)) != t for x, t in zip(small_logits, r.tokens)]
        assert r.trace.mismatch.tolist() == expected
        assert r.stats["mismatches"] == sum(expected)


def test_fs_entropy_router_matches_reference(mixed_pair, references):
    refs = [references["small"], references["large"]]
    for prompt in PROMPTS[:4]:
        r = mixed_pair.generate(prompt, method="fs", router="entropy", threshold=0.5, max_tokens=32, trace=True,
                                guard=False)
        logits = [ref.start(refs[0].tokenize(prompt)) for ref in refs]
        for step, token in enumerate(r.tokens):
            entropy = uncertainty(logits[0])[0]
            if abs(entropy - 0.5) > 1e-3:
                assert bool(r.trace.system2_called[step]) == (entropy > 0.5), step
            chooser = logits[1] if r.trace.system2_called[step] else logits[0]
            assert token == int(np.argmax(chooser)), step
            logits = [ref.feed(token) for ref in refs]


# ---- a real quantized model paired with itself ----

def test_smollm2_self_pair_speculative(smollm2):
    """Quantized CPU kernels are not batch-invariant: the verify batch and one-by-one decoding give
    slightly different logits, so greedy speculative may leave large-only's path where the large
    model scores two candidates almost equally. Checked: nearly every draft is accepted; the
    output equals large-only's up to the first divergence, if any; and (with the reference engine)
    every token emitted is the one-by-one argmax after its own prefix, or within a small logit gap
    of it (a near-tie), which is also what the first divergence must be."""
    prompts = ["Q: What is 17 times 23?\nA:",  # some drafts are rejected here (near-ties)
               "<|im_start|>user\nWrite a Python function that reverses a string.<|im_end|>\n"
               "<|im_start|>assistant\n"]
    runs = []
    with fsgen.Pair(smollm2, smollm2, n_ctx=512, n_threads=1) as p:
        assert p.small is p.large
        for prompt in prompts:
            large = p.generate(prompt, method="large", max_tokens=48)
            spec = p.generate(prompt, method="speculative", draft="model", draft_max=8, max_tokens=48, trace=True)
            check_speculative_trace(spec, 8)
            assert spec.stats["drafted"] > 0 and spec.stats["acceptance_rate"] >= 0.8, spec.stats
            n = min(len(large.tokens), len(spec.tokens))
            first = next((i for i in range(n) if large.tokens[i] != spec.tokens[i]), None)
            if first is None:
                assert spec.tokens == large.tokens
            runs.append((prompt, large, spec, first))
    try:
        import_llama_cpp()
    except pytest.skip.Exception:
        if any(first is not None for *_, first in runs):
            raise
        return  # equal to large-only everywhere: nothing left to explain
    ref = Reference(smollm2, n_ctx=512, n_threads=1)
    try:
        for prompt, large, spec, first in runs:
            logits = ref.start(ref.tokenize(prompt))
            for step, token in enumerate(spec.tokens):
                gap = float(logits.max() - logits[token])
                if step == first:
                    assert int(np.argmax(logits)) == large.tokens[step]
                assert gap < 0.5, f"step {step}: token {token} is {gap:.3f} below the one-by-one argmax"
                if first is None or step < first:
                    assert gap == 0.0, f"step {step}: large-only took this token, so it is the argmax"
                logits = ref.feed(token)
    finally:
        ref.close()


@pytest.mark.parametrize("method, params, system1, system2", [
    ("large", {}, False, True),
    ("small", {}, True, False),
    ("speculative", {"draft": "model", "draft_max": 3}, True, True),
    ("fs", {"router": "never"}, True, False),
    ("fs", {"router": "always", "guard": False}, True, True),
    ("oracle", {}, True, True),
])
def test_time_breakdown_counts_the_models_that_ran(pair, method, params, system1, system2):
    s = pair.generate(PROMPTS[0], method=method, max_tokens=12, **params).stats
    assert (s["system1_decodes"] > 0) == system1 and (s["system2_decodes"] > 0) == system2
    for who in ("system1", "system2"):
        assert s[f"{who}_tokens"] >= s[f"{who}_decodes"] >= 0
        assert (s[f"{who}_seconds"] > 0) == (s[f"{who}_decodes"] > 0)
    if method == "large":
        assert s["system2_tokens"] == s["n_tokens"] - 1  # the first token came from the prompt's pass
    assert (s["sampling_seconds"] > 0) == (method != "speculative")  # greedy verification takes argmaxes itself
    assert s["system1_seconds"] + s["system2_seconds"] + s["sampling_seconds"] <= s["generation_seconds"]


def test_time_breakdown_of_sampled_speculative(pair):
    s = pair.generate(PROMPTS[0], method="speculative", draft="model", draft_max=3, max_tokens=16,
                      temperature=0.8, seed=3).stats
    assert s["system2_tokens"] > s["system2_decodes"] > 0  # verify batches hold several rows
    assert 0 < s["sampling_seconds"] < s["generation_seconds"]


@pytest.mark.parametrize("method, params", [("large", {}), ("speculative", {"draft": "ngram"}),
                                            ("speculative", {"draft": "model", "draft_max": 3})])
def test_priced_seconds_price_each_decode_by_the_table(pair, method, params):
    """The generation's decodes priced by its cost table: here the built-in one (10 ms for a one-row
    verify, 1 ms a further row), so the large model's share is exact whatever the machine does."""
    table = pair.cost_table
    assert table["kind"] == "builtin"
    verify = table["verify_seconds"]
    s = pair.generate(PROMPTS[0], method=method, max_tokens=16, **params).stats
    large = s["system2_decodes"] * verify[1] + (s["system2_tokens"] - s["system2_decodes"]) * (verify[2] - verify[1])
    assert s["system2_decodes"] > 0
    if s["system1_decodes"] == 0:
        assert s["priced_seconds"] == pytest.approx(large, rel=1e-9)
    else:
        assert s["priced_seconds"] > large + s["system1_decodes"] * 0.5 * table["draft_seconds"]
