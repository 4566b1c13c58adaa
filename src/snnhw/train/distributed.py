"""Data-parallel training over several processes: devices, ranks, shards, process groups, spawning.

:func:`snnhw.train.trainer.fit` trains in one process, or as one rank of a
``torch.distributed`` process group wrapped in ``DistributedDataParallel`` (DDP). A group
comes from one of two launchers:

* :func:`spawn` (``fit(..., nproc=K)``, ``snnhw train --nproc K``): K worker processes on this
  machine (``torch.multiprocessing`` spawn), rendezvous through a file in a private temporary
  directory (no TCP port to pick), backend gloo on a CPU and nccl on CUDA;
* ``torchrun`` (one process per rank, on one or several machines): :func:`session` sees its
  environment variables (:data:`TORCHRUN_VARIABLES`) and initialises the group from them
  (``init_method="env://"``).

Every rank holds the whole dataset and draws the same random numbers as a single process (the
global shuffle, the augmentation and the rate encoding of the whole global batch); it then
works on its contiguous share of the batch (:func:`shard`). Outside a group every helper
answers as a single process would (rank 0 of 1), so the training loop has one code path.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from snnhw.errors import UserError

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""Device names :func:`resolve_device` accepts (``auto``: CUDA when available, else the CPU)."""

TORCHRUN_VARIABLES: tuple[str, ...] = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")
"""Environment variables that together mean the process was launched by ``torchrun``."""

_RESULT_FILE = "result.pt"
_STORE_FILE = "store"


def resolve_device(name: str | torch.device, local_rank: int | None = None) -> torch.device:
    """The torch device for ``name`` (one of :data:`DEVICES`, or a ``torch.device``).

    ``auto`` is CUDA when ``torch.cuda.is_available()``, else the CPU; on CUDA the process with
    local rank ``local_rank`` (its index on this machine; default ``$LOCAL_RANK``, else 0) gets
    GPU ``local_rank``. Asking for CUDA where there is none is a :class:`UserError`.
    """
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if isinstance(name, torch.device):
        if name.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"device {name} requested, but CUDA is not available here (torch {torch.__version__})")
        return name
    if name not in DEVICES:
        raise UserError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"device cuda requested, but CUDA is not available here (torch {torch.__version__}); "
                        "use --device cpu or auto")
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"process {local_rank} of this machine needs GPU {local_rank}, but only "
                        f"{torch.cuda.device_count()} GPU(s) are visible: use at most one process per GPU")
    return torch.device("cuda", local_rank)


def launched_by_torchrun() -> bool:
    """True when the environment holds every one of :data:`TORCHRUN_VARIABLES`."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def active() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the group (0 outside one)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes in the group (1 outside one)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on rank 0, the process that logs and writes files (always true outside a group)."""
    return rank() == 0


