"""Spiking training speed: the fast wavefront (``SpikingLSTM.forward``) against the previous
implementation (``SpikingLSTM.forward_legacy``), per training step and per epoch.

Usage (from the repository root)::

    nice -n 10 python bench/bench_spiking_speed.py [--shapes har mnist fsdd] [--T 2 4 8]
        [--steps 2] [--rounds 2] [--threads 1] [--batch 64] [--out runs/bench_spiking_speed.json]
        [--profile {old,torch,new,serial,bf16}] [--model SHAPE=CKPT --data-dir SHAPE=DIR ...]

Four implementations: ``old`` (``forward_legacy``, the per-step autograd composition), ``torch``
(the fast wavefront with its neuron updates as PyTorch operators, ``SNNHW_FUSED_CELLS=0``),
``new`` (the fast wavefront with the compiled neuron kernels: the default, same numerics) and
``bf16`` (``new`` with the recurrent products in bfloat16: ``snnhw train --bf16``); with
``--threads`` > 1 a fifth, ``serial`` (``new`` with the compiled kernels held to the calling
thread, as before they used the OpenMP threads), shows what the threaded kernels gain.

For each dataset shape and T: a one-layer spiking LSTM (H = 128, snnhw's default spiking
configuration: direct input, non-spiking g, shifts on, θ and λ trained, float32) on random
inputs of the dataset's shape (no data needed); or, with ``--model SHAPE=CKPT --data-dir
SHAPE=DIR``, a trained spiking checkpoint (its configuration, re-timed to each T) on the first
sequences of its training and validation splits. The two differ in spike density (the fraction
of h that is nonzero, printed): about 0.1 at T = 4 for the random model, 0.20–0.27 for trained
ones, and the compiled sparse products' time follows it. A training step is what
:func:`snnhw.train.trainer.fit` does per batch: forward, cross-entropy, ``zero_grad``,
backward, gradient clipping (5.0), AdamW step, parameter constraints, under the trainer's
deterministic mode. The two implementations run the same step on the same model and batch,
in alternating blocks (``--rounds`` blocks of one warm-up and ``--steps`` timed steps each);
the table gives the median of the timed steps. The validation pass of an epoch (no gradients, batch
``max(batch, 256)``) is timed the same way, once per implementation, and the seconds per epoch
are extrapolated as ``ceil(train/batch)·step + ceil(val/eval_batch)·eval_batch_time`` with the
training and validation split sizes of ``docs/data.md``.

The machine is shared: the 1-minute load average is printed at the start and at the end;
both implementations see the same load because they alternate. OpenMP's waiting policy is
``snnhw train``'s (``OMP_WAIT_POLICY=PASSIVE`` unless set: :func:`snnhw.cli.default_openmp_wait_policy`;
run with ``GOMP_SPINCOUNT=300000`` for libgomp's own default, to compare). On Linux each row also records
every CPU's steal time over its measurement (``/proc/stat``: time the hypervisor ran something
else while the vCPU had work), to tell a slow virtual core from other causes (on the project's
VM it stayed at 0.0–0.3 % also in the slow runs of ``docs/results.md``, "OpenMP's waiting policy").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from snnhw.cli import default_openmp_wait_policy

WAIT_POLICY = default_openmp_wait_policy()  # as `snnhw train` runs (before torch loads libgomp)

import torch  # noqa: E402

from snnhw.model import ModelConfig, build_model, fused_cells  # noqa: E402
from snnhw.model.spiking_lstm import SpikingLSTM  # noqa: E402
from snnhw.model.wavefront import recurrent_bf16  # noqa: E402
from snnhw.train.checkpoint import load_checkpoint  # noqa: E402
from snnhw.train.seed import deterministic  # noqa: E402

SHAPES: dict[str, dict[str, int]] = {
    # docs/data.md, seed 0, val_fraction 0.1: train / val split sizes, N × D, classes; the FSDD
    # (GSC stand-in) head is FC 32 → classes (bench/common.py STAND_INS)
    "har": {"train": 6673, "val": 742, "N": 128, "D": 9, "classes": 6, "head_hidden": 0},
    "mnist": {"train": 7200, "val": 800, "N": 28, "D": 28, "classes": 10, "head_hidden": 0},
    "fsdd": {"train": 2430, "val": 270, "N": 81, "D": 20, "classes": 10, "head_hidden": 32},
}
IMPLEMENTATIONS: dict[str, tuple[str, bool, bool, bool]] = {
    # name: (method, compiled neuron kernels, bfloat16 recurrent products, kernels on one thread)
    "old": ("forward_legacy", False, False, False),
    "torch": ("forward", False, False, False),
    "new": ("forward", True, False, False),
    "serial": ("forward", True, False, True),
    "bf16": ("forward", True, True, False),
}
LABELS = {"old": "old", "torch": "PyTorch ops", "new": "compiled", "serial": "compiled, 1-thread kernels",
          "bf16": "+ bf16"}


@contextlib.contextmanager
def _options(bf16: bool, serial: bool) -> Iterator[None]:
    """bfloat16 products on or off, and the compiled kernels held to one thread or not."""
    threads = fused_cells.kernel_threads
    if serial:
        fused_cells.kernel_threads = lambda: 1  # type: ignore[assignment]
    try:
        with recurrent_bf16(bf16):
            yield
    finally:
        fused_cells.kernel_threads = threads  # type: ignore[assignment]


def _configured(name: str) -> tuple[str, contextlib.AbstractContextManager[None]]:
    """The model method of an implementation, and the context that selects its options."""
    method, compiled, bf16, serial = IMPLEMENTATIONS[name]
    os.environ["SNNHW_FUSED_CELLS"] = "1" if compiled else "0"
    return method, _options(bf16, serial)


def _trainer_step(model: SpikingLSTM, method: str, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor,
                  optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> float:
    """One training step as in ``fit`` (wall seconds)."""
    start = time.perf_counter()
    logits = getattr(model, method)(x, lengths)
    loss = torch.nn.functional.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 5.0)
    optimizer.step()
    for layer in model.layers:
        layer.constrain_parameters()
    float(loss.detach())
    return time.perf_counter() - start


def _eval_batch(model: SpikingLSTM, method: str, x: torch.Tensor, lengths: torch.Tensor) -> float:
    """One validation batch without gradients (wall seconds)."""
    start = time.perf_counter()
    with torch.no_grad():
        getattr(model, method)(x, lengths).argmax(1)
    return time.perf_counter() - start


def _kernel_seconds(step: Any) -> dict[str, float]:
    """Run ``step()`` with every compiled neuron-kernel call timed: seconds and calls of the
    forward and backward kernels (``fused_cells.kernels`` wrapped for the duration)."""
    totals = {"forward": 0.0, "backward": 0.0, "forward_calls": 0, "backward_calls": 0}
    original = fused_cells.kernels

    def timed(kernel: Any, name: str) -> Any:
        def call(*args: Any) -> None:
            start = time.perf_counter()
            kernel(*args)
            totals[name] += time.perf_counter() - start
            totals[f"{name}_calls"] += 1
        return call

    def kernels(dtype: torch.dtype, device: Any = "cpu") -> Any:
        pair = original(dtype, device)
        return None if pair is None else (timed(pair[0], "forward"), timed(pair[1], "backward"))

    fused_cells.kernels = kernels
    try:
        step()
    finally:
        fused_cells.kernels = original
    return totals


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""(x [B, N, D], lengths [B], labels [B])."""


