"""The compiled kernels of the fast wavefront (optional, with a PyTorch fallback).

Two C files, built into one library:

* ``wavefront_cells.c``: :mod:`snnhw.model.wavefront` runs the elementwise part of a diagonal
  (binary LIF gates, the clip gate, the ternary g and c neurons, the cell state, h; and their
  backward pass) either as ~30 forward and ~70 backward PyTorch operators per diagonal, or as
  one call each into this file, which computes the same values with the same IEEE operations in
  the same order (membranes and spikes bit for bit; the θ/λ gradient sums in double precision,
  in another order) and stores a third of the histories (spikes and post-reset membranes are
  recomputed from the membranes instead of being read back).
* ``sparse_products.c``: the three recurrent products of a training step (``zx + h·Whᵀ``,
  ``ext + ∂z·Wh`` and the ``Wh`` gradient ``Σ ∂zᵀ·h``) skipping the zeros of h (a fifth
  nonzero in trained models) or of ∂z (15–30 % nonzero) instead of dense GEMMs
  (:func:`sparse_products`; the same terms in a fixed order, so values agree with a GEMM to
  rounding).

The products and the backward neuron kernel run on PyTorch's threads (:func:`kernel_threads`):
the library is compiled with OpenMP where PyTorch's parallel backend is OpenMP, and then shares
PyTorch's OpenMP runtime (the ``libgomp.so.1`` PyTorch loaded), so its threads are PyTorch's
pool and do not compete with it for the cores. Each output value is computed by one thread in
a fixed order, so the results do not depend on the number of threads.

The C files are compiled on first use with the system's C compiler (``$CC``, else ``cc``;
a few seconds) into a cache folder (``$SNNHW_CACHE_DIR``, else ``$XDG_CACHE_HOME/snnhw`` or
``~/.cache/snnhw``), keyed by the sources, the flags and the compiler, and loaded with
:mod:`ctypes`. Without a compiler the PyTorch path runs (one warning). ``SNNHW_FUSED_CELLS=0``
switches the compiled kernels off (benchmarks, and tests that compare the two).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

SOURCES: tuple[Path, ...] = (Path(__file__).with_name("wavefront_cells.c"),
                             Path(__file__).with_name("sparse_products.c"))
"""The C sources (shipped with the package), compiled into one library."""

HEADERS: tuple[Path, ...] = (Path(__file__).with_name("fused_common.h"),)
"""The header they share (part of the build's cache key)."""

FLAGS: tuple[str, ...] = ("-O3", "-std=c11", "-ffp-contract=off", "-fno-trapping-math", "-fPIC", "-shared")
"""Compiler flags: no floating-point contraction (an FMA would round differently from PyTorch's
separate multiply and add); no ``-march=native`` (the cache may be shared between machines)."""

NACC = 24
"""Per-diagonal parameter-gradient sums the backward kernel returns (see the C file)."""

_DTYPES: dict[torch.dtype, str] = {torch.float32: "f32", torch.float64: "f64"}
_FORWARD_ARGS = [ctypes.c_int64] * 7 + [ctypes.c_void_p] * 15
_BACKWARD_ARGS = [ctypes.c_int64] * 8 + [ctypes.c_void_p] * 24
_PRODUCT_ARGS = {"sp_addmm": [ctypes.c_int64] * 4 + [ctypes.c_void_p] * 4,
                 "sp_tmm": [ctypes.c_int64] * 4 + [ctypes.c_void_p] * 3}

_library: ctypes.CDLL | None = None
_tried = False


def cache_dir() -> Path:
    """Where compiled kernels are kept."""
    env = os.environ.get("SNNHW_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "snnhw"


def enabled() -> bool:
    """Whether the compiled path may be used (``SNNHW_FUSED_CELLS`` is not ``0``)."""
    return os.environ.get("SNNHW_FUSED_CELLS", "1") != "0"


def _compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


def _build(cc: str) -> Path:
    """Compile the C file (if this source/flags/compiler has not been compiled yet); its path."""
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    texts = [source.read_text() for source in (*SOURCES, *HEADERS)]
    key = hashlib.sha256("\n".join([*texts, " ".join(FLAGS), version, platform.machine(),
                                    str(torch.backends.openmp.is_available())]).encode())
    target = cache_dir() / f"wavefront_cells-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        # with OpenMP where PyTorch's threads are OpenMP's (a compiler without it builds serial
        # products) and one clone per instruction set (a compiler without target_clones: one version)
        openmp = [["-fopenmp"], []] if torch.backends.openmp.is_available() else [[]]
        for extra in ([*omp, *clones] for omp in openmp for clones in ([], ["-DSNNHW_NO_CLONES"])):
            result = subprocess.run([cc, *FLAGS, *extra, "-o", str(out), *map(str, SOURCES)], capture_output=True,
                                    text=True, check=False)
            if result.returncode == 0:
                break
        else:
            raise RuntimeError(f"{cc} failed: {result.stderr.strip()[:500]}")
        os.replace(out, target)  # atomic: concurrent processes may compile the same file
    return target


def library() -> ctypes.CDLL | None:
    """The loaded kernels, compiling them on first use; ``None`` where they are off or unavailable."""
    global _library, _tried
    if not enabled():
        return None
    if not _tried:
        _tried = True
        cc = _compiler()
        try:
            if cc is None:
                raise RuntimeError("no C compiler (cc or $CC) on PATH")
            lib = ctypes.CDLL(str(_build(cc)))
            for suffix in _DTYPES.values():
                getattr(lib, f"wf_forward_{suffix}").argtypes = _FORWARD_ARGS
                getattr(lib, f"wf_forward_{suffix}").restype = None
                getattr(lib, f"wf_backward_{suffix}").argtypes = _BACKWARD_ARGS
                getattr(lib, f"wf_backward_{suffix}").restype = None
                for name, args in _PRODUCT_ARGS.items():
                    getattr(lib, f"{name}_{suffix}").argtypes = args
                    getattr(lib, f"{name}_{suffix}").restype = ctypes.c_int64
            _library = lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            warnings.warn(f"the compiled spiking-neuron kernels are unavailable ({exc}); training uses the "
                          "slower PyTorch path", RuntimeWarning, stacklevel=2)
    return _library


def _pair(dtype: torch.dtype, device: torch.device | str, first: str, second: str) -> tuple[Any, Any] | None:
    """The library's ``first`` and ``second`` functions for ``dtype`` (float32 or float64) on the
    CPU, or ``None`` (another dtype or device, or no library)."""
    suffix = _DTYPES.get(dtype) if torch.device(device).type == "cpu" else None
    lib = library() if suffix is not None else None
    if lib is None:
        return None
    return getattr(lib, f"{first}_{suffix}"), getattr(lib, f"{second}_{suffix}")


def kernels(dtype: torch.dtype, device: torch.device | str = "cpu"
            ) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """(forward, backward) kernels for tensors of ``dtype`` (float32 or float64) on ``device``
    (the CPU only), or ``None`` where the PyTorch operators must run. The backward kernel's first
    argument is its number of threads (:func:`kernel_threads`); see the C file."""
    return _pair(dtype, device, "wf_forward", "wf_backward")


def sparse_products(dtype: torch.dtype, device: torch.device | str = "cpu"
                    ) -> tuple[Callable[..., int], Callable[..., int]] | None:
    """(``sp_addmm``, ``sp_tmm``) of ``sparse_products.c`` for tensors of ``dtype`` (float32 or
    float64) on ``device`` (the CPU only), or ``None`` where the dense GEMMs must run. Both take
    ``(threads, rows, K, W, pointers…)`` (``threads``: :func:`kernel_threads`) and return 0, or
    −1 where their scratch memory could not be allocated; see the C file."""
    return _pair(dtype, device, "sp_addmm", "sp_tmm")


def kernel_threads() -> int:
    """Threads for one call of a sparse product or of the backward kernel: PyTorch's intra-op
    threads (``torch.get_num_threads()``, ``snnhw train --threads``) where they are OpenMP's,
    else 1. The results do not depend on it."""
    return torch.get_num_threads() if torch.backends.openmp.is_available() else 1
