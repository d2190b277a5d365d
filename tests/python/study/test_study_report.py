"""fsgen.study analysis, plots and report from synthetic records (no models), and the CLI."""
import argparse
import json

import numpy as np
import pytest

from helpers import require

require("scipy", "pip install 'fsgen[study]'")
require("matplotlib", "pip install 'fsgen[study]'")
from fsgen.cli import study as study_cli  # noqa: E402
from fsgen.study import analysis, methods, runner  # noqa: E402
from fsgen.study.records import RecordStore  # noqa: E402

PIECES = [" def", " f", "(", "x", "):", "\n   ", " return", " x", " +", " 1"]


def fake_record(pair, n_small, n_large, cfg, prompt, rng, n=40):
    """A record as runner._record writes it, with mismatches where entropy is high."""
    ent = rng.gamma(0.5, 0.3, n)
    mis = (ent > 0.6) & (rng.random(n) < 0.9) if cfg["method"] == "oracle" else np.zeros(n, bool)
    top1 = np.exp(-ent)
    called = {"oracle": np.ones(n, bool), "fs": ent >= cfg["params"].get("threshold", 0),
              "large": np.ones(n, bool)}.get(cfg["method"], np.zeros(n, bool))
    trace = {"token": list(range(n)), "source": [0] * n, "entropy": ent.tolist(),
             "top1": top1.tolist(), "margin": (top1 * 0.8).tolist(),
             "system2_called": called.tolist(), "mismatch": mis.tolist(),
             "text_offset": list(range(n)), "piece": [PIECES[i % 10] for i in range(n)]}
    drafts = {"length": [5] * 8, "accepted": rng.integers(2, 6, 8).tolist()} \
        if cfg["method"] == "speculative" else {}
    stats = {"n_tokens": n, "generation_seconds": n / (20 if cfg["method"] == "small" else 10),
             "system2_calls": int(called.sum()), "mismatches": int(mis.sum()),
             "drafted": sum(drafts.get("length", [])), "accepted": sum(drafts.get("accepted", []))}
    return {"pair": pair, "task": "toy", "small": f"{pair}-s.gguf", "large": f"{pair}-l.gguf",
            "n_params_small": n_small, "n_params_large": n_large, "config": cfg["config"],
            "prompt_id": f"p{prompt}", "method": cfg["method"], "params": cfg["params"],
            "max_tokens": 64, "text": "x" * n, "finish_reason": "length", "stats": stats,
            "score": float(rng.random() < 0.5), "score_status": "", "score_detail": "",
            "trace": trace, "drafts": drafts, "time": "2026-01-01T00:00:00+00:00"}


def fake_records(n_pairs=3, n_prompts=4):
    rng = np.random.default_rng(0)
    cfgs = methods.configs(("oracle", "contrastive", "proxy", "speculative", "fs"), (0.3, 1.0),
                           proxy=True)
    recs = [fake_record(f"pair{k}", 500, 500 * (2 + 3 * k), c, p, rng)
            for k in range(n_pairs) for c in cfgs for p in range(n_prompts)]
    recs.append({**recs[0], "prompt_id": "too-long", "error": "ContextOverflowError: x"})
    del recs[-1]["trace"], recs[-1]["text"]
    return recs


def test_configs():
    cfgs = methods.configs(("oracle", "contrastive", "speculative", "fs"), (0.5, 1.0), shares=(0.05, 0.2))
    assert [c["config"] for c in cfgs] == ["small", "large", "oracle", "contrastive",
                                           "speculative", "fs@entropy=0.5", "fs@entropy=1",
                                           "fs@budget=0.05", "fs@budget=0.2"]
    assert cfgs[3] == {"config": "contrastive", "method": "oracle",
                       "params": {"system2": "contrastive"}}
    # fs without its guard: FS-GEN's method
    assert cfgs[5]["params"] == {"router": "entropy", "threshold": 0.5, "guard": False}
    assert cfgs[8]["params"] == {"router": "budget", "system2_share": 0.2}
    assert [c["config"] for c in methods.configs(("fs",))][2:] == [
        "fs@entropy=0.1", "fs@entropy=0.3", "fs@entropy=0.5", "fs@entropy=1", "fs@entropy=2",
        "fs@budget=0.025", "fs@budget=0.05", "fs@budget=0.1", "fs@budget=0.2"]
    guarded = methods.configs(("fs",), (0.5,), shares=(), baselines=False, params={"fs": {"guard": True}})
    assert guarded == [{"config": "fs@entropy=0.5[guard=True]", "method": "fs",
                        "params": {"router": "entropy", "threshold": 0.5, "guard": True}}]
    cfgs = methods.configs(("speculative", "contrastive", "fs"), (0.5,), shares=(), baselines=False,
                           params={"speculative": {"draft_max": 5},
                                   "contrastive": {"variant": "fsgen", "beta": 0.5}})
    assert [c["config"] for c in cfgs] == ["speculative[draft_max=5]",
                                           "contrastive[beta=0.5,variant=fsgen]", "fs@entropy=0.5"]
    assert cfgs[0]["params"] == {"draft_max": 5}
    assert cfgs[1]["params"] == {"system2": "contrastive", "beta": 0.5, "variant": "fsgen"}
    with pytest.raises(ValueError, match="small_base"):
        methods.configs(("proxy",))
    with pytest.raises(ValueError, match="unknown"):
        methods.configs(("magic",))


def test_n_params_helper():
    class Obj:
        n_params = 7
    assert runner.n_params(type("M", (), {"info": {"n_params": 5}})()) == 5
    assert runner.n_params(type("M", (), {"info": Obj()})()) == 7
    assert runner.n_params(type("M", (), {"info": lambda self: {"n_params": 3}})()) == 3
    assert runner.n_params(object()) is None


