"""Fetch the pinned llama.cpp source tree into third_party/llama.cpp.

The pin is the tree vendored by the llama-cpp-python sdist (llama.cpp commit 0c1e57098).
pip downloads that sdist by package name; we extract only vendor/llama.cpp. The extraction goes
to a temporary folder first and is renamed into place, so an interrupted fetch never leaves a
half tree behind.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
COMMIT = "0c1e57098"


def fetch(dest: pathlib.Path) -> None:
    if (dest / "include" / "llama.h").exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp_name:
        tmp = pathlib.Path(tmp_name)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
               "--no-binary", PACKAGE, "-d", str(tmp), f"{PACKAGE}=={VERSION}"]
        print("fsgen: fetching llama.cpp", COMMIT, "via", " ".join(cmd[2:]), flush=True)
        try:
            subprocess.run(cmd, check=True, stdout=sys.stderr)
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(f"fsgen: could not download {PACKAGE}=={VERSION} with pip ({exc}).\n"
                     "Set FSGEN_LLAMA_CPP_DIR to a llama.cpp source tree to build without it.")
        (archive,) = tmp.glob("*.tar.gz")
        prefix = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
        out = tmp / "tree"
        with tarfile.open(archive) as tar:
            members = []
            for m in tar.getmembers():
                if m.name.startswith(prefix) and not (m.issym() or m.islnk()):
                    m.name = m.name[len(prefix):]
                    if m.name:
                        members.append(m)
            tar.extractall(out, members=members, filter="data")
        # The sdist carries a submodule link (.git file) to a folder it does not ship.
        (out / ".git").unlink(missing_ok=True)
        (out / "FSGEN_PIN").write_text(f"{COMMIT}\n")
        if dest.exists():
            shutil.rmtree(dest)
        out.rename(dest)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dest", type=pathlib.Path)
    fetch(parser.parse_args().dest.resolve())
