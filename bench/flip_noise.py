"""How far a float spiking model's test accuracy moves under perturbations far smaller than quantization.

    python bench/flip_noise.py --model m.pt [--frozen m.snnhw] [--data-dir DIR] \
        [--scale 0.001 0.01] [--draws 8] [--seed 0] [--json out.json]

A spiking LSTM's decision is a discontinuous function of its parameters: a threshold crossing
that flips at one element changes the recurrent spikes of every later element. So on windows
decided by a small margin, a rounding far below the integer model's own can change the class,
and an integer model's accuracy can differ from its float model's by as much as any other
perturbation of the same model. This bench measures that spread for one float checkpoint
(direct input): each draw multiplies every weight, bias, head parameter, threshold θ and leak λ
elementwise by ``1 + ε·N(0, 1)`` (independent draws, ``--seed``; the model's constraints applied
after), evaluates the test split and counts the windows whose class differs from the
unperturbed model's. For comparison it prints the relative RMS change the quantizer's snap makes
to the same parameters (:func:`snnhw.quant.quantizer.snap_spiking`, on the grid recorded in
``--frozen``: ``quant_gap.grid_of``) and, with ``--frozen``, the integer (golden) model's
accuracy and the windows on which its class differs from the float model's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnhw.quant.frozen_io import load_frozen
from snnhw.quant.golden import run_spiking
from snnhw.quant.quantizer import quantize_input
from snnhw.train.checkpoint import load_checkpoint
from snnhw.train.seed import set_threads
from snnhw.train.trainer import apply_constraints, evaluate

from quant_gap import GROUPS, grid_of

PERTURBED = GROUPS["W+θ+λ"]
"""Parameter names (substrings of ``state_dict`` keys) a draw perturbs: the groups the quantizer rounds."""


def perturbed_keys(model: nn.Module) -> list[str]:
    """The floating-point ``state_dict`` keys a draw perturbs."""
    return [k for k, v in model.state_dict().items() if v.is_floating_point() and any(p in k for p in PERTURBED)]


def jitter(model: nn.Module, keys: list[str], scale: float, gen: torch.Generator) -> None:
    """Multiply each listed parameter elementwise by ``1 + scale·N(0, 1)``, then apply the
    model's own constraints (θ > 0, λ in its range)."""
    state = model.state_dict()
    with torch.no_grad():
        for key in keys:
            value = state[key]
            noise = torch.randn(value.shape, generator=gen, dtype=torch.float64)
            value.mul_((1.0 + scale * noise).to(value.dtype))
    apply_constraints(model)


def snap_rms(model: nn.Module, frozen: Any) -> dict[str, float]:
    """Relative RMS change ``‖snap(p) − p‖ / ‖p‖`` the quantizer makes per parameter group."""
    snapped = grid_of(frozen).snapped_values(model)
    state = model.state_dict()
    groups: dict[str, list[float]] = {}
    for key, value in snapped.items():
        group = next((p.rstrip(".") for p in PERTURBED if p in key), None)
        if group is None:
            continue
        p = state[key].double()
        err = value.double() - p
        sums = groups.setdefault(group, [0.0, 0.0])
        sums[0] += float((err ** 2).sum())
        sums[1] += float((p ** 2).sum())
    return {g: (e / n) ** 0.5 for g, (e, n) in groups.items() if n > 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="float spiking checkpoint (.pt, direct input)")
    parser.add_argument("--frozen", help="its integer model (.snnhw): adds the snap's size and the golden model's row")
    parser.add_argument("--data-dir", help="dataset path (default: the checkpoint's)")
    parser.add_argument("--scale", type=float, nargs="+", default=[0.001, 0.01],
                        help="relative perturbation ε per parameter (default 0.001 0.01)")
    parser.add_argument("--draws", type=int, default=8, help="perturbed copies per ε (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first draw (draw k uses seed + k)")
    parser.add_argument("--json", help="write the results as JSON")
    args = parser.parse_args()
    set_threads(1)
    start = time.monotonic()
    ckpt = load_checkpoint(args.model)
    model = ckpt.build_model()
    if not model.cfg.spiking or model.cfg.encoding != "direct":
        parser.error("--model must be a spiking checkpoint with direct input")
    test = ckpt.load_data(args.data_dir, progress=False).test
    labels = test.y
    base = evaluate(model, test, keep_classes=True)["classes"]
    result: dict[str, Any] = {"model": args.model, "n": len(labels), "float_accuracy": float((base == labels).mean()),
                              "draws": []}
    print(f"float model: {100 * result['float_accuracy']:.2f} % ({len(labels)} test sequences)")
    if args.frozen:
        frozen = load_frozen(args.frozen)
        result["snap_relative_rms"] = snap_rms(model, frozen)
        golden = run_spiking(frozen, quantize_input(frozen, test.x), test.lengths).classes
        result["integer"] = {"frozen": args.frozen, "accuracy": float((golden == labels).mean()),
                             "changed": int((golden != base).sum())}
        print("quantizer's relative RMS change: "
              + ", ".join(f"{g} {100 * v:.2f} %" for g, v in result["snap_relative_rms"].items()))
        print(f"integer model: {100 * result['integer']['accuracy']:.2f} %, class differs from the float "
              f"model's on {result['integer']['changed']} sequences")
    keys = perturbed_keys(model)
    print("| ε | draw | accuracy | − float | sequences whose class changed |\n|---|---|---|---|---|")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for scale in args.scale:
        accs = []
        for k in range(args.draws):
            model.load_state_dict(state)
            jitter(model, keys, scale, torch.Generator().manual_seed(args.seed + k))
            pred = evaluate(model, test, keep_classes=True)["classes"]
            acc, changed = float((pred == labels).mean()), int((pred != base).sum())
            accs.append(acc)
            result["draws"].append({"scale": scale, "seed": args.seed + k, "accuracy": acc, "changed": changed})
            print(f"| {scale:g} | {k} | {100 * acc:.2f} % | {100 * (acc - result['float_accuracy']):+.2f} "
                  f"| {changed} |", flush=True)
        print(f"ε = {scale:g}: mean {100 * statistics.mean(accs):.2f} %, SD {100 * statistics.pstdev(accs):.2f}, "
              f"range {100 * min(accs):.2f}–{100 * max(accs):.2f} %")
    model.load_state_dict(state)
    print(f"({time.monotonic() - start:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