def trained_setup(path: Path, data_dir: Path, T: int, batch: int,
                  eval_batch: int) -> tuple[SpikingLSTM, Batch, Batch]:
    """A trained spiking checkpoint re-timed to T, its first ``batch`` training sequences and
    first ``eval_batch`` validation sequences (read from ``data_dir``)."""
    ckpt = load_checkpoint(path)
    if not ckpt.cfg.spiking:
        raise SystemExit(f"{path} is a hard LSTM: --model takes a spiking checkpoint")
    model = build_model(ckpt.cfg.replace(T=T))
    assert isinstance(model, SpikingLSTM)
    model.load_state_dict(ckpt.state_dict)
    data = ckpt.load_data(data_dir, progress=False)

    def take(split: Any, n: int) -> Batch:
        return (torch.from_numpy(split.x[:n]), torch.from_numpy(split.lengths[:n]).long(),
                torch.from_numpy(split.y[:n]).long())

    return model, take(data.train, batch), take(data.val if len(data.val) else data.train, eval_batch)


def random_setup(shape: str, T: int, batch: int, eval_batch: int, seed: int) -> tuple[SpikingLSTM, Batch, Batch]:
    """A freshly built spiking LSTM of the shape's configuration and random inputs."""
    s = SHAPES[shape]
    torch.manual_seed(seed)
    cfg = ModelConfig(input_size=s["D"], num_classes=s["classes"], hidden_size=128, spiking=True, T=T,
                      head_hidden=s["head_hidden"])
    model = build_model(cfg)
    assert isinstance(model, SpikingLSTM)
    train = (torch.randn(batch, s["N"], s["D"]), torch.full((batch,), s["N"]),
             torch.randint(0, s["classes"], (batch,)))
    val = (torch.randn(eval_batch, s["N"], s["D"]), torch.full((eval_batch,), s["N"]),
           torch.zeros(eval_batch, dtype=torch.long))
    return model, train, val


