"""Rescoring recorded replies with the current scorer, without generating anything again.

Records hold each reply's text, so a corrected scorer can be applied to a finished study::

    from fsgen.study import rescore
    recs = rescore.rescore(rescore.read_records("study-out/records.jsonl"), "humaneval")
"""
from __future__ import annotations

from .records import read_records  # noqa: F401  (re-exported for the example above)
from .scoring import SCORER_VERSION, score_item
from .tasks import Task, load_task


def rescore(records, task, *, progress=None) -> list:
    """New records with ``score``, ``score_status``, ``score_detail`` and ``scorer`` recomputed
    from each record's ``text`` (records without text, i.e. failed generations, are kept as
    they are). ``task``: "humaneval", a JSONL path or a tasks.Task; ``progress``: called with
    (done, total) after each record."""
    tk = task if isinstance(task, Task) else load_task(task)
    items = {it.id: it for it in tk.items}
    out = []
    for i, rec in enumerate(records):
        if "text" in rec and rec.get("prompt_id") in items:
            sc = score_item(items[rec["prompt_id"]], rec["text"])
            rec = {**rec, "score": sc["score"], "score_status": sc["status"],
                   "score_detail": sc["detail"], "scorer": SCORER_VERSION}
        out.append(rec)
        if progress:
            progress(i + 1, len(records))
    return out


def redact_models(records, identities: dict) -> list:
    """Records whose ``small``/``large``/``small_base`` paths are replaced by model identities
    (records.model_identity): ``identities`` maps a path as recorded to its identity; a path not
    in it is reduced to its file name."""
    def ident(v):
        if v is None or isinstance(v, dict):
            return v
        return identities.get(v, {"file": str(v).replace("\\", "/").rsplit("/", 1)[-1]})
    return [{**r, **{k: ident(r.get(k)) for k in ("small", "large", "small_base") if k in r}}
            for r in records]
