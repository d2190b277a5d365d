"""Helpers for the reliability tests: damaged GGUF files, and loading risky files in a child
process so that a crash (llama.cpp aborting) fails a test instead of killing pytest.

Layout of a GGUF file (v3, little endian), which `layout` maps to byte offsets:
    magic "GGUF" | version u32 | n_tensors u64 | n_kv u64
    n_kv x (key: u64 length + bytes | type u32 | value)         value: scalar, string, or
                                                                 array (elem type u32 | count u64 | items)
    n_tensors x (name: u64 length + bytes | n_dims u32 | n_dims x u64 | type u32 | offset u64)
    padding to general.alignment (32) | tensor data
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

import gguf

# GGUF value types -> struct format of a scalar (STRING = 8, ARRAY = 9 handled apart).
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


@dataclass
class KV:
    key: str
    key_offset: int        # offset of the key's u64 length
    type_offset: int       # offset of the u32 value type
    value_offset: int      # offset of the value (a string's u64 length; an array's element type)
    type: int
    end: int               # offset just past the value
    elem_type: Optional[int] = None
    count_offset: Optional[int] = None  # arrays: offset of the u64 element count


@dataclass
class TensorInfo:
    name: str
    name_offset: int
    n_dims_offset: int
    dims_offsets: list
    dims: list
    type_offset: int
    type: int
    offset_offset: int
    offset: int
    end: int


@dataclass
class Layout:
    size: int
    version: int
    n_tensors: int
    n_kv: int
    kvs: list = field(default_factory=list)
    tensors: list = field(default_factory=list)
    infos_end: int = 0     # end of the tensor infos (before padding)
    data_offset: int = 0   # start of the tensor data

    def kv(self, key: str) -> KV:
        return next(k for k in self.kvs if k.key == key)

    def tensor(self, name: str) -> TensorInfo:
        return next(t for t in self.tensors if t.name == name)


def layout(path) -> Layout:
    """Byte offsets of every header field, metadata entry and tensor info of a valid GGUF file."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        value = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def string():
        n = take("Q")
        nonlocal pos
        text = data[pos:pos + n].decode("utf-8")
        pos += n
        return text

    def skip_value(vtype):
        nonlocal pos
        if vtype == STRING:
            n = take("Q")  # not `pos += take(...)`: that reads pos before take() moves it
            pos += n
        else:
            pos += struct.calcsize(_SCALAR[vtype])

    assert data[:4] == b"GGUF"
    pos = 4
    out = Layout(size=len(data), version=take("I"), n_tensors=take("Q"), n_kv=take("Q"))
    alignment = 32
    for _ in range(out.n_kv):
        key_offset = pos
        key = string()
        type_offset = pos
        vtype = take("I")
        value_offset = pos
        kv = KV(key, key_offset, type_offset, value_offset, vtype, 0)
        if vtype == ARRAY:
            kv.elem_type = take("I")
            kv.count_offset = pos
            for _ in range(take("Q")):
                skip_value(kv.elem_type)
        else:
            if key == "general.alignment":
                alignment = struct.unpack_from("<I", data, pos)[0]
            skip_value(vtype)
        kv.end = pos
        out.kvs.append(kv)
    for _ in range(out.n_tensors):
        name_offset = pos
        name = string()
        n_dims_offset = pos
        n_dims = take("I")
        dims_offsets, dims = [], []
        for _ in range(n_dims):
            dims_offsets.append(pos)
            dims.append(take("Q"))
        type_offset = pos
        ttype = take("I")
        offset_offset = pos
        offset = take("Q")
        out.tensors.append(TensorInfo(name, name_offset, n_dims_offset, dims_offsets, dims, type_offset, ttype,
                                      offset_offset, offset, pos))
    out.infos_end = pos
    out.data_offset = (pos + alignment - 1) // alignment * alignment
    return out


def patched(src, dst, patches: dict) -> Path:
    """Copy src to dst with bytes replaced: {offset: bytes}. Returns dst."""
    data = bytearray(Path(src).read_bytes())
    for offset, value in patches.items():
        data[offset:offset + len(value)] = value
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def truncated(src, dst, length: int) -> Path:
    Path(dst).write_bytes(Path(src).read_bytes()[:length])
    return Path(dst)


def u32(v: int) -> bytes:
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# ---- rewriting metadata with the gguf package (valid GGUF syntax, wrong content) ----

def _field_value(f):
    """(value, type, sub_type) of a GGUFReader field."""
    vtype = f.types[0]
    if vtype == gguf.GGUFValueType.ARRAY:
        sub = f.types[-1]
        if sub == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data], vtype, sub
        return [f.parts[i].tolist()[0] for i in f.data], vtype, sub
    if vtype == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8"), vtype, None
    return f.parts[f.data[0]].tolist()[0], vtype, None


_KEEP_OUT = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture"}


