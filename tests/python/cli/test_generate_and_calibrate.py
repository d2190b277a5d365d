"""The fsgen command line: `python -m fsgen.cli generate ...` with one model or a pair."""
from __future__ import annotations

import pytest

import fsgen
from helpers import TINY
from processes import run_cli


def test_generate_with_one_model(tiny_small):
    done = run_cli("generate", "--model", tiny_small, "hi", "--max-tokens", 8, "--threads", 1, "--n-ctx", 256)
    assert done.returncode == 0, done.stderr
    with fsgen.Model(tiny_small, **TINY) as m:
        # The model has a chat template: the prompt is sent as a user message.
        expected = m.generate(messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert done.stdout == expected.text + "\n"
    assert "8 tokens" in done.stderr and "Traceback" not in done.stderr


def test_generate_raw_prompt(tiny_small):
    done = run_cli("generate", "--model", tiny_small, "--raw", "hello world", "--max-tokens", 12, "--threads", 1)
    assert done.returncode == 0, done.stderr
    with fsgen.Model(tiny_small, **TINY) as m:
        assert done.stdout == m.generate("hello world", max_tokens=12).text + "\n"


def test_generate_with_a_pair_fs_trace(tiny_small, tiny_large):
    done = run_cli("generate", "--small", tiny_small, "--large", tiny_large, "--method", "fs", "--router", "always",
                   "--no-guard", "--trace", "hi", "--max-tokens", 8, "--threads", 1, "--n-ctx", 256)
    assert done.returncode == 0, done.stderr
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        expected = pair.generate(messages=[{"role": "user", "content": "hi"}], method="fs", router="always",
                                 guard=False, max_tokens=8, trace=True)
    unmarked = done.stdout.replace("[[", "").replace("]]", "")
    assert unmarked.startswith(expected.text.replace("[[", "").replace("]]", ""))
    # One trace row per token, after a header.
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "token" in line and "entropy" in line)
    rows = [line.split() for line in lines[header + 1:] if line.strip() and line.split()[0].isdigit()]
    assert [int(row[1]) for row in rows] == expected.tokens
    assert "System 2 wrote 100.0%" in done.stderr


@pytest.mark.parametrize("method", ["speculative", "oracle", "contrastive"])
def test_generate_pair_methods(tiny_small, tiny_large, method):
    done = run_cli("generate", "--small", tiny_small, "--large", tiny_large, "--method", method, "--stats", "hi",
                   "--max-tokens", 6, "--threads", 1, "--n-ctx", 256)
    assert done.returncode == 0, done.stderr
    assert '"n_tokens": 6' in done.stdout


def test_bad_model_path_is_a_clean_error(tmp_path):
    missing = tmp_path / "missing.gguf"
    done = run_cli("generate", "--model", missing, "hi", "--max-tokens", 4)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error" in done.stderr and str(missing) in done.stderr and "no such file" in done.stderr


def test_not_a_model_is_a_clean_error(tmp_path, tiny_small):
    junk = tmp_path / "junk.gguf"
    junk.write_text("not a model")
    done = run_cli("generate", "--small", tiny_small, "--large", junk, "hi", "--max-tokens", 4)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "GGUF" in done.stderr


def test_incompatible_pair_is_a_clean_error(tiny_small, tiny_incompatible):
    """Different tokenizers: speculative and fs decode across them; contrastive (one vocabulary) is
    a clean error."""
    for method in ("speculative", "fs"):
        done = run_cli("generate", "--small", tiny_small, "--large", tiny_incompatible, "hi", "--max-tokens", 4,
                       "--method", method)
        assert done.returncode == 0, done.stderr
    done = run_cli("generate", "--small", tiny_small, "--large", tiny_incompatible, "hi", "--max-tokens", 4,
                   "--method", "contrastive")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "differ at token" in done.stderr


def test_pair_method_needs_a_pair(tiny_small):
    done = run_cli("generate", "--model", tiny_small, "--method", "fs", "hi")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "pair" in done.stderr


def test_version():
    done = run_cli("--version")
    assert done.returncode == 0 and fsgen.__version__ in done.stdout


def test_calibrate_prints_the_cost_curve(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    done = run_cli("calibrate", "--small", tiny_small, "--large", tiny_large, "--threads", 1, "--n-ctx", 512)
    one = run_cli("calibrate", "--model", tiny_large, "--threads", 1, "--n-ctx", 512, "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [int(line.split()[0]) for line in lines if line.strip() and line.split()[0].isdigit()]
    assert rows[:4] == [1, 2, 3, 4] and 16 in rows
    assert "a System 1 draft step:" in done.stdout
    assert sum("acceptance" in line and "n-gram" in line and "System 1" in line for line in lines) >= 5
    assert one.returncode == 0, one.stderr
    import json
    figures = json.loads(one.stdout)
    assert figures["draft_seconds"] is None and figures["implied"][0]["model"] is None
    assert len(list((tmp_path / "calibration").glob("*.json"))) == 2


def test_generate_with_ngram_drafts(tiny_small):
    prompt = "hello world hello world hello world hello"
    done = run_cli("generate", "--model", tiny_small, "--raw", prompt, "--draft", "ngram", "--max-tokens", 16,
                   "--threads", 1, "--stats")
    assert done.returncode == 0, done.stderr
    with fsgen.Model(tiny_small, **TINY) as m:
        assert done.stdout.startswith(m.generate(prompt, max_tokens=16).text)
    assert '"drafted_ngram"' in done.stdout


def test_generate_says_on_stderr_while_it_measures_the_costs(tiny_small, tiny_large, tmp_path, monkeypatch):
    """The first call that needs the verify cost curve measures it once: the command line says so
    instead of waiting silently; the next call takes it from the cache and says nothing."""
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    monkeypatch.setenv("FSGEN_CALIBRATE", "1")
    args = ("generate", "--small", tiny_small, "--large", tiny_large, "--threads", 1, "--n-ctx", 512,
            "--max-tokens", 4, "--raw", "--method", "speculative", "hello")
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "measuring the verify cost curve" in first.stderr
    assert "measuring" not in second.stderr
