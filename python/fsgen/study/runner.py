"""Runs the study's generations. The ONLY module of fsgen.study that touches models: everything
here that depends on the core's API is in this file (Pair construction, generate arguments, model
metadata, token texts, which exceptions are recorded)."""
from __future__ import annotations

import datetime
import time
from pathlib import Path

from . import analysis
from .methods import DEFAULT_METHODS, DEFAULT_SHARES, DEFAULT_THRESHOLDS, configs
from .records import (RecordStore, draft_columns, key, model_identity, pieces_from_offsets,
                      trace_columns)
from .scoring import SCORER_VERSION, score_item
from .tasks import Task, load_task

# Generation failures recorded as a result (not retried on resume); anything else propagates.
RECORDED_ERRORS = ("ContextOverflowError", "GenerationError")
# How a pair's oracle mismatches are counted, by how its vocabularies relate (Pair.vocab["kind"]):
# token ids where they are shared; where the tokenizers differ the core compares System 2's new
# token with System 1's text at the same position, as bytes up to the shorter of the two.
MISMATCH_DEFINITIONS = {"shared": "token", "translated": "text"}


def resolve(arg) -> str:
    """A model argument: an existing path as is, else a pulled model's name (fsgen.hub)."""
    from fsgen import hub
    return hub.resolve_model(str(arg))


def pair_id(small, large) -> str:
    return f"{Path(str(small)).stem}+{Path(str(large)).stem}"


def n_params(model):
    """The parameter count from a model's metadata (``model.info``: a dict, an object or a
    method returning either), or None."""
    info = getattr(model, "info", None)
    if callable(info):
        info = info()
    if info is None:
        return None
    v = info.get("n_params") if isinstance(info, dict) else getattr(info, "n_params", None)
    return int(v) if v is not None else None


def _generate(pair, item, cfg, max_tokens):
    """One generation (tests monkeypatch this to count calls)."""
    inp = {"messages": item.messages} if item.messages is not None else {"prompt": item.prompt}
    return pair.generate(**inp, method=cfg["method"], trace=True, max_tokens=max_tokens,
                         temperature=0.0, **cfg["params"])


def vocab_context(pair) -> dict:
    """The vocabulary relation of a loaded pair and the mismatch definition it implies, as every
    record of the pair holds them: ``{"vocab": {"kind", "overlap", "shared_tokens"},
    "mismatch_definition": "token" | "text"}``."""
    vocab = getattr(pair, "vocab", None)
    if not isinstance(vocab, dict):  # a stand-in pair without the attribute: one vocabulary
        return {"vocab": None, "mismatch_definition": "token"}
    vocab = {k: vocab[k] for k in ("kind", "overlap", "shared_tokens") if k in vocab}
    return {"vocab": vocab, "mismatch_definition": MISMATCH_DEFINITIONS.get(vocab.get("kind"), "token")}


def unsupported(pair, cfg):
    """Why the pair cannot run a config (the core's IncompatibleVocabError: contrastive and proxy
    combine the models' scores token by token, which a translated pair cannot), or None. Asked of
    the core's own argument check, so the study needs no list of its own."""
    import fsgen

    validate = getattr(pair, "validate", None)
    if validate is None:
        return None
    try:
        validate(prompt="x", method=cfg["method"], **cfg["params"])
    except fsgen.IncompatibleVocabError as e:
        # The message's first clause: what cannot run and why; the rest names the model files,
        # which records never hold.
        return str(e).split(":", 1)[0].strip() or "IncompatibleVocabError"
    return None


def _pieces(pair, result) -> list:
    tr = result.trace
    if tr is not None and hasattr(tr, "text_offset"):
        return pieces_from_offsets(result.text, tr.text_offset)
    tokens = list(tr.token) if tr is not None else list(result.tokens)
    return [pair.large.detokenize([int(t)]) for t in tokens]


