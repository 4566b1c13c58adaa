"""The frozen (integer) models: what the quantizer produces and the golden models, generators,
testbenches and reports consume.

Field meanings, units and widths are those of ``docs/integer-contract.md``; the file format
(JSON header + arrays) is described in ``docs/frozen-format.md``. All arrays are NumPy
``int64``; weight matrices are stacked by gate in the order ``GATES = ("f", "i", "g", "o")``
in blocks of ``hidden_size`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from snnhw.quant.arith import DEFAULT_LEAK_ROUNDING, LeakRounding, LeakTerms

FROZEN_FORMAT = "snnhw-frozen"
FROZEN_VERSION = 2
"""The version written. 2: every LIF neuron records its ``leak_rounding``."""

READABLE_VERSIONS = (1, 2)
"""Versions read: a version-1 file (before ``leak_rounding``) loads with every leak flooring,
the rule it was written under."""


class _LayerSizes:
    """Sizes of a layer, read from its weight matrices ``w_x`` [4H, D_in] and ``w_h`` [4H, H]."""

    w_x: np.ndarray
    w_h: np.ndarray

    @property
    def hidden_size(self) -> int:
        """H, units in this layer."""
        return int(self.w_h.shape[1])

    @property
    def input_size(self) -> int:
        """D_in, inputs of this layer."""
        return int(self.w_x.shape[1])


class _ModelSizes:
    """Sizes of a frozen model, read from its layers and head."""

    layers: list[_LayerSizes]
    head: "IntHead"

    @property
    def input_size(self) -> int:
        """D, features per element."""
        return self.layers[0].input_size

    @property
    def hidden_size(self) -> int:
        """H of the last layer (the readout width)."""
        return self.layers[-1].hidden_size

    @property
    def num_classes(self) -> int:
        """Classifier outputs."""
        return self.head.num_classes


@dataclass(frozen=True)
class BinaryNeuron:
    """Binary LIF neuron (gates f, o; i when it spikes). Integers in the gate's unit.

    Attributes:
        theta: firing threshold θ (> 0).
        leak: leak shift terms (see :data:`snnhw.quant.arith.LeakTerms`).
        membrane_bits: signed width of the saturating membrane register U.
        leak_rounding: how each leak term's shift rounds (:data:`snnhw.quant.arith.LeakRounding`).
    """

    theta: int
    leak: LeakTerms
    membrane_bits: int
    leak_rounding: LeakRounding = DEFAULT_LEAK_ROUNDING


@dataclass(frozen=True)
class TernaryNeuron:
    """Ternary LIF neuron (g when it spikes; always the activation of c).

    Attributes:
        theta_pos: positive threshold θ+ (> 0).
        theta_neg: magnitude of the negative threshold θ− (> 0); fires −1 when U < −θ−.
        shift_pos: σ+ added to a positive input (the paper's θ+/(2T); 0 when shifts are off).
        shift_neg: σ− subtracted from a negative input.
        leak: leak shift terms.
        membrane_bits: signed width of the saturating membrane register U.
        leak_rounding: how each leak term's shift rounds.
    """

    theta_pos: int
    theta_neg: int
    shift_pos: int
    shift_neg: int
    leak: LeakTerms
    membrane_bits: int
    leak_rounding: LeakRounding = DEFAULT_LEAK_ROUNDING


@dataclass(frozen=True)
class ClipGate:
    """Non-spiking gate ``clip(z, lo, hi)``: g uses ``(−θ_g, θ_g)``, i uses ``(0, θ_i)``."""

    lo: int
    hi: int


@dataclass
class SpikingLayer(_LayerSizes):
    """One spiking LSTM layer in integers.

    Attributes:
        w_x: [4H, D_in] input weights (signed ``weight_bits``). Layer 1 with direct input: the
            projection is ``(w_x · x_q) >> x_shift[a]`` (a MAC, once per element); spike input
            (rate encoding, layers ≥ 2): add/subtract/skip, and ``x_shift`` is all 0.
        w_h: [4H, H] recurrent weights (signed ``weight_bits``).
        bias: [4H] biases in each gate's unit (sigmoid-gate shifts folded in).
        x_shift: per gate (f, i, g, o) floor shift of the direct-input projection.
        f, i, g, o: the gate neurons; exactly one of i, g is a :class:`ClipGate`.
        c: the ternary neuron of the cell state activation.
        cell_bits: signed width of the saturating cell-state register c.
        acc_bits: signed width that holds every gate pre-activation z (derived from bounds).
    """

    w_x: np.ndarray
    w_h: np.ndarray
    bias: np.ndarray
    x_shift: tuple[int, int, int, int]
    f: BinaryNeuron
    i: BinaryNeuron | ClipGate
    g: TernaryNeuron | ClipGate
    o: BinaryNeuron
    c: TernaryNeuron
    cell_bits: int
    acc_bits: int


@dataclass
class IntHead:
    """The integer FC head (a MAC block in hardware, or left to the host).

    Without a hidden layer: ``logits = w_out · r + b_out``. With one (``w_hidden`` not None):
    ``a = clip((w_hidden · r + b_hidden) >> hidden_shift, 0, 2**hidden_bits − 1)``, then
    ``logits = w_out · a + b_out``. ``r`` is the readout (spiking: Σ_t h ∈ [−T, T]; baseline:
    h in units of 2^−q). Class = first index of the largest logit.
    """

    w_out: np.ndarray
    b_out: np.ndarray
    w_hidden: np.ndarray | None = None
    b_hidden: np.ndarray | None = None
    hidden_shift: int = 0
    hidden_bits: int = 8

    @property
    def num_classes(self) -> int:
        """Classifier outputs."""
        return int(self.w_out.shape[0])


@dataclass
class FrozenSpiking(_ModelSizes):
    """The integer spiking LSTM (the golden model's parameters).

    Attributes:
        T: time steps per element.
        encoding: "direct" (x_q signed ``input_bits``) or "rate" (x_q signed ``rate_bits``+1,
            spikes from per-feature xorshift32 generators seeded with ``lfsr_seeds``).
        nonspiking_gate: "i" or "g".
        weight_bits: signed width of every weight.
        input_bits: signed width of the direct-encoding input.
        input_scale: α_x, float unit of one direct-input LSB (x_q = round(x/α_x)).
        rate_bits: R of the rate encoder.
        lfsr_seeds: [D] non-zero uint32 seeds (int64 array), reset at every sequence start.
        layers: 1 or 2 :class:`SpikingLayer`.
        head: the integer FC head.
        scales: float reference scales per layer and gate (reports only).
        meta: JSON-able provenance: model config, data/feature settings, normalisation,
            float metrics, snnhw version, quantizer settings.
    """

    T: int
    encoding: Literal["direct", "rate"]
    nonspiking_gate: Literal["i", "g"]
    weight_bits: int
    input_bits: int
    input_scale: float
    rate_bits: int
    lfsr_seeds: np.ndarray
    layers: list[SpikingLayer]
    head: IntHead
    scales: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class BaselineLayer(_LayerSizes):
    """One layer of the MAC baseline (non-spiking hard LSTM) in integers, activations in 2^−q.

    Attributes:
        w_x: [4H, D_in] input weights (signed ``weight_bits``); projection ``(w_x·x) >> x_shift[a]``
            for layer 1 (direct input) and ``w_x·h_below`` (x_shift 0) for layer 2.
        w_h: [4H, H] recurrent weights.
        bias: [4H] in units of each gate's pre-activation.
        x_shift: per-gate floor shift of the layer-1 projection.
        act_mult: per gate (f, i, g, o) and sign: ``{"f": (M, M), "i": ..., "g": (M+, M−),
            "o": ...}`` multipliers of the activation (sigmoid gates use M+ = M−).
        c_mult: (M+, M−) of the hard tanh of c.
        act_shift: S, the floor shift after every activation multiply.
        cell_bits: signed width of the saturating c register (unit 2^−q).
        acc_bits: signed width holding every z.
    """

    w_x: np.ndarray
    w_h: np.ndarray
    bias: np.ndarray
    x_shift: tuple[int, int, int, int]
    act_mult: dict[str, tuple[int, int]]
    c_mult: tuple[int, int]
    act_shift: int
    cell_bits: int
    acc_bits: int


@dataclass
class FrozenBaseline(_ModelSizes):
    """The integer MAC baseline: hard LSTM with multi-bit h (q = act_bits − 1 fraction bits).

    Gates a ∈ [0, 2^q] (sigmoid) or [−2^q, 2^q] (tanh); h ∈ [−2^q, 2^q]. Input as the
    spiking model's direct encoding (``input_bits``, ``input_scale``).
    """

    weight_bits: int
    act_bits: int
    input_bits: int
    input_scale: float
    layers: list[BaselineLayer]
    head: IntHead
    scales: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frac_bits(self) -> int:
        """q: activations are integers in units of 2^−q."""
        return self.act_bits - 1
