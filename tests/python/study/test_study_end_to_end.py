"""fsgen.study end to end on the tiny model bed: every file, resume without redoing finished
prompts (after a clean stop and after an interruption), counts that agree with the traces."""
import json

import pytest

from helpers import require

require("scipy", "pip install 'fsgen[study]'")
require("matplotlib", "pip install 'fsgen[study]'")

from fsgen.study import analysis, methods, metrics, runner  # noqa: E402
from fsgen.study.records import read_records  # noqa: E402

PROMPTS = [
    {"id": "p1", "prompt": "Once upon a time", "answer": "time", "score": "contains"},
    {"id": "p2", "prompt": "1, 2, 3, 4,", "answer": "5", "score": "last_number"},
    {"id": "p3", "prompt": "def add(a, b):"},
]
THRESHOLDS = (0.5, 2.0)


@pytest.fixture
def task(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return path


class Interrupt(KeyboardInterrupt):
    pass


def test_study_end_to_end(tiny_small, tiny_large, small_base, task, tmp_path, monkeypatch):
    calls, stop_after = [], [None]
    real = runner._generate

    def counting(pair, item, cfg, max_tokens):
        if stop_after[0] is not None and len(calls) >= stop_after[0]:
            raise Interrupt()
        calls.append((cfg["config"], item.id))
        return real(pair, item, cfg, max_tokens)

    monkeypatch.setattr(runner, "_generate", counting)
    out = tmp_path / "out"
    wanted = ("oracle", "contrastive", "speculative", "fs", "proxy")
    n_cfg = len(methods.configs(wanted, THRESHOLDS, proxy=True))
    kw = dict(small_base=small_base, methods=wanted, out=out, thresholds=THRESHOLDS,
              max_tokens=16, n_ctx=512, n_threads=2, progress=False)
    pairs = [(str(tiny_small), str(tiny_large))]

    # 1. interrupted part-way through the first prompt
    stop_after[0] = 3
    with pytest.raises(Interrupt):
        runner.run(pairs, task, limit=2, **kw)
    assert len(read_records(out / analysis.RECORDS_FILE)) == 3
    # 2. resumed: only what is missing for two prompts
    stop_after[0], done = None, len(calls)
    runner.run(pairs, task, limit=2, **kw)
    assert len(calls) - done == 2 * n_cfg - 3
    assert len(set(calls)) == len(calls) == 2 * n_cfg            # nothing generated twice
    before = {(r["config"], r["prompt_id"]): r["time"] for r in read_records(out / "records.jsonl")}
    # 3. a third prompt: only its generations run
    calls.clear()
    tables = runner.run(pairs, task, limit=3, **kw)
    assert sorted(calls) == sorted((c["config"], "p3") for c in
                                   methods.configs(wanted, THRESHOLDS, proxy=True))
    records = read_records(out / "records.jsonl")
    assert len(records) == 3 * n_cfg
    assert all(before[(r["config"], r["prompt_id"])] == r["time"]
               for r in records if r["prompt_id"] != "p3")

    # every file
    names = {p.name for p in out.iterdir()}
    slug = analysis.slug(records[0]["pair"])
    for f in ("records.jsonl", "report.md", "summary.json", "position_deciles.png",
              "token_kinds.png", f"uncertainty_{slug}.png", f"roc_{slug}.png", "scaling_law.png",
              f"tradeoff_{slug}.png"):
        assert f in names, f
    json.loads((out / "summary.json").read_text())

    # records are complete and their counts agree with the traces
    for r in records:
        assert "error" not in r, r["error"]
        tr = r["trace"]
        n = len(tr["token"])
        assert 0 < n <= 16 and all(len(v) == n for v in tr.values()), r["config"]
        assert r["stats"]["n_tokens"] == n
        assert metrics.consistency(r) == [], (r["config"], metrics.consistency(r))
        assert isinstance(r["n_params_small"], int) and r["n_params_small"] > 0
        assert r["n_params_large"] >= r["n_params_small"]
        if r["method"] == "oracle":
            assert all(tr["system2_called"])
        if r["method"] == "small":
            assert not any(tr["mismatch"])
        assert r["score"] is not None or r["prompt_id"] == "p3"
    assert tables["consistency"] == [] and tables["errors"] == []
    for row in tables["frequency"]:
        mine = [r for r in records if r["config"] == row["config"]]
        ev, den = zip(*(metrics.collab_counts(r, row["measure"]) for r in mine))
        assert (row["events"], row["denominator"]) == (sum(ev), sum(den))
        assert row["n_prompts"] == 3
    fs = {r["config"]: r for r in tables["frequency"] if r["method"] == "fs"}
    assert fs["fs@entropy=0.5"]["frequency"] >= fs["fs@entropy=2"]["frequency"]
    assert {r["config"] for r in tables["scaling"]} >= {"oracle", "contrastive"}
    assert all(not f["fitted"] for f in tables["scaling"])         # one ratio: points only


def test_failed_generation_is_recorded_not_retried(tiny_small, tiny_large, tmp_path, monkeypatch):
    task = tmp_path / "long.jsonl"
    task.write_text(json.dumps({"id": "long", "prompt": "word " * 3000}) + "\n" +
                    json.dumps({"id": "short", "prompt": "Hello"}) + "\n")
    kw = dict(methods=("oracle",), out=tmp_path / "out", max_tokens=8, n_ctx=256, n_threads=2,
              progress=False)
    tables = runner.run([(tiny_small, tiny_large)], task, **kw)
    errors = {(e["config"], e["prompt_id"]): e["error"] for e in tables["errors"]}
    assert set(errors) == {(c, "long") for c in ("small", "large", "oracle")}
    assert all(e.startswith("ContextOverflowError") for e in errors.values())
    assert [r["n_prompts"] for r in tables["frequency"]] == [1]
    calls = []
    monkeypatch.setattr(runner, "_generate", lambda *a: calls.append(a))
    runner.run([(tiny_small, tiny_large)], task, **kw)
    assert calls == []


def test_cli(tiny_small, tiny_large, task, tmp_path, capsys):
    from fsgen import cli
    out = tmp_path / "cli-out"
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"verify_seconds": {"1": 0.01, "4": 0.03, "16": 0.11}, "draft_seconds": 0.005}))
    rc = cli.main(["study", "--pair", str(tiny_small), str(tiny_large), "--task", str(task),
                   "--limit", "1", "--methods", "oracle,fs", "--thresholds", "0.5", "--shares", "0.1",
                   "--max-tokens", "8", "--n-ctx", "512", "--threads", "2", "--out", str(out),
                   "--no-progress", "--calibration", str(table)])
    assert rc == 0
    assert "oracle" in capsys.readouterr().out
    assert (out / "report.md").exists() and len(read_records(out / "records.jsonl")) == 5
    assert {r["config"] for r in read_records(out / "records.jsonl")} >= {"fs@entropy=0.5", "fs@budget=0.1"}
    # models are recorded by file name, size and SHA-256, never by their path here
    from fsgen.study.records import model_identity
    rec = read_records(out / "records.jsonl")[0]
    # each record holds the (pinned) cost table its generation priced from
    from fsgen.calibration import read_table
    pinned = read_table(str(table))
    assert {(r["cost_table"]["id"], r["cost_table"]["kind"]) for r in read_records(out / "records.jsonl")} == \
        {(pinned.id, "pinned")}
    assert rec["cost_table"]["verify_seconds"] == {"1": 0.01, "4": 0.03, "16": 0.11}
    assert rec["small"] == model_identity(tiny_small)
    assert rec["large"] == model_identity(tiny_large) and rec["small_base"] is None
    for name in ("records.jsonl", "report.md", "summary.json"):
        assert str(tiny_small.parent) not in (out / name).read_text(), name