def h_density(model: SpikingLSTM, x: torch.Tensor, lengths: torch.Tensor) -> float:
    """The fraction of the cells' h (every layer, valid elements only) that is nonzero."""
    with torch.no_grad():
        _, trace = model(x, lengths, record=True)
    valid = (torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).view(x.shape[0], x.shape[1], 1, 1)
    nonzero = sum(float(((layer["h"] != 0) & valid).sum()) for layer in trace)
    cells = sum(float(valid.sum()) * layer["h"].shape[2] * layer["h"].shape[3] for layer in trace)  # [B, N, T, H]
    return nonzero / cells


def measure(shape: str, T: int, batch: int, steps: int, rounds: int = 2, seed: int = 0,
            profile: str | None = None, trained: tuple[Path, Path] | None = None,
            names: tuple[str, ...] = ("old", "torch", "new", "bf16")) -> dict[str, Any]:
    """Median step and validation-batch seconds of the implementations ``names`` for one configuration
    (``trained``: a checkpoint and its data folder, else a random model on random inputs);
    with ``profile`` (an implementation's name), also print torch.profiler's operator table of
    one more training step of that implementation (self CPU time, grouped by input shapes)."""
    s = SHAPES[shape]
    eval_batch = max(batch, 256)
    if trained is not None:
        model, (x, lengths, y), (x_val, lengths_val, _) = trained_setup(*trained, T, batch, eval_batch)
    else:
        model, (x, lengths, y), (x_val, lengths_val, _) = random_setup(shape, T, batch, eval_batch, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    # lr 0: the weights stay put, so every step does the same work for both implementations
    optimizer = torch.optim.AdamW(params, lr=0.0)
    times: dict[str, list[float]] = {name: [] for name in names}
    evals: dict[str, float] = {}
    with deterministic():
        # blocks of consecutive steps (a training run uses one implementation: its allocator
        # state is the steady one), the blocks alternating between the implementations
        for block in range(rounds):
            for name in names:
                method, options = _configured(name)
                with options:
                    _trainer_step(model, method, x, lengths, y, optimizer, params)  # warm-up
                    for _ in range(steps):
                        times[name].append(_trainer_step(model, method, x, lengths, y, optimizer, params))
        for name in names:
            method, options = _configured(name)
            with options:
                _eval_batch(model, method, x_val[:8], lengths_val[:8])  # warm-up
                evals[name] = _eval_batch(model, method, x_val, lengths_val)
        if profile is not None:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as profiler

            method, options = _configured(profile)
            with options, profiler(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                _trainer_step(model, method, x, lengths, y, optimizer, params)
            print(f"{shape} T={T}, {profile}: one training step under torch.profiler")
            print(prof.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40, max_shapes_column_width=60))
            if IMPLEMENTATIONS[profile][1]:
                method, options = _configured(profile)
                with options:
                    kernel_s = _kernel_seconds(lambda: _trainer_step(model, method, x, lengths, y, optimizer, params))
                print(f"{shape} T={T}, {profile}: one more training step, the compiled calls timed around "
                      f"themselves: forward {1e3 * kernel_s['forward']:.1f} ms in {kernel_s['forward_calls']} calls, "
                      f"backward {1e3 * kernel_s['backward']:.1f} ms in {kernel_s['backward_calls']} calls")
    n_steps = math.ceil(s["train"] / batch)
    n_eval = math.ceil(s["val"] / eval_batch)
    row: dict[str, Any] = {"shape": shape, "T": T, "N": s["N"], "D": s["D"], "batch": batch,
                           "train": s["train"], "val": s["val"], "steps_per_epoch": n_steps,
                           "model": str(trained[0]) if trained is not None else "random",
                           "h_density": h_density(model, x, lengths)}
    for name in names:
        step = statistics.median(times[name])
        row[name] = {"step_s": step, "steps_s": times[name], "eval_batch_s": evals[name],
                     "epoch_s": n_steps * step + n_eval * evals[name]}
    for name in names[1:]:
        row[f"speedup_step_{name}"] = row["old"]["step_s"] / row[name]["step_s"]
        row[f"speedup_epoch_{name}"] = row["old"]["epoch_s"] / row[name]["epoch_s"]
    return row


def cpu_jiffies() -> list[tuple[int, int]] | None:
    """Per CPU (steal, total) clock ticks since boot, from ``/proc/stat``; ``None`` off Linux."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    ticks = [[int(v) for v in line.split()[1:]] for line in lines if line.startswith("cpu") and line[3].isdigit()]
    return [(t[7] if len(t) > 7 else 0, sum(t[:8])) for t in ticks]


def steal_percent(before: list[tuple[int, int]] | None, after: list[tuple[int, int]] | None) -> list[float] | None:
    """Each CPU's steal time between two :func:`cpu_jiffies` readings, in % of its elapsed ticks."""
    if before is None or after is None or len(before) != len(after):
        return None
    return [round(100.0 * (s1 - s0) / max(t1 - t0, 1), 1) for (s0, t0), (s1, t1) in zip(before, after)]


def _per_shape(parser: argparse.ArgumentParser, pairs: list[str], option: str) -> dict[str, Path]:
    """``SHAPE=PATH`` arguments → {shape: path} (an unknown shape or a missing file is an error)."""
    out: dict[str, Path] = {}
    for pair in pairs:
        shape, sep, path = pair.partition("=")
        if not sep or shape not in SHAPES:
            parser.error(f"{option} takes SHAPE=PATH with SHAPE one of {', '.join(SHAPES)}, got {pair!r}")
        if not Path(path).exists():
            parser.error(f"{option} {pair}: {path} does not exist")
        out[shape] = Path(path)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a Markdown table, write the JSON (``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--T", type=int, nargs="+", default=[2, 4, 8], help="time steps to test")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per block")
    parser.add_argument("--rounds", type=int, default=2, help="blocks per implementation (alternating)")
    parser.add_argument("--batch", type=int, default=64, help="training batch (the trainer's default runs use 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    parser.add_argument("--profile", choices=list(IMPLEMENTATIONS), default=None,
                        help="also print the operator profile of one training step of this implementation "
                             "(and, where it uses the compiled kernels, their calls timed in one more step)")
    parser.add_argument("--model", action="append", default=[], metavar="SHAPE=CKPT",
                        help="time this trained spiking checkpoint for SHAPE (with --data-dir SHAPE=DIR)")
    parser.add_argument("--data-dir", action="append", default=[], metavar="SHAPE=DIR",
                        help="where the dataset of SHAPE's --model is")
    args = parser.parse_args(argv)
    models, dirs = (_per_shape(parser, pairs, option) for pairs, option in
                    ((args.model, "--model"), (args.data_dir, "--data-dir")))
    if set(models) != set(dirs):
        parser.error("--model and --data-dir name the same shapes")

    torch.set_num_threads(args.threads)
    if fused_cells.library() is None:
        parser.error("the compiled neuron kernels are unavailable (no C compiler?)")
    load_start = os.getloadavg()
    started = time.perf_counter()
    names = tuple(n for n in IMPLEMENTATIONS if n != "serial" or args.threads > 1)
    rows = []
    for shape in args.shapes:
        for T in args.T:
            trained = (models[shape], dirs[shape]) if shape in models else None
            ticks = cpu_jiffies()
            rows.append(measure(shape, T, args.batch, args.steps, args.rounds, profile=args.profile, trained=trained,
                                names=names))
            r = rows[-1]
            r["steal_percent"] = steal_percent(ticks, cpu_jiffies())
            print(f"{shape} T={T}: s/step old {r['old']['step_s']:.3f}, torch {r['torch']['step_s']:.3f}, "
                  f"new {r['new']['step_s']:.3f} ({r['speedup_step_new']:.2f}×), bf16 {r['bf16']['step_s']:.3f} "
                  f"({r['speedup_step_bf16']:.2f}×); steal % per CPU {r['steal_percent']}", file=sys.stderr, flush=True)
    load_end = os.getloadavg()
    print(f"training step = forward + cross-entropy + backward + clip + AdamW, batch {args.batch}, H = 128, "
          f"float32 (bf16: the recurrent products in bfloat16), {args.threads} thread(s), "
          f"OpenMP waits: {WAIT_POLICY}, "
          f"median of {args.rounds}×{args.steps} steps; load average (1/5/15 min) "
          f"{load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f} at the start, "
          f"{load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f} at the end; "
          f"{time.perf_counter() - started:.0f} s in all")
    print()
    labels = [LABELS[n] for n in names]
    print("| shape (N × D, train/val) | model | h density | T | s/step: " + " | ".join(labels) + " | s/epoch: "
          + " | ".join(labels) + " | epoch speed-up: " + " | ".join(labels[1:]) + " | steal % per CPU |")
    print("|---|---|---|---|" + "---|" * (3 * len(names)))
    for r in rows:
        print(f"| {r['shape']} ({r['N']} × {r['D']}, {r['train']}/{r['val']}) | {Path(r['model']).name} | "
              f"{r['h_density']:.3f} | {r['T']} | "
              + " | ".join(f"{r[n]['step_s']:.3f}" for n in names) + " | "
              + " | ".join(f"{r[n]['epoch_s']:.1f}" for n in names) + " | "
              + " | ".join(f"{r[f'speedup_epoch_{n}']:.2f}×" for n in names[1:]) + " | "
              + ("/".join(f"{v:.1f}" for v in r["steal_percent"]) if r["steal_percent"] is not None else "n/a")
              + " |")
    if args.out is not None:
        result = {
            "benchmark": "spiking_speed", "batch": args.batch, "hidden": 128, "layers": 1, "dtype": "float32",
            "threads": args.threads, "omp_wait_policy": WAIT_POLICY, "steps": args.steps, "rounds": args.rounds,
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "torch": torch.__version__, "rows": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
