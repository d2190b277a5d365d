"""fsgen.study on translated pairs (tokenizers that differ): each record says how the vocabularies
relate and which mismatch definition counted ("text"), the methods the pair cannot run are
recorded as skipped (not failures, not retried), and the report says which definition each pair
used. A model paired with a copy of itself under shuffled token ids is where the answer is known:
no mismatch at all."""
import json

import pytest

from helpers import require

require("scipy", "pip install 'fsgen[study]'")
require("matplotlib", "pip install 'fsgen[study]'")

from fsgen.study import analysis, metrics, runner  # noqa: E402
from fsgen.study.records import read_records  # noqa: E402
from tinymodels import FIXTURE_MODELS  # noqa: E402

PROMPTS = [
    {"id": "p1", "prompt": "hello and the", "answer": "the", "score": "contains"},
    {"id": "p2", "prompt": "The world"},
]


@pytest.fixture
def task(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return path


@pytest.fixture(scope="module")
def shuffled_copy(tiny_factory):
    """tiny_mixed (entropies on both sides of fs's thresholds) under other token ids."""
    return tiny_factory("tiny_mixed_shuffled", permute_ids=5, **FIXTURE_MODELS["tiny_mixed"])


def test_a_model_and_its_shuffled_copy_never_mismatch(tiny_mixed, shuffled_copy, task, tmp_path, monkeypatch):
    calls = []
    real = runner._generate

    def counting(pair, item, cfg, max_tokens):
        calls.append(cfg["config"])
        return real(pair, item, cfg, max_tokens)

    monkeypatch.setattr(runner, "_generate", counting)
    out = tmp_path / "out"
    # The study's default methods (contrastive among them) at one threshold and one budget.
    kw = dict(out=out, thresholds=(0.3,), shares=(0.3,), max_tokens=16, n_ctx=512, n_threads=1, progress=False)
    tables = runner.run([(tiny_mixed, shuffled_copy)], task, **kw)
    records = read_records(out / analysis.RECORDS_FILE)
    assert {r["config"] for r in records} == {"small", "large", "oracle", "contrastive", "speculative",
                                              "fs@entropy=0.3", "fs@budget=0.3"}
    for r in records:
        assert r["vocab"]["kind"] == "translated" and r["vocab"]["shared_tokens"] > 0
        assert r["mismatch_definition"] == "text" and "error" not in r
        if r["config"] == "contrastive":  # the pair cannot combine scores token by token
            assert "needs one vocabulary" in r["skipped"] and "trace" not in r
            continue
        assert metrics.consistency(r) == [], r["config"]
        assert not any(r["trace"]["mismatch"]), r["config"]
        if r["method"] == "oracle":
            assert all(r["trace"]["system2_called"]) and r["stats"]["vocab_translated"] == 1
    assert "contrastive" not in calls
    oracle = [row for row in tables["frequency"] if row["config"] == "oracle"]
    assert [(row["events"], row["mismatch_definition"]) for row in oracle] == [(0, "text")]
    assert oracle[0]["denominator"] > 0
    assert [(r["config"], r["n_prompts"]) for r in tables["skipped"]] == [("contrastive", 2)]
    assert tables["errors"] == [] and tables["consistency"] == []
    assert {r["config"] for r in tables["tradeoff"]} >= {"small", "large", "fs@entropy=0.3", "fs@budget=0.3"}

    report = (out / "report.md").read_text()
    assert "translated (" in report and "Mismatch definition by pair" in report
    assert "as bytes up to the shorter" in report and "Not run (the pair cannot): `contrastive`" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["meta"]["pairs"][0]["mismatch_definition"] == "text"
    assert str(tiny_mixed.parent) not in (out / "records.jsonl").read_text()

    calls.clear()  # resumed: nothing to do, the skipped config not retried
    runner.run([(tiny_mixed, shuffled_copy)], task, **kw)
    assert calls == []


def test_a_shared_and_a_translated_pair_in_one_study(tiny_small, tiny_large, tiny_spm, task, tmp_path, capsys):
    """From the CLI: each pair keeps its own definition, and the report says which."""
    from fsgen import cli
    out = tmp_path / "cli-out"
    rc = cli.main(["study", "--pair", str(tiny_small), str(tiny_large), "--pair", str(tiny_small), str(tiny_spm),
                   "--task", str(task), "--limit", "1", "--methods", "oracle,fs", "--thresholds", "0.5",
                   "--shares", "", "--max-tokens", "12", "--n-ctx", "512", "--threads", "1", "--out", str(out),
                   "--no-progress"])
    assert rc == 0 and "oracle" in capsys.readouterr().out
    records = read_records(out / "records.jsonl")
    kinds = {r["pair"]: (r["vocab"]["kind"], r["mismatch_definition"]) for r in records}
    assert sorted(kinds.values()) == [("shared", "token"), ("translated", "text")]
    assert all("error" not in r and "skipped" not in r for r in records)
    assert len(records) == 2 * 4  # small, large, oracle, fs@entropy=0.5 for each pair
    report = (out / "report.md").read_text()
    pair = next(p for p, k in kinds.items() if k[0] == "translated")
    assert f"`{pair}`: text: the tokenizers differ" in report and ": token: System 2's token" in report
