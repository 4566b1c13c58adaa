"""The sparse recurrent products against the dense GEMMs they replace, on a trained model's operands.

Usage (from the repository root)::

    python bench/bench_sparse_products.py --model har=runs/bf/har-T4-f32.pt --data-dir har=../shared/data/uci-hapt \
        [--model mnist=… --data-dir mnist=…] [--T 4] [--batch 64] [--repeats 3] [--threads 1]
        [--out runs/sparse_products.json]

For each model: one training step (forward, cross-entropy, backward) on its first ``batch``
training sequences captures the layer's h history and ∂L/∂z history (the operands of
``snnhw.model.wavefront._finish_backward``); then each of the three recurrent products of a step
is timed over every diagonal, with the compiled sparse kernel (``fused_cells.sparse_products``)
and with the float32 GEMM the PyTorch path runs: the forward ``zx + h·Whᵀ`` (D − 1 products,
random ``zx``), the backward ``ext + ∂z·Wh`` (D − 1, random ``ext``) and the ``Wh`` gradient
(one product over the whole history). ``--threads`` torch threads (default 1; the sparse kernels
run on as many OpenMP threads); median of ``repeats`` timings after one warm-up. Prints the
densities of h and ∂z, the milliseconds of each product and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from bench_spiking_speed import _per_shape, trained_setup

from snnhw.model import fused_cells, wavefront
from snnhw.train.seed import deterministic


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def operands(path: Path, data_dir: Path, T: int, batch: int) -> dict[str, torch.Tensor]:
    """h ``[D, T·B, H]``, ∂z ``[D, T·B, 4H]`` and ``Wh`` of one training step of the first layer."""
    model, (x, lengths, y), _ = trained_setup(path, data_dir, T, batch, batch)
    captured: dict[str, torch.Tensor] = {}
    finish = wavefront._finish_backward

    def capture(spec: Any, u: Any, wx: Any, wh: torch.Tensor, params: Any, hd: torch.Tensor,
                g_all: torch.Tensor, *args: Any) -> Any:
        if not captured:
            captured.update(h=hd.reshape(hd.shape[0], -1, hd.shape[-1]).clone(), gz=g_all.clone(),
                            wh=wh.detach().contiguous().clone())
        return finish(spec, u, wx, wh, params, hd, g_all, *args)

    wavefront._finish_backward = capture  # type: ignore[assignment]
    try:
        with deterministic():
            torch.nn.functional.cross_entropy(model(x, lengths), y).backward()
    finally:
        wavefront._finish_backward = finish  # type: ignore[assignment]
    return captured


def measure(ops: dict[str, torch.Tensor], repeats: int) -> dict[str, Any]:
    """Milliseconds of each product, sparse and dense, over one step's diagonals."""
    products = fused_cells.sparse_products(torch.float32)
    if products is None:
        raise SystemExit("the compiled kernels are unavailable (no C compiler?)")
    addmm, tmm = products
    h, gz, wh = ops["h"], ops["gz"], ops["wh"]
    D, rows, H = h.shape
    wt = wh.t().contiguous()
    gen = torch.Generator().manual_seed(0)
    zx = torch.randn(rows, 4 * H, generator=gen)
    ext = torch.randn(rows, H, generator=gen)
    z, gh = torch.empty(rows, 4 * H), torch.empty(rows, H)
    h_flat, gz_flat = h[:-1].reshape(-1, H), gz[1:].reshape(-1, 4 * H)
    runs = {
        "forward h·Whᵀ": (lambda: [wavefront._sparse_addmm(addmm, z, zx, h[k], wt) for k in range(D - 1)],
                          lambda: [torch.addmm(zx, h[k], wt, out=z) for k in range(D - 1)]),
        "backward ∂z·Wh": (lambda: [wavefront._sparse_addmm(addmm, gh, ext, gz[k + 1], wh) for k in range(D - 1)],
                           lambda: [torch.addmm(ext, gz[k + 1], wh, out=gh) for k in range(D - 1)]),
        "Wh gradient": (lambda: wavefront._sparse_tmm(tmm, h_flat, gz_flat),
                        lambda: torch.mm(h_flat.t(), gz_flat)),
    }
    out: dict[str, Any] = {"diagonals": D, "rows": rows, "H": H,
                           "h_density": float((h != 0).float().mean()), "dz_density": float((gz != 0).float().mean())}
    for name, (sparse, dense) in runs.items():
        out[name] = {"sparse_ms": _median_ms(sparse, repeats), "dense_ms": _median_ms(dense, repeats)}
    return out


def main(argv: list[str] | None = None) -> int:
    """Time the products of each ``--model``; print a Markdown table, write the JSON (``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="SHAPE=CKPT", required=True,
                        help="trained spiking checkpoint (SHAPE: a name for the table: har, mnist or fsdd)")
    parser.add_argument("--data-dir", action="append", default=[], metavar="SHAPE=DIR", required=True)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (and the sparse kernels')")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    models, dirs = (_per_shape(parser, pairs, option) for pairs, option in
                    ((args.model, "--model"), (args.data_dir, "--data-dir")))
    if set(models) != set(dirs):
        parser.error("--model and --data-dir name the same shapes")
    torch.set_num_threads(args.threads)
    rows = []
    for shape, path in models.items():
        row = {"shape": shape, "model": str(path), "T": args.T, "batch": args.batch,
               **measure(operands(path, dirs[shape], args.T, args.batch), args.repeats)}
        rows.append(row)
    names = ("forward h·Whᵀ", "backward ∂z·Wh", "Wh gradient")
    print("| model | T | h density | ∂z density | " + " | ".join(f"{n}: sparse / GEMM ms (ratio)" for n in names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    for r in rows:
        cells = [f"{r[n]['sparse_ms']:.1f} / {r[n]['dense_ms']:.1f} ({r[n]['sparse_ms'] / r[n]['dense_ms']:.2f})"
                 for n in names]
        print(f"| {Path(r['model']).name} | {r['T']} | {r['h_density']:.3f} | {r['dz_density']:.3f} | "
              + " | ".join(cells) + " |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"benchmark": "sparse_products", "threads": args.threads,
                                        "torch": torch.__version__,
                                        "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
