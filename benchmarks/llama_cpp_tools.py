"""llama.cpp's own tools as anchors: built once from the same pinned source with the same CPU flags
as fsgen (native minus AMX) into benchmarks/out/llama-build, and run on the same prompts.

- `llama-speculative-simple`: a draft model (`draft-simple`), or n-gram drafts from the context
  (`ngram-simple`, `ngram-mod`: llama.cpp's spec types, no draft model);
- `llama-lookup`: prompt-lookup decoding with n-gram caches;
- `llama-server` (serve_bench.py), built with `-DLLAMA_USE_PREBUILT_UI=OFF` (its default downloads
  a web UI).
Each prints "decoded N tokens in T seconds, speed: S t/s" for its generation phase.
"""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / "benchmarks" / "out" / "llama-build"
TOOLS = ("llama-speculative-simple", "llama-lookup", "llama-server")


def ggml_flags_of_fsgen_build() -> list[str]:
    """The CPU flags fsgen's build chose (native minus AMX), so both engines run the same kernels."""
    for cache in (ROOT / "build" / "wheel" / "CMakeCache.txt", ROOT / "build" / "dev" / "CMakeCache.txt"):
        if cache.exists():
            flags = re.findall(r"^(GGML_(?:NATIVE|AVX\w*|FMA|F16C|BMI2|SSE42|AMX\w*)):BOOL=(\w+)$",
                               cache.read_text(), re.M)
            return [f"-D{k}={v}" for k, v in flags]
    return ["-DGGML_NATIVE=OFF"]


def build(tool: str, threads: int) -> pathlib.Path | None:
    """The tool's executable, built on first use (several minutes); None without llama.cpp's source."""
    exe = BUILD / "bin" / tool
    if exe.exists():
        return exe
    src = ROOT / "third_party" / "llama.cpp"
    if not (src / "include" / "llama.h").exists():
        print(f"no third_party/llama.cpp (build fsgen first); skipping {tool}", file=sys.stderr)
        return None
    print(f"building {tool} from {src} (once; several minutes) ...", file=sys.stderr)
    subprocess.run(["cmake", "-S", str(src), "-B", str(BUILD), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_BUILD_EXAMPLES=ON", "-DLLAMA_BUILD_COMMON=ON", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_APP=OFF",
                    "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_OPENSSL=OFF",
                    "-DLLAMA_CURL=OFF", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_RPC=OFF", *ggml_flags_of_fsgen_build()],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(BUILD), "--target", tool, "-j", str(threads)],
                   check=True, stdout=subprocess.DEVNULL)
    return exe


def run(exe: pathlib.Path, args: list[str]) -> dict:
    """Runs a generating tool; tokens/s of its generation phase, end to end, and its acceptance."""
    start = time.perf_counter()
    out = subprocess.run([str(exe), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    log = out.stdout + out.stderr
    decoded = re.search(r"decoded\s+(\d+) tokens in\s+([\d.]+) seconds, speed:\s+([\d.]+) t/s", log)
    accept = re.search(r"accept\s+=\s+([\d.]+)%", log)
    if not decoded:
        raise RuntimeError(f"{exe.name} failed:\n" + log[-2000:])
    n = int(decoded.group(1))
    return {"tps": float(decoded.group(3)), "e2e": n / wall, "n": n,
            "share": float(accept.group(1)) / 100 if accept else None}


def common_args(large: str, prompt: str, max_tokens: int, threads: int, n_ctx: int) -> list[str]:
    return ["-m", large, "-p", prompt, "-n", str(max_tokens), "-t", str(threads), "-c", str(n_ctx),
            "--temp", "0", "--top-k", "1", "-b", "512", "-ub", "512", "-ngl", "0"]


def anchors(small: str, large: str, max_tokens: int, threads: int, n_ctx: int, draft: int,
            ngram: bool = True, model_draft: bool = True) -> dict:
    """name -> (executable, function of the prompt giving its argument list), for the tools built."""
    found = {}
    spec = build("llama-speculative-simple", threads) if model_draft or ngram else None
    if spec and model_draft:
        found[f"llama-speculative-simple (draft {draft})"] = (spec, lambda p: common_args(
            large, p, max_tokens, threads, n_ctx) + ["-md", small, "-td", str(threads), "-ngld", "0",
                                                      "--spec-type", "draft-simple", "--spec-draft-n-max", str(draft),
                                                      "--spec-draft-n-min", "0"])
    if spec and ngram:
        for kind in ("ngram-simple", "ngram-mod"):
            found[f"llama.cpp {kind}"] = (spec, lambda p, kind=kind: common_args(
                large, p, max_tokens, threads, n_ctx) + ["--spec-type", kind])
    lookup = build("llama-lookup", threads) if ngram else None
    if lookup:
        found["llama-lookup"] = (lookup, lambda p: common_args(large, p, max_tokens, threads, n_ctx) +
                                 ["--spec-draft-n-max", "8"])
    return found