def _record(pair, ctx, item, cfg, max_tokens) -> dict:
    import fsgen

    recorded = tuple(getattr(fsgen, n) for n in RECORDED_ERRORS if hasattr(fsgen, n))
    rec = {**ctx, "config": cfg["config"], "prompt_id": item.id, "method": cfg["method"],
           "params": cfg["params"], "max_tokens": max_tokens}
    # The table this generation prices from (Result.cost_table names it): the study is sequential,
    # so the snapshot taken now is the one the call takes.
    table = getattr(pair, "cost_table", None)
    try:
        res = _generate(pair, item, cfg, max_tokens)
    except recorded as e:
        return {**rec, "error": f"{type(e).__name__}: {e}", "time": _now()}
    trace = trace_columns(res.trace)
    if trace:
        trace["piece"] = _pieces(pair, res)
    sc = score_item(item, res.text)
    return {**rec, "cost_table": table, "text": res.text, "finish_reason": res.finish_reason, "stats": dict(res.stats),
            "score": sc["score"], "score_status": sc["status"], "score_detail": sc["detail"],
            "scorer": SCORER_VERSION, "trace": trace, "drafts": draft_columns(res.trace), "time": _now()}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run(pairs, task, *, small_base=None, limit=None, methods=None, out="study-out",
        thresholds=DEFAULT_THRESHOLDS, shares=DEFAULT_SHARES, max_tokens=512, n_ctx=4096, n_threads=None,
        progress=True, baselines=True, method_params=None, calibration=None) -> dict:
    """Run every method for every pair and prompt (skipping what ``out/records.jsonl`` already
    holds), then analyze. ``pairs``: [(small, large), ...] paths or pulled model names;
    ``small_base``: one base model for every pair or a list aligned with ``pairs`` (enables
    proxy); ``task``: "humaneval", a JSONL path or a tasks.Task; ``thresholds``/``shares``: fs's
    entropy thresholds and budget router shares; ``method_params``: per-method
    overrides of fsgen's defaults (see methods.configs); ``calibration``: a cost table (dict or
    JSON path, as ``fsgen calibrate --save`` writes) pinned for every pair. Each record holds the
    cost table its generation priced from (``cost_table``: id, kind, costs). Returns the tables."""
    import fsgen
    from tqdm.auto import tqdm

    tk = task if isinstance(task, Task) else load_task(task, limit=limit)
    items = tk.items[:limit] if limit is not None else tk.items
    pairs = [(resolve(s), resolve(l)) for s, l in pairs]
    bases = small_base if isinstance(small_base, (list, tuple)) else [small_base] * len(pairs)
    bases = [resolve(b) if b else None for b in bases]
    if methods is None:
        methods = DEFAULT_METHODS + (("proxy",) if all(bases) else ())
    out = Path(out)
    store = RecordStore(out / analysis.RECORDS_FILE)
    plan = [(p, b, configs(methods, thresholds, shares=shares, proxy=bool(b), baselines=baselines,
                           params=method_params)) for p, b in zip(pairs, bases)]
    total = sum(len(items) * len(c) for _, _, c in plan)
    todo = {pair_id(*p): sum((pair_id(*p), c["config"], it.id) not in store
                             for it in items for c in cfgs) for p, _, cfgs in plan}
    bar = tqdm(total=total, initial=total - sum(todo.values()), disable=not progress,
               unit="gen", desc="fsgen study", dynamic_ncols=True)
    try:
        for (small, large), base, cfgs in plan:
            pid = pair_id(small, large)
            if not todo[pid]:
                continue
            pinned = {} if calibration is None else {"calibrate": calibration}
            pair = fsgen.Pair(small, large, small_base=base, n_ctx=n_ctx, n_threads=n_threads, **pinned)
            try:
                ctx = {"pair": pid, "task": tk.name, "small": model_identity(small),
                       "large": model_identity(large),
                       "small_base": model_identity(base) if base else None,
                       "n_params_small": n_params(pair.small),
                       "n_params_large": n_params(pair.large), **vocab_context(pair)}
                # Configs the pair cannot run are recorded once per prompt as skipped (not
                # retried on resume, listed in the report), not as failed generations.
                skip = {c["config"]: unsupported(pair, c) for c in cfgs}
                for item in items:
                    for cfg in cfgs:
                        if (pid, cfg["config"], item.id) in store:
                            continue
                        if skip[cfg["config"]]:
                            store.append({**ctx, "config": cfg["config"], "prompt_id": item.id,
                                          "method": cfg["method"], "params": cfg["params"],
                                          "max_tokens": max_tokens, "skipped": skip[cfg["config"]],
                                          "time": _now()})
                            bar.update(1)
                            continue
                        bar.set_postfix_str(f"{cfg['config']} {item.id}", refresh=False)
                        store.append(_record(pair, ctx, item, cfg, max_tokens))
                        bar.update(1)
            finally:
                close = getattr(pair, "close", None)
                if close:
                    close()
    finally:
        bar.close()
    planned = {(pair_id(*p), c["config"], it.id) for p, _, cfgs in plan for c in cfgs
               for it in items}
    records = [r for r in store.records() if key(r) in planned]
    meta = {"task": tk.name, "max_tokens": max_tokens,
            "methods": list(methods), "thresholds": list(thresholds), "shares": list(shares),
            "method_params": method_params or {}, "calibration": str(calibration) if calibration else None,
            "date": time.strftime("%Y-%m-%d"), "fsgen_version": getattr(fsgen, "__version__", "?")}
    return analysis.analyze(out, records, meta=meta)