def test_analyze_writes_every_file(tmp_path):
    recs = fake_records()
    t = analysis.analyze(tmp_path, recs, meta={"task": "toy"})
    names = {p.name for p in tmp_path.iterdir()}
    expected = {"report.md", "summary.json", "position_deciles.png", "token_kinds.png",
                "scaling_law.png"}
    for k in range(3):
        expected |= {f"uncertainty_pair{k}.png", f"roc_pair{k}.png", f"tradeoff_pair{k}.png"}
    assert expected <= names
    assert all((tmp_path / n).stat().st_size > 5000 for n in expected if n.endswith(".png"))

    # counts agree with the records
    ok = [r for r in recs if "error" not in r]
    freq = {(r["pair"], r["config"], r["measure"]): r for r in t["frequency"]}
    mine = [r for r in ok if (r["pair"], r["config"]) == ("pair1", "oracle")]
    f = freq[("pair1", "oracle", "mismatch")]
    assert f["events"] == sum(sum(r["trace"]["mismatch"]) for r in mine)
    assert f["denominator"] == 40 * 4 and f["ci_low"] <= f["frequency"] <= f["ci_high"]
    spec = freq[("pair0", "speculative", "rejection")]
    assert spec["denominator"] == 4 * 40
    assert ("pair0", "fs@entropy=0.3", "system2") in freq
    pos = [r for r in t["position"] if (r["pair"], r["config"]) == ("pair1", "oracle")]
    assert sum(r["mismatches"] for r in pos) == f["events"]
    kinds = [r for r in t["token_kind"] if (r["pair"], r["config"]) == ("pair1", "oracle")]
    assert sum(r["tokens"] for r in kinds) == f["denominator"]
    auc = {(r["pair"], r["config"], r["feature"]): r["auroc"] for r in t["auroc"]}
    assert auc[("pair0", "oracle", "entropy")] > 0.9       # mismatches sit on high entropy
    assert t["consistency"] == [] and len(t["errors"]) == 1
    fits = {r["config"]: r for r in t["scaling"]}
    assert set(fits) == {"oracle", "contrastive", "proxy"}
    assert fits["oracle"]["kind"] == "interpolation" and not fits["oracle"]["fitted"]   # 3 ratios
    trade = {(r["pair"], r["config"]): r for r in t["tradeoff"]}
    assert trade[("pair0", "small")]["tokens_per_second"] == pytest.approx(20)

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["tables"]["frequency"] and "scaling_law.png" in summary["figures"]
    assert summary["meta"]["n_prompts"] == 5 and len(summary["meta"]["pairs"]) == 3
    md = (tmp_path / "report.md").read_text()
    for s in ("Collaboration frequency", "AUROC", "Scaling law", "![", "Quality and speed",
              "exact interpolation, not a fit",
              "failed generations: 1"):
        assert s in md


def test_analyze_from_records_file_with_one_ratio(tmp_path):
    store = RecordStore(tmp_path / "records.jsonl")
    for r in fake_records(n_pairs=1, n_prompts=1):
        store.append(r)
    t = analysis.analyze(tmp_path)
    assert all(not f["fitted"] and "no fit" in f["message"] for f in t["scaling"])
    assert (tmp_path / "scaling_law.png").exists() and (tmp_path / "report.md").exists()
    f = t["frequency"][0]
    assert f["n_prompts"] == 1 and f["ci_low"] != f["ci_low"]   # NaN CI with one prompt
    json.loads((tmp_path / "summary.json").read_text())          # strict JSON (no NaN)


def test_analyze_empty(tmp_path):
    t = analysis.analyze(tmp_path, [])
    assert t["frequency"] == [] and (tmp_path / "report.md").exists()


def test_cli(monkeypatch, tmp_path):
    parser = argparse.ArgumentParser()
    study_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["study", "--pair", "s.gguf", "l.gguf", "--pair", "s2", "l2",
                              "--task", "humaneval", "--limit", "3", "--methods", "oracle,fs",
                              "--thresholds", "0.2,1", "--out", str(tmp_path), "--threads", "2",
                              "--method-param", "speculative.draft_max=5",
                              "--method-param", "contrastive.variant=fsgen"])
    seen = {}

    def fake_run(pairs, task, **kw):
        seen.update(pairs=pairs, task=task, **kw)
        return {"frequency": [{"pair": "s+l", "config": "oracle", "measure": "mismatch",
                               "frequency": 0.1, "ci_low": float("nan"), "ci_high": 0.2}]}
    monkeypatch.setattr(runner, "run", fake_run)
    assert args.run(args) == 0
    assert seen["pairs"] == [("s.gguf", "l.gguf"), ("s2", "l2")] and seen["limit"] == 3
    assert seen["methods"] == ("oracle", "fs") and seen["thresholds"] == (0.2, 1.0)
    assert seen["n_threads"] == 2 and seen["max_tokens"] == 512
    assert seen["method_params"] == {"speculative": {"draft_max": 5},
                                     "contrastive": {"variant": "fsgen"}}
    with pytest.raises(SystemExit):
        parser.parse_args(["study", "--pair", "a", "b", "--task", "x", "--methods", "magic"])
    with pytest.raises(SystemExit):
        parser.parse_args(["study", "--pair", "a", "b", "--task", "x", "--method-param", "x=1"])


def test_cli_reports_missing_extras(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "scipy" else real(name, *a))
    with pytest.raises(ImportError, match="scipy"):
        study_cli.add_parser(argparse.ArgumentParser().add_subparsers())