def local_world_size() -> int:
    """Processes of the group on this machine (``LOCAL_WORLD_SIZE``; else the world size)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_process() -> int:
    """Default torch threads of one rank: the usable cores shared by this machine's ranks, ≥ 1."""
    return max(1, usable_cores() // local_world_size())


def check_nproc(nproc: int) -> None:
    """Refuse a process count that cannot work here (UserError): < 1, or > 1 inside torchrun."""
    if nproc < 1:
        raise UserError(f"--nproc must be ≥ 1, got {nproc}")
    if nproc > 1 and (launched_by_torchrun() or active()):
        raise UserError(f"--nproc {nproc} under torchrun (or inside a process group): use one or the other "
                        "(torchrun starts the processes itself; leave --nproc at 1)")


def shard(count: int, rank_: int | None = None, world: int | None = None) -> slice:
    """Rows of a global batch of ``count`` rows that rank ``rank_`` of ``world`` processes.

    Contiguous, in rank order, sizes differing by at most one (the first ``count % world`` ranks
    get one more); empty when ``count < world`` and the rank is beyond the rows. Defaults: this
    process's rank and world size.
    """
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    base, extra = divmod(count, w)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


def all_sum(values: Sequence[float]) -> list[float]:
    """The element-wise sum of ``values`` over all ranks (the values themselves outside a group).

    Summed in float64, so integer counts below 2**53 stay exact. Collective: every rank calls it.
    """
    if not active():
        return list(values)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    total = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def main_decides(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (a decision such as "stop now" that rests on a clock).

    Collective: every rank calls it. Outside a group, ``flag`` itself.
    """
    if not active():
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in ``DistributedDataParallel`` inside a group; ``module`` itself outside one.

    DDP averages the gradients over the ranks during ``backward()``. ``find_unused_parameters``
    stays off: every trainable parameter of the snnhw models gets a gradient in every step
    (``tests/train/test_distributed.py`` checks the model variants); a rank with no rows in a
    batch runs one row with weight 0 so that it still takes part in the reduction.
    """
    if not active():
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def backend_for(device: torch.device) -> str:
    """The collective backend for ``device``: nccl on CUDA, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextmanager
def process_group(backend: str, init_method: str, rank_: int | None = None,
                  world: int | None = None) -> Iterator[None]:
    """An initialised process group for the block, destroyed afterwards.

    ``rank_`` and ``world`` are given with a ``file://`` rendezvous and taken from the
    environment with ``env://``.
    """
    options: dict[str, int] = {} if rank_ is None else {"rank": rank_, "world_size": world or 1}
    dist.init_process_group(backend, init_method=init_method, **options)
    # every rank has finished connecting before any may leave: a rank whose work is done at once
    # would otherwise destroy the group while another still connects (gloo: "Connection closed
    # by peer" in init_process_group, which hid that rank's own error)
    dist.barrier()
    try:
        yield
    except BaseException:
        dist.destroy_process_group()  # no barrier: a peer may never reach it
        raise
    # every rank has finished its last collective before any tears its group down (gloo: a rank
    # whose peer destroyed the group under it could abort in teardown, "terminate called without
    # an active exception")
    dist.barrier()
    dist.destroy_process_group()


@contextmanager
def session(device_name: str | torch.device) -> Iterator[torch.device]:
    """The block's device; under torchrun also this rank's process group (from the environment).

    Launched by torchrun (and not yet in a group), the group is initialised with ``env://`` on
    the backend of the device (GPU ``LOCAL_RANK`` on CUDA) and destroyed on exit. Otherwise the
    block runs as a single process on ``resolve_device(device_name)``.
    """
    if not launched_by_torchrun() or active():
        yield resolve_device(device_name)
        return
    device = resolve_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    with process_group(backend_for(device), "env://"):
        yield device


def spawn(fn: Callable[..., Any], nproc: int, args: tuple[Any, ...], *, device_type: str) -> Any:
    """Run ``fn(device, *args)`` as rank r of ``nproc`` spawned processes; return rank 0's value.

    ``fn`` must be a module-level function and ``args`` picklable; they reach the workers by
    value (pickled bytes), never as shared memory, so a worker's in-place updates stay its own.
    Each worker sets ``LOCAL_RANK`` / ``LOCAL_WORLD_SIZE``, takes device ``device_type``
    (``"cpu"``, or ``"cuda"``: GPU r) and joins a group (gloo or nccl) that rendezvous through a
    file in a private temporary directory. Rank 0's return value must be tensors and plain data
    (it comes back through ``torch.save`` and ``torch.load(weights_only=True)``). A
    :class:`UserError` in a worker is raised here with its one-line message; other failures
    propagate as ``torch.multiprocessing`` exceptions.
    """
    check_nproc(nproc)
    if device_type == "cuda":
        resolve_device("cuda", local_rank=nproc - 1)  # one GPU per process
    payload = pickle.dumps((fn, args))
    with tempfile.TemporaryDirectory(prefix="snnhw-spawn-") as tmp:
        try:
            mp.spawn(_worker, args=(nproc, tmp, device_type, payload), nprocs=nproc, join=True)
        except (mp.ProcessRaisedException, mp.ProcessExitedException):
            messages = sorted(Path(tmp).glob("error-*.txt"))
            if messages:
                raise UserError(messages[0].read_text().strip()) from None
            raise
        return torch.load(Path(tmp) / _RESULT_FILE, weights_only=True)


def _worker(index: int, nproc: int, tmp: str, device_type: str, payload: bytes) -> None:
    """Body of spawned process ``index``: join the group, run the function, hand back rank 0's value."""
    os.environ["LOCAL_RANK"] = str(index)
    os.environ["LOCAL_WORLD_SIZE"] = str(nproc)
    try:
        device = resolve_device(device_type, local_rank=index)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        fn, args = pickle.loads(payload)
        with process_group(backend_for(device), f"file://{Path(tmp) / _STORE_FILE}", index, nproc):
            value = fn(device, *args)
    except UserError as exc:
        (Path(tmp) / f"error-{index}.txt").write_text(f"{exc}\n")
        raise
    if index == 0:
        torch.save(value, Path(tmp) / _RESULT_FILE)
