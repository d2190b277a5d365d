"""fsgen.study: the FS-GEN study as a tool (collaboration frequency, where and why System 2 is
needed, the scaling law, and the quality/speed trade-off) on any GGUF pairs.

    tables = fsgen.study.run([("small.gguf", "large.gguf")], "humaneval", limit=40)
    tables = fsgen.study.analyze("study-out")   # redo tables, plots and report from the records
    from fsgen.study import rescore    # rescore recorded replies with the current scorer
    records = rescore.rescore(rescore.read_records("study-out/records.jsonl"), "humaneval")

Submodules load on first use (scipy and matplotlib are slow to import).
"""
import importlib

_EXPORTS = {"run": "runner", "analyze": "analysis", "configs": "methods", "load_task": "tasks"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
