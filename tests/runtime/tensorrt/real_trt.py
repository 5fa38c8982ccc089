"""Import the real TensorRT binding modules without TensorRT's libraries or a GPU.

A binding's ``tensorrt.so`` links against libnvinfer, libnvonnxparser, libnvinfer_plugin (and
libnvparsers on 8.x) only for a handful of factory functions; a tiny C library defining those
symbols, installed under each library's soname, lets the real extension module load. Its classes,
enums, properties and docstring signatures are then the genuine ones of that version; calling a
factory would return NULL, so nothing here ever does (trt_checked.py stands in for the objects).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.runtime.tensorrt.trt_names import REPO

# `nm -D --undefined-only tensorrt.so` of the 8.6.1 ... 11.4 bindings, less libc/libstdc++/Python.
STUB_C = r"""
#include <stddef.h>
void *createInferBuilder_INTERNAL(void *logger, int version) { return NULL; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return NULL; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return NULL; }
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return NULL; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return NULL; }
int getNvOnnxParserVersion(void) { return 0; }
int getInferLibVersion(void) { return 0; }
void *getPluginRegistry(void) { return NULL; }
void *getBuilderPluginRegistry(int capability) { return NULL; }
int initLibNvInferPlugins(void *logger, const char *ns) { return 0; }
/* 8.x only: the UFF and Caffe parsers (C++ names) */
void *_ZN11nvuffparser15createUffParserEv(void) { return NULL; }
void _ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi(void *self, const char *n, const void *d, int t, int l) {}
void *_ZN14nvcaffeparser117createCaffeParserEv(void) { return NULL; }
void _ZN14nvcaffeparser123shutdownProtobufLibraryEv(void) {}
"""
SONAMES = ("libnvinfer", "libnvonnxparser", "libnvinfer_plugin", "libnvparsers")


class StubUnavailable(RuntimeError):
    pass


def build_stub(dest: Path) -> Path:
    """Compile the stub into ``dest`` with every soname TensorRT 8/10/11 bindings ask for."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise StubUnavailable("no C compiler (gcc or cc) on PATH to build the libnvinfer stub")
    dest.mkdir(parents=True, exist_ok=True)
    src = dest / "nvinfer_stub.c"
    src.write_text(STUB_C)
    lib = dest / "libnvinfer_stub.so"
    r = subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise StubUnavailable(f"compiling the libnvinfer stub failed: {r.stderr.strip()}")
    for name in SONAMES:
        for major in (8, 10, 11):
            link = dest / f"{name}.so.{major}"
            link.unlink(missing_ok=True)
            link.symlink_to(lib.name)
    return dest


def package_dir(binding_dir: Path, dest: Path) -> Path:
    """A directory holding ``tensorrt/`` (the binding's __init__.py and tensorrt.so) for PYTHONPATH."""
    pkg = dest / binding_dir.name / "tensorrt"
    pkg.mkdir(parents=True, exist_ok=True)
    for f in ("__init__.py", "tensorrt.so"):
        target = pkg / f
        target.unlink(missing_ok=True)
        target.symlink_to((binding_dir / f).resolve())
    return pkg.parent


def probe(binding_dir: Path, stub_dir: Path, work: Path, source_root: Path = REPO, timeout: float = 300) -> dict:
    """Run the API probe (the api_probe package) against one binding, with our code imported from ``source_root``."""
    root = package_dir(binding_dir, work / "pkgs")
    report = work / f"report-{binding_dir.name}.json"
    report.unlink(missing_ok=True)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(stub_dir), env.get("LD_LIBRARY_PATH", "")) if p)
    # Our code first (a mutated copy in the injected-bug tests), then the tests, then the binding.
    env["PYTHONPATH"] = os.pathsep.join([str(source_root), str(REPO), str(root)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    r = subprocess.run([sys.executable, "-m", "tests.runtime.tensorrt.api_probe", str(report)], cwd=work,
                       env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not report.is_file():
        raise AssertionError(f"the API probe for TensorRT {binding_dir.name} crashed (rc {r.returncode}):\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    data: dict = json.loads(report.read_text())
    data["stderr"] = r.stderr
    return data
