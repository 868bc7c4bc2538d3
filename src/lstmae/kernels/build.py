"""Building and loading fused_gates.cpp, once per build key.

A build is kept in `<torch extensions root>/lstmae/lstmae_fused_gates_<key hash>/` (the root is
$TORCH_EXTENSIONS_DIR, else torch's default, ~/.cache/torch_extensions), beside a record of its
key (BUILD_RECORD). The key holds everything that makes a binary unfit for this process: the
source, the torch version, the Python ABI, the compiler flags and the CPU's instruction sets
(the build is -march=native). Two environments on one machine (another torch or Python) or a
shared home directory on two CPUs thus keep one build each instead of rebuilding over each
other. A build whose record matches is imported directly, without torch's build step, so that
nothing is ever recompiled unannounced; every compile is announced on stderr (logging) with
its reason.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import sysconfig
import warnings
from pathlib import Path

import torch

from . import cpu, policy

NAME = "lstmae_fused_gates"
SOURCE = Path(__file__).with_name("fused_gates.cpp")
BUILD_RECORD = "lstmae_build.json"
# -O3 -march=native: the build is for this CPU (hence the CPU in the key).
# -fopenmp-simd: lets the `omp simd` loops vectorise (exp_inline among them); without it the
# fused gate math gains little over the PyTorch operations.
# -fno-math-errno -fno-trapping-math: the parts of -ffast-math that leave NaN and inf alone.
# No -ffast-math: it lets the compiler assume that no value is NaN or inf (-ffinite-math-only),
# the very values lstmae must carry through to the scores and detect.
COMPILE_FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math")
# -fopenmp makes at::parallel_for run on torch's threads (it links the libgomp torch has loaded);
# without it the row blocks run one after another. Apple's clang has no OpenMP.
THREAD_FLAGS = () if sys.platform == "darwin" else ("-fopenmp",)

_log = logging.getLogger(__name__)


def python_abi() -> str:
    """The tag of the ABI an extension module is built for, e.g. 'cpython-311-x86_64-linux-gnu'."""
    return sysconfig.get_config_var("SOABI") or f"{sys.implementation.cache_tag}-{sys.platform}"


def build_key(source: bytes | None = None) -> dict[str, str]:
    """What a build must match to be loaded here: the source's hash, the torch version, the Python
    ABI, the compiler flags and the CPU's instruction-set tag."""
    source = SOURCE.read_bytes() if source is None else source
    return {"source": hashlib.sha256(source).hexdigest()[:16],
            "torch": torch.__version__,
            "python": python_abi(),
            "flags": " ".join(COMPILE_FLAGS + THREAD_FLAGS),
            "cpu": cpu.instruction_set_tag()}


def build_name(key: dict[str, str]) -> str:
    """The extension's module name for this key: NAME and a hash of the key."""
    return f"{NAME}_{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]}"


def builds_root() -> Path:
    """Where the builds of every key are kept: <torch extensions root>/lstmae."""
    from torch.utils import cpp_extension

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root()) / "lstmae"


_KEY_NAMES = {"source": "the source changed", "torch": "torch", "python": "Python", "flags": "compiler flags",
              "cpu": "another CPU (instruction sets)"}


def build_reason(key: dict[str, str], others: list[dict[str, str]]) -> str:
    """Why this key needs a build, told against the nearest of the other builds' keys."""
    if not others:
        return "no earlier build here"
    nearest = min(others, key=lambda other: sum(other.get(field) != key[field] for field in key))
    changes = []
    for field, value in key.items():
        if nearest.get(field) == value:
            continue
        if field in ("torch", "python", "flags"):
            changes.append(f"{_KEY_NAMES[field]} {value} (the nearest build has {nearest.get(field)})")
        else:
            changes.append(_KEY_NAMES[field])
    return "no build for this key: " + "; ".join(changes)


def _recorded_keys(root: Path, skip: Path) -> list[dict[str, str]]:
    keys = []
    for record in root.glob(f"{NAME}_*/{BUILD_RECORD}"):
        if record.parent == skip:
            continue
        try:
            keys.append(json.loads(record.read_text())["key"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return keys


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def _import_built(name: str, library: Path):
    """Import the extension module `name` from its shared library."""
    spec = importlib.util.spec_from_file_location(name, library,
                                                  loader=importlib.machinery.ExtensionFileLoader(name, str(library)))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(name: str, directory: Path):
    from torch.utils import cpp_extension

    return cpp_extension.load(name, [str(SOURCE)], extra_cflags=list(COMPILE_FLAGS + THREAD_FLAGS),
                              extra_ldflags=list(THREAD_FLAGS), build_directory=str(directory), verbose=False)


@functools.cache
def compiled():
    """The compiled module of fused_gates.cpp (layer_forward, layer_backward, tiles_pay), or None
    where LSTMAE_FUSED_KERNELS=0 or it cannot be built (no C++ compiler). The answer is cached per
    process (compiled.cache_clear() asks again)."""
    if not policy.kernels_enabled():
        return None
    key = build_key()
    name = build_name(key)
    directory = builds_root() / name
    record = directory / BUILD_RECORD
    reason = None
    try:
        built = json.loads(record.read_text())
        if built.get("key") == key:
            return _import_built(name, directory / built["library"])
        reason = "its build record names another key"
    except FileNotFoundError:
        pass
    except Exception as error:  # a record or library left broken (an interrupted build, a disk error)
        reason = f"the build there could not be loaded: {_first_line(error)}"
    if reason is None:
        reason = build_reason(key, _recorded_keys(directory.parent, skip=directory))
    # logging, not print: the CLI is the only place that prints; this shows on stderr unless configured
    _log.warning("lstmae: compiling the fused LSTM kernels into %s (%s); this takes a minute or so, once per key",
                 directory, reason)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        module = _compile(name, directory)
    except Exception as error:  # no compiler, no headers: the PyTorch operations do the same math
        warnings.warn(f"lstmae: could not compile the fused LSTM kernels ({_first_line(error)}); "
                      "using PyTorch operations instead (slower)", stacklevel=2)
        return None
    try:  # written last, whole or not at all: a record stands for a complete build
        partial = record.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"key": key, "library": Path(module.__file__).name}, indent=1) + "\n")
        os.replace(partial, record)
    except OSError as error:
        _log.warning("lstmae: could not record the fused LSTM kernels' build in %s (%s); it will be rebuilt next time",
                     record, error)
    return module