def rewritten(src, dst, *, set_kv: Optional[dict] = None, drop_kv=(), arch: Optional[str] = None,
              drop_tensors=(), tensor_arrays: Optional[dict] = None) -> Path:
    """Copy a GGUF file with metadata changed.

    set_kv: {key: (value, GGUFValueType[, sub_type for arrays])}; drop_kv: keys left out;
    arch: another general.architecture; drop_tensors: names left out; tensor_arrays: {name:
    numpy array} replacing a tensor (any shape/dtype).
    """
    reader = gguf.GGUFReader(src)
    set_kv = dict(set_kv or {})
    old_arch = _field_value(reader.fields["general.architecture"])[0]
    writer = gguf.GGUFWriter(dst, arch or old_arch)
    for key, f in reader.fields.items():
        if arch and key.startswith(old_arch + "."):
            key = arch + key[len(old_arch):]
        if key in _KEEP_OUT or key in drop_kv or key in set_kv:
            continue
        value, vtype, sub = _field_value(f)
        writer.add_key_value(key, value, vtype, sub_type=sub)
    for key, spec in set_kv.items():
        value, vtype = spec[0], spec[1]
        sub = spec[2] if len(spec) > 2 else None
        writer.add_key_value(key, value, vtype, sub_type=sub)
    for t in reader.tensors:
        if t.name in drop_tensors:
            continue
        if tensor_arrays and t.name in tensor_arrays:
            writer.add_tensor(t.name, np.ascontiguousarray(tensor_arrays[t.name]))
            continue
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            writer.add_tensor(t.name, np.asarray(t.data).reshape(tuple(reversed([int(d) for d in t.shape]))))
        else:
            writer.add_tensor(t.name, np.asarray(t.data), raw_shape=tuple(reversed([int(d) for d in t.shape])),
                              raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(dst)


# ---- loading in a child process ----

_CHILD = textwrap.dedent(r"""
    import json, sys
    import fsgen
    cases = json.loads(sys.stdin.read())
    for case in cases:
        print(json.dumps({"start": case["id"]}), flush=True)
        outcome = {"id": case["id"]}
        try:
            model = fsgen.Model(case["path"], n_ctx=case.get("n_ctx", 128), n_threads=1)
            try:
                if case.get("generate"):
                    model.generate(case["generate"], max_tokens=4)
                if case.get("messages"):
                    model.generate(messages=case["messages"], max_tokens=4)
                outcome["loaded"] = True
            finally:
                model.close()
        except BaseException as exc:
            outcome["error"] = type(exc).__name__
            outcome["message"] = str(exc)
            outcome["fsgen_error"] = isinstance(exc, fsgen.FsgenError)
        print(json.dumps(outcome), flush=True)
    print(json.dumps({"done": True}), flush=True)
""")


class ChildCrash(AssertionError):
    pass


def _run_child(cases: list, timeout: float):
    """Returns (outcomes, crashed_case_id or None, description of the crash)."""
    from processes import child_env  # imports fsgen, which this module leaves to the children
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(cases), capture_output=True,
                              text=True, timeout=timeout, env=child_env())
        stdout, stderr, status = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        status = f"killed after hanging {timeout} s"
    outcomes, current, done = {}, None, False
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "start" in record:
            current = record["start"]
        elif "done" in record:
            done = True
        else:
            outcomes[record["id"]] = record
            current = None
    if status == 0 and done:
        return outcomes, None, ""
    tail = "\n".join(line for line in stderr.splitlines()[-30:])
    if current is None:  # died before the first case: the child itself is broken
        raise ChildCrash(f"the child process failed before loading anything (exit status {status}):\n{tail}")
    return outcomes, current, f"exit status {status}; stderr tail:\n{tail}"


def load_in_child(cases: list, timeout: float = 120.0) -> dict:
    """Load each case {"id", "path", optional "generate": prompt, "messages", "n_ctx"} in one
    child Python process; returns {id: outcome}. An outcome has "loaded": True, or "error" (the
    exception's class name), "message" and "fsgen_error". Raises ChildCrash naming the case
    being loaded if the child dies (signal, abort) or hangs."""
    outcomes, crashed, why = _run_child(cases, timeout)
    if crashed is not None:
        raise ChildCrash(f"the child process died while loading case {crashed!r} ({why})")
    return outcomes


def load_all_in_children(cases: list, timeout: float = 120.0) -> dict:
    """Like load_in_child, but a crash does not stop the batch: the crashed case's outcome is
    {"crash": description} and a new child goes on with the cases after it."""
    outcomes, remaining = {}, list(cases)
    while remaining:
        got, crashed, why = _run_child(remaining, timeout)
        outcomes.update(got)
        if crashed is None:
            break
        outcomes[crashed] = {"id": crashed, "crash": why}
        index = next(i for i, c in enumerate(remaining) if c["id"] == crashed)
        remaining = remaining[index + 1:]
    return outcomes
