"""fsgen demo: its headline is the collaborative method the machine's cost curve says pays."""
from __future__ import annotations

import pytest

from processes import run_cli

MS = 1e-3


def curve(per_row_ms: float, one_row_ms: float = 35.0) -> dict[int, float]:
    """Verify seconds by rows: one row, plus per_row_ms for each further row."""
    return {r: (one_row_ms + (r - 1) * per_row_ms) * MS for r in range(1, 17)}


@pytest.mark.parametrize("verify, draft_ms, method, draft", [
    (curve(4.7), 12.0, "speculative", "model"),   # 4 rows at 1.4x one row: System 1's drafts pay
    (curve(26.0), 24.0, "speculative", None),     # linear (4 rows 3.2x), System 1 at 0.68: auto drafts
    # Linear, System 1 at 0.2 of a step: System 2's batched read of each of its tokens costs 0.76
    # of a step (16 rows 12x one row), fs's token 0.96: it cannot pay, n-gram drafts can.
    (curve(26.0), 7.0, "speculative", None),
    (curve(15.0), 7.0, "fs", None),               # 16 rows 7.4x one row, System 1 at 0.2: fs's token 0.66
    # The curve of a 2-core CPU, measured: 4 rows 2.3x, 16 rows 7.0x, System 1 at 0.45; fs's token
    # 0.89: the guard handed 93% of the demo's tokens over, fs ran at 0.93x large-only.
    ({1: 56.6 * MS, 2: 85.7 * MS, 3: 114.4 * MS, 4: 138.2 * MS, 6: 201.1 * MS, 8: 343.4 * MS, 12: 434.7 * MS,
      16: 397.3 * MS}, 25.5, "speculative", None),
])
def test_the_headline_follows_the_cost_curve(verify, draft_ms, method, draft):
    from fsgen.cli.demo import choose
    label, params, why = choose({"verify_seconds": verify, "draft_seconds": draft_ms * MS})
    assert params["method"] == method and params.get("draft") == draft
    assert "verifying 4 tokens costs" in why and "decode steps here" in why
    assert params["method"] != "large"
    if method == "speculative" and draft is None:
        assert "a token of fs costs" in why


def test_the_headline_without_a_curve_is_speculative():
    from fsgen.cli.demo import choose
    label, params, why = choose({})
    assert params == {"method": "speculative"} and "unknown" in why


def test_demo_runs_on_any_pair(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    monkeypatch.setenv("FSGEN_CALIBRATE", "1")
    done = run_cli("demo", "--small", tiny_small, "--large", tiny_large, "--threads", 1, "--max-tokens", 8)
    assert done.returncode == 0, done.stderr
    assert "verifying 4 tokens costs" in done.stderr
    table = done.stdout.splitlines()
    names = [line[:30].strip() for line in table if line.endswith("%")]
    assert names[0] != "large only" and {"large only", "small only"} <= set(names)
    assert any(name.startswith("fs (entropy > 1)") for name in names)


def test_one_model_given_pairs_it_with_the_demo_pairs_other(tiny_small, monkeypatch):
    """`fsgen demo --small smollm2-135m`: the named model and the demo pair's large one, each pulled
    (at once when cached); a path is taken as it is."""
    from fsgen import hub
    from fsgen.cli.demo import models
    pulled = []
    monkeypatch.setattr(hub, "pull", lambda name, **kw: pulled.append(name) or [f"/cache/{name}.gguf"])
    small, large = hub.GROUPS["demo"]
    assert models("smollm2-135m", None) == ("/cache/smollm2-135m.gguf", f"/cache/{large}.gguf")
    assert models(None, None) == (f"/cache/{small}.gguf", f"/cache/{large}.gguf")
    assert models(str(tiny_small), None) == (str(tiny_small), f"/cache/{large}.gguf")
    assert pulled == ["smollm2-135m", large, small, large, large]


def test_demo_runs_on_a_pair_whose_tokenizers_differ(tiny_small, tiny_spm, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    monkeypatch.setenv("FSGEN_CALIBRATE", "1")
    done = run_cli("demo", "--small", tiny_small, "--large", tiny_spm, "--threads", 1, "--max-tokens", 8)
    assert done.returncode == 0, done.stderr
    names = [line[:30].strip() for line in done.stdout.splitlines() if line.endswith("%")]
    assert names[0] != "large only" and {"large only", "small only"} <= set(names)
    assert any(name.startswith("fs (entropy") for name in names), done.stdout  # fs runs across the tokenizers
    assert "do not share a tokenizer" in done.stderr
