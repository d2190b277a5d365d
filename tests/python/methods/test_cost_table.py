"""The cost table: decisions that change the text (fs's guard, draft lengths) price from a table
frozen per generation, never from a clock. A pinned table gives the same fs text between calls,
beside a busy process, and in another process; pinning measures nothing."""
from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys

import pytest

import fsgen
from helpers import TINY
from processes import child_env, run_cli

# A CPU-like table: 4 rows cost 3 one-row verifies, a System 1 step half of one. fs runs behind
# large-only on the tiny bed under it, so the guard hands over.
LINEAR = {"verify_seconds": {r: 0.01 * (1 + 2 / 3 * (r - 1)) for r in range(1, 17)}, "draft_seconds": 0.005}
PROMPT = "Once upon a time, in a land far away"
CALL = dict(method="fs", max_tokens=48)  # fs at its defaults: greedy, the guard on


def _spin(ready):
    ready.set()
    while True:
        pass


@pytest.fixture
def pinned(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path / "cache"))
    with fsgen.Pair(tiny_small, tiny_large, calibrate=LINEAR, **TINY) as p:
        yield p


def test_a_pinned_table_is_used_as_given(pinned, tmp_path):
    table = pinned.cost_table
    assert table["kind"] == "pinned" and len(table["id"]) == 8
    assert table["verify_seconds"] == pytest.approx(LINEAR["verify_seconds"])
    r = pinned.generate(PROMPT, **CALL)
    assert r.cost_table == table["id"]
    assert 0 < r.stats["guard_tokens"] < r.stats["n_tokens"], "the table makes the guard hand over"
    pinned.generate(PROMPT, method="speculative", max_tokens=16)
    assert pinned.cost_table == table, "generations do not update a pinned table"
    assert not (tmp_path / "cache" / "calibration").exists(), "pinning measures nothing"


def test_fs_text_is_the_same_between_calls_and_beside_a_busy_process(pinned):
    first = pinned.generate(PROMPT, **CALL)
    assert 0 < first.stats["guard_tokens"] < first.stats["n_tokens"]
    assert pinned.generate(PROMPT, **CALL).tokens == first.tokens
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    busy = context.Process(target=_spin, args=(ready,), daemon=True)
    busy.start()
    try:
        assert ready.wait(60), "the busy process did not start"
        beside = [pinned.generate(PROMPT, **CALL) for _ in range(5)]
    finally:
        busy.kill()
        busy.join()
    for r in beside:
        assert r.tokens == first.tokens and r.stats["guard_tokens"] == first.stats["guard_tokens"]


def test_fs_text_is_the_same_in_another_process(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "table.json"
    path.write_text(json.dumps(LINEAR))
    with fsgen.Pair(tiny_small, tiny_large, calibrate=str(path), **TINY) as p:
        here = p.generate(PROMPT, **CALL)
        assert p.cost_table["kind"] == "pinned"
    code = (f"import fsgen, json; p = fsgen.Pair({str(tiny_small)!r}, {str(tiny_large)!r}, calibrate={str(path)!r}, "
            f"n_ctx={TINY['n_ctx']}, n_threads={TINY['n_threads']}); r = p.generate({PROMPT!r}, **{CALL!r}); "
            "print(json.dumps([r.tokens, r.cost_table]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [here.tokens, here.cost_table]
    assert not (tmp_path / "cache" / "calibration").exists()


def test_calibrate_false_is_the_fixed_builtin_table(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, calibrate=False, **TINY) as a, \
            fsgen.Pair(tiny_small, tiny_large, calibrate=False, **TINY) as b:
        table = a.cost_table
        assert table["kind"] == "builtin"
        r = a.generate(PROMPT, method="speculative", max_tokens=24)
        assert r.cost_table == table["id"] and a.cost_table == table, "a built-in table is never updated"
        assert b.cost_table == table


def test_calibrate_returns_the_table(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    with fsgen.Pair(tiny_small, tiny_large, calibrate=True, **TINY) as p:
        figures = p.calibrate()
        assert figures["kind"] == "measured" and figures["id"] == p.cost_table["id"]
        assert set(figures["verify_seconds"]) >= {1, 2, 4, 8, 16} and figures["draft_seconds"] > 0
        assert 0 < figures["sampling_seconds"] < figures["verify_seconds"][1], "the sampler is timed too"
        assert figures["catch_up_seconds"] > figures["draft_seconds"], "and System 1's catch-up batch"
        assert "acceptance" in figures and figures["calibration"]["verify_seconds"]
        assert p.generate(PROMPT, method="speculative", max_tokens=8).cost_table == figures["id"]


def test_a_bad_table_is_refused(tiny_small, tiny_large, tmp_path):
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Pair(tiny_small, tiny_large, calibrate={"verify_seconds": {}}, **TINY)
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Pair(tiny_small, tiny_large, calibrate=str(tmp_path / "missing.json"), **TINY)


def test_save_and_calibration_round_trip_through_the_cli(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "table.json"
    done = run_cli("calibrate", "--small", tiny_small, "--large", tiny_large, "--threads", 1, "--n-ctx", 256,
                   "--save", path)
    assert done.returncode == 0, done.stderr
    saved = json.loads(path.read_text())
    assert saved["kind"] == "measured" and saved["verify_seconds"]["1"] > 0 and saved["sampling_seconds"] > 0
    args = ("generate", "--small", tiny_small, "--large", tiny_large, "--method", "fs", "--calibration", path,
            "--stats", "--raw", PROMPT, "--max-tokens", 24, "--threads", 1, "--n-ctx", 256)
    runs = [run_cli(*args) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    stats = [json.loads(r.stdout[r.stdout.index("{"):]) for r in runs]
    assert stats[0]["cost_table"] == stats[1]["cost_table"] == saved["id"]
    texts = [r.stdout[:r.stdout.index("{")] for r in runs]
    assert texts[0] == texts[1] and stats[0]["guard_tokens"] == stats[1]["guard_tokens"]
    with fsgen.Pair(tiny_small, tiny_large, calibrate=str(path), **TINY) as p:
        assert p.cost_table["id"] == saved["id"] and p.cost_table["kind"] == "pinned"
        assert p.cost_table["catch_up_seconds"] == saved["catch_up_seconds"] > 0


def test_a_model_takes_a_pinned_table(tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path / "cache"))
    table = {"verify_seconds": {1: 0.01, 4: 0.011, 16: 0.02}}
    with fsgen.Model(tiny_large, calibrate=table, **TINY) as m:
        assert m.cost_table["kind"] == "pinned" and m.cost_table["draft_seconds"] is None
        r = m.generate("hello world hello world hello", draft="ngram", max_tokens=16)
        assert r.cost_table == m.cost_table["id"]
    assert not (tmp_path / "cache" / "calibration").exists()


@pytest.mark.parametrize("command", ["generate", "serve"])
def test_calibration_flag_pins_the_table(command, tmp_path):
    from fsgen.cli import build_parser
    from fsgen.cli.flags import load_options
    path = str(tmp_path / "table.json")
    args = build_parser().parse_args([command, "--small", "s.gguf", "--large", "l.gguf", "--calibration", path]
                                     + (["hi"] if command == "generate" else []))
    assert load_options(args)["calibrate"] == path
