"""Quantization-aware fine-tuning of a spiking LSTM (``snnhw train --qat``).

The integer model of :func:`snnhw.quant.quantizer.quantize_spiking` rounds every weight, bias,
threshold θ and leak λ, and the direct input, to its fixed-point grid; a model trained in
float can lose accuracy there. Quantization-aware training (the "straight-through" scheme of
BinaryConnect, Courbariaux et al. 2015, and of Jacob et al. 2018) trains float *latent*
parameters but computes every forward pass, and so every gradient, with the values the
quantizer would give them (:func:`snnhw.quant.quantizer.snap_spiking`, the quantizer's own
rules), on inputs rounded to the direct-input grid; the optimiser then updates the latent
values with those gradients. Every validation, the epoch selection and the weights kept are
the snapped ones, so the saved model already lies on the integer grid and ``snnhw quantize``
(with the settings recorded here) gives the same integers back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from snnhw.errors import UserError
from snnhw.quant import arith
from snnhw.quant.quantizer import (
    DEFAULT_INPUT_PERCENTILE,
    calibration_input_scale,
    calibration_subset,
    snap_spiking,
)

CALIBRATION_SAMPLES = 512
"""Sequences of the training split α_x is calibrated on (``snnhw quantize``'s default)."""


@dataclass(frozen=True)
class QuantAware:
    """The fixed-point grid a quantization-aware run trains on.

    Attributes:
        weight_bits: signed width of every weight (as ``snnhw quantize --weight-bits``).
        input_bits: signed width of the direct input (``--input-bits``).
        leak_terms: shift terms per leak (``--leak-terms``).
        input_percentile: percentile of |x| that set ``input_scale`` (``--input-percentile``).
        input_scale: α_x, the float value of one direct-input LSB (``None``: rate encoding,
            whose input is not rounded here).
        scale_mode: the quantizer's scale rule ("maxabs").
    """

    weight_bits: int
    input_bits: int
    leak_terms: int
    input_percentile: float
    input_scale: float | None
    scale_mode: str = "maxabs"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def snapped_values(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``{state_dict key: tensor}``: the quantizer's value of every parameter it rounds."""
        state = module.state_dict()
        snapped = snap_spiking(module, input_scale=self.input_scale, weight_bits=self.weight_bits,
                               leak_terms=self.leak_terms, scale_mode=self.scale_mode)
        return {k: torch.as_tensor(v, dtype=state[k].dtype, device=state[k].device) for k, v in snapped.items()}

    @contextmanager
    def snapped(self, module: nn.Module) -> Iterator[None]:
        """Run the block (a forward and backward pass, or a validation) with the module's
        parameters replaced in place by their snapped values, then put the latent values back.
        Gradients computed inside stay in ``.grad`` (the straight-through estimate)."""
        state = module.state_dict()
        values = self.snapped_values(module)
        latent = {k: state[k].detach().clone() for k in values}
        with torch.no_grad():
            for k, v in values.items():
                state[k].copy_(v)
        try:
            yield
        finally:
            with torch.no_grad():
                for k, v in latent.items():
                    state[k].copy_(v)

    def snap(self, module: nn.Module) -> None:
        """Replace the module's parameters by their snapped values for good."""
        state = module.state_dict()
        with torch.no_grad():
            for k, v in self.snapped_values(module).items():
                state[k].copy_(v)

    def round_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised direct inputs [..., D] on the input grid: ``α_x·saturate(round(x/α_x))``
        (:func:`snnhw.quant.arith.quantize_direct_input`); rate inputs unchanged."""
        if self.input_scale is None:
            return x
        q = arith.quantize_direct_input(x.detach().cpu().double().numpy(), self.input_scale, self.input_bits)
        return torch.as_tensor(q * self.input_scale, dtype=x.dtype)

    def round_split(self, split: Any) -> Any:
        """A copy of a dataset split (:class:`snnhw.data.base.SequenceDataset`) with its inputs
        on the input grid (:meth:`round_inputs`)."""
        x = self.round_inputs(torch.as_tensor(split.x)).numpy().astype(split.x.dtype)
        return dataclasses.replace(split, x=x)


QUANTIZER_DEFAULTS: dict[str, Any] = {"weight_bits": 8, "input_bits": 8, "leak_terms": 2,
                                      "input_percentile": DEFAULT_INPUT_PERCENTILE}
"""The quantizer settings ``snnhw quantize`` and ``snnhw build`` use when neither their command
line nor a ``--qat`` checkpoint gives them."""


def quantizer_settings(metrics: dict[str, Any], given: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The quantizer settings for a checkpoint whose recorded ``metrics`` may hold a ``--qat`` grid.

    ``given``: the settings of :data:`QUANTIZER_DEFAULTS` a user gave (``None``: not given). Each
    unset one comes from the grid the checkpoint was trained on, else the default; the result also
    holds ``input_scale``: the grid's α_x when its input width and percentile are kept (``None``:
    calibrate). Returns (settings, lines to show: the grid used, and a warning for each given
    setting that differs from it — the integer model then leaves the trained grid).
    """
    grid = (metrics.get("settings") or {}).get("qat") or {}
    settings: dict[str, Any] = {}
    notes: list[str] = []
    for key, default in QUANTIZER_DEFAULTS.items():
        value, trained = given.get(key), grid.get(key)
        if value is None:
            value = default if trained is None else trained
        elif trained is not None and value != trained:
            notes.append(f"warning: --{key.replace('_', '-')} {value} differs from the grid the model was trained "
                         f"quantization-aware on ({trained}); the integer model will not match it")
        settings[key] = value
    same_input = bool(grid) and (settings["input_bits"], settings["input_percentile"]) == (
        grid.get("input_bits"), grid.get("input_percentile"))
    settings["input_scale"] = grid.get("input_scale") if same_input else None
    if grid:
        notes.append(f"quantization-aware checkpoint: {settings['weight_bits']}-bit weights, "
                     f"{settings['input_bits']}-bit input, {settings['leak_terms']} leak terms"
                     + (" (its input scale)" if settings["input_scale"] else ""))
    return settings, notes


def quant_aware(model: nn.Module, train: Any, *, weight_bits: int = 8, input_bits: int = 8, leak_terms: int = 2,
                input_percentile: float = DEFAULT_INPUT_PERCENTILE, seed: int = 0) -> QuantAware:
    """The grid of ``snnhw quantize`` with these settings for ``model`` trained on ``train``.

    α_x is calibrated on the same subset of the training split as ``snnhw quantize``'s default
    (:data:`CALIBRATION_SAMPLES` sequences, ``seed``), so a later ``snnhw quantize`` with the same
    settings finds the same input scale (it also takes the recorded one). Checks that the model
    can be snapped (UserError otherwise, e.g. a threshold below half a weight LSB).
    """
    cfg = getattr(model, "cfg", None)
    if cfg is None or not cfg.spiking:
        raise UserError("--qat trains a spiking model (give --init, or --spiking)")
    scale = None
    if cfg.encoding == "direct":
        x_cal, len_cal = calibration_subset(train, CALIBRATION_SAMPLES, seed)
        scale = calibration_input_scale(x_cal, len_cal, input_bits, input_percentile)
    grid = QuantAware(weight_bits=int(weight_bits), input_bits=int(input_bits), leak_terms=int(leak_terms),
                      input_percentile=float(input_percentile), input_scale=scale)
    grid.snapped_values(model)
    return grid


__all__ = ["QuantAware", "quant_aware", "quantizer_settings", "QUANTIZER_DEFAULTS", "CALIBRATION_SAMPLES"]
