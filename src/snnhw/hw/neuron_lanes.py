"""Gate neurons of ``lanes`` hidden units: binary LIF (f, o, spiking i), ternary LIF (spiking g),
clip (the non-spiking gate) — the contract's ``arith.binary_lif`` / ``arith.ternary_lif`` /
``arith.clip`` in logic, without a multiplier (θ·s is a mux, the leak shift-and-add).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from snnhw.hw.knobs import GATE_STAGES
from snnhw.hw.leak_unit import clip_expr, delayed, leak_expr, node, saturate_expr
from snnhw.hw.memories import constant_words, values_width
from snnhw.quant.arith import signed_bits
from snnhw.quant.frozen import BinaryNeuron, ClipGate, SpikingLayer, TernaryNeuron

GATES = ("f", "i", "g", "o")


Constants = dict[str, Value]
"""A neuron's constants as read from its block's constant memory (:func:`neuron_constants`):
``theta`` (binary LIF); ``theta_pos``, ``theta_neg``, ``shift_pos``, ``shift_neg`` (ternary
LIF); ``lo``, ``hi`` (clip gate)."""

_CONSTANT_FIELDS = {
    BinaryNeuron: ("theta",),
    TernaryNeuron: ("theta_pos", "theta_neg", "shift_pos", "shift_neg"),
    ClipGate: ("lo", "hi"),
}


def neuron_constants(m: Module, layer: SpikingLayer, gates: tuple[str, ...]) -> dict[str, Constants]:
    """The thresholds, bias shifts and clip bounds of ``layer``'s neurons ``gates`` (names among
    f, i, g, o, c) as one constant memory of ``m`` (:func:`snnhw.hw.memories.constant_words`),
    in gate order, then field order of :data:`_CONSTANT_FIELDS`.

    The word width is structural where it can be — the widest membrane (signed
    ``membrane_bits``) or clip output (:func:`gate_value_shape`) among ``gates`` — and wider only
    when a value needs it, so models of one shape share one memory layout.
    """
    neurons = {a: getattr(layer, a) for a in gates}
    values: list[int] = []
    width = 1
    for a, n in neurons.items():
        values += [getattr(n, f) for f in _CONSTANT_FIELDS[type(n)]]
        width = max(width, gate_value_shape(layer, a).width if isinstance(n, ClipGate) else n.membrane_bits)
    width = max(width, values_width(np.asarray(values)))
    words = iter(constant_words(m, "constants", values, width))
    return {a: {f: next(words) for f in _CONSTANT_FIELDS[type(n)]} for a, n in neurons.items()}


def lif_drive_expr(m: Module, z: Value, n: BinaryNeuron | TernaryNeuron, k: Constants) -> Value:
    """A LIF neuron's input term: ``z`` (binary), or the ternary neuron's sign-dependent shifted
    input ``y' = y + σ⁺`` (y > 0), ``y − σ⁻`` (y < 0), ``0`` (y = 0); ``k``: its constants."""
    if isinstance(n, BinaryNeuron):
        return z
    y = node(m, Value.cast(z).as_signed(), "y")
    return node(m, Mux(y > 0, y + k["shift_pos"], Mux(y < 0, y - k["shift_neg"], y)), "y_shift")


def lif_sum_expr(m: Module, leaked: Value, drive: Value, n: BinaryNeuron | TernaryNeuron) -> Value:
    """``v = sat(leaked + drive)`` from the leaked membrane ``leak(U_prev)`` and the drive
    (:func:`lif_drive_expr`): the membrane before the threshold (signed ``membrane_bits``)."""
    return saturate_expr(m, leaked + drive, n.membrane_bits)


def lif_threshold_expr(m: Module, v: Value, n: BinaryNeuron | TernaryNeuron, k: Constants) -> tuple[Value, Value]:
    """The spike and the reset membrane of ``v`` (:func:`lif_sum_expr`); returns ``(s, u)``
    (``s`` 1 bit for a binary neuron, signed(2) for a ternary one, ``u`` signed
    ``membrane_bits``); ``k``: the neuron's constants."""
    u = Signal(signed(n.membrane_bits), name="u")
    if isinstance(n, BinaryNeuron):
        s = node(m, v > k["theta"], "spike")
        m.d.comb += u.eq(Mux(s, v - k["theta"], v))
        return s, u
    s, u_next = ternary_threshold_select(ternary_threshold_parts(m, v, n, k), n)
    m.d.comb += u.eq(u_next)
    return node(m, s, "spike"), u


def ternary_threshold_parts(m: Module, v: Value, n: TernaryNeuron, k: Constants) -> dict[str, Value]:
    """The parts of :func:`lif_threshold_expr` for a ternary neuron that do not depend on each
    other: the comparisons ``pos`` (v > θ+), ``neg`` (v < −θ−) and the three reset candidates
    ``up`` (v − θ+), ``dn`` (v + θ−) and ``v``; :func:`ternary_threshold_select` finishes it (so
    that a register may sit between the two, ``cell_stages`` = 6)."""
    return {"pos": node(m, v > k["theta_pos"], "pos"), "neg": node(m, v < -k["theta_neg"], "neg"),
            "up": v - k["theta_pos"], "dn": v + k["theta_neg"], "v": v}


def ternary_threshold_select(parts: dict[str, Value], n: TernaryNeuron) -> tuple[Value, Value]:
    """``(s, u)`` of :func:`lif_threshold_expr` from :func:`ternary_threshold_parts` (``s``
    signed(2), ``u`` signed ``membrane_bits``): multiplexers only."""
    pos, neg = parts["pos"], parts["neg"]
    s = Mux(pos, Const(1, signed(2)), Mux(neg, Const(-1, signed(2)), Const(0, signed(2))))
    u = Mux(pos, parts["up"], Mux(neg, parts["dn"], parts["v"]))
    return s, u[:n.membrane_bits].as_signed()


def ternary_lif_expr(m: Module, u_prev: Value, y: Value, n: TernaryNeuron, k: Constants) -> tuple[Value, Value]:
    """The ternary LIF with sign-dependent input shift in one cycle; returns ``(s, u)`` with
    ``s`` signed(2); ``k``: the neuron's constants."""
    v = lif_sum_expr(m, leak_expr(u_prev, n.leak, n.leak_rounding), lif_drive_expr(m, y, n, k), n)
    return lif_threshold_expr(m, v, n, k)


def validate_layer(layer: SpikingLayer) -> None:
    """Check that exactly one of i, g is a clip gate and the rest are neurons of the right kind."""
    if not isinstance(layer.f, BinaryNeuron) or not isinstance(layer.o, BinaryNeuron):
        raise ValueError("gates f and o must be binary LIF neurons")
    if not isinstance(layer.c, TernaryNeuron):
        raise ValueError("the cell activation must be a ternary LIF neuron")
    i_clip, g_clip = isinstance(layer.i, ClipGate), isinstance(layer.g, ClipGate)
    if i_clip == g_clip:
        raise ValueError("exactly one of the gates i, g must be non-spiking (a ClipGate)")
    if not i_clip and not isinstance(layer.i, BinaryNeuron):
        raise ValueError("a spiking gate i must be a binary LIF neuron")
    if not g_clip and not isinstance(layer.g, TernaryNeuron):
        raise ValueError("a spiking gate g must be a ternary LIF neuron")


def gate_value_shape(layer: SpikingLayer, gate: str) -> signed:
    """Shape of gate i or g's output: a spike (signed(2)) or the clip value ``[lo, hi]``."""
    n = getattr(layer, gate)
    if isinstance(n, ClipGate):
        return signed(signed_bits(min(n.lo, 0), max(n.hi, 0)))
    return signed(2)


def gates_layout(layer: SpikingLayer) -> data.StructLayout:
    """Per-unit gate outputs: ``f``, ``o`` binary spikes; ``i``, ``g`` spike or clip value."""
    return data.StructLayout({
        "f": 1, "o": 1, "i": gate_value_shape(layer, "i"), "g": gate_value_shape(layer, "g"),
    })


def membranes_layout(layer: SpikingLayer) -> data.StructLayout:
    """Per-unit membrane state of one cell: every spiking gate's U, then the c neuron's U."""
    fields = {}
    for a in GATES:
        n = getattr(layer, a)
        if not isinstance(n, ClipGate):
            fields[a] = signed(n.membrane_bits)
    fields["c"] = signed(layer.c.membrane_bits)
    return data.StructLayout(fields)


class GateNeurons(wiring.Component):
    """The four gates of ``lanes`` units of one cell (n, t), in one or two pipeline stages.

    Parameters:
        layer: the frozen layer (leaks and widths are logic; thresholds, bias shifts and clip
            bounds are read from one constant memory, :func:`neuron_constants`).
        lanes: hidden units processed in parallel (≥ 1).
        stages: 1 (one output register), 2 (the leaked membranes ``leak(U(n, t−1))``, the
            neuron drives — z, or the ternary neuron's shifted input — and the clip gate's z
            registered first; the saturating add, threshold and reset run in the second cycle)
            or 3 (the saturated sum ``v`` registered too: threshold and reset in the third).

    Ports (lane k):
        z: In(ArrayLayout(ArrayLayout(signed(acc_bits), lanes), 4)): pre-activations by gate f,i,g,o.
        u_prev: In(ArrayLayout(membranes_layout, lanes)): U(n, t−1) (the ``c`` field is ignored).
        gates: Out(ArrayLayout(gates_layout, lanes)): s_f, s_o; i, g (spike or clip value).
        u_next: Out(ArrayLayout(membranes_layout, lanes)): U(n, t) of the spiking gates
            (the ``c`` field passes ``u_prev.c`` through, delayed by :attr:`latency`, for the cell update).
    """

    def __init__(self, layer: SpikingLayer, lanes: int, *, stages: int = 1) -> None:
        validate_layer(layer)
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"GateNeurons lanes must be an integer ≥ 1, not {lanes!r}")
        if stages not in GATE_STAGES:
            raise ValueError(f"GateNeurons stages must be in {GATE_STAGES[0]}..{GATE_STAGES[-1]}, not {stages!r}")
        self.layer = layer
        self.lanes = lanes
        self.stages = stages
        self.mem_layout = membranes_layout(layer)
        self.gate_layout = gates_layout(layer)
        super().__init__({
            "z": In(data.ArrayLayout(data.ArrayLayout(signed(layer.acc_bits), lanes), 4)),
            "u_prev": In(data.ArrayLayout(self.mem_layout, lanes)),
            "gates": Out(data.ArrayLayout(self.gate_layout, lanes)),
            "u_next": Out(data.ArrayLayout(self.mem_layout, lanes)),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``z``/``u_prev`` to ``gates``/``u_next``: :attr:`stages`."""
        return self.stages

    def _staged(self, m: Module, value: Value, name: str, from_stages: int = 2) -> Value:
        """``value`` itself, or registered once when the block has ``from_stages`` stages or more."""
        if self.stages < from_stages:
            return value
        return delayed(m, value, name)

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        consts = neuron_constants(m, layer, GATES)
        for k in range(self.lanes):
            up, un, go = self.u_prev[k], self.u_next[k], self.gates[k]
            for gi, a in enumerate(GATES):
                n = getattr(layer, a)
                z = self.z[gi][k]
                if isinstance(n, ClipGate):
                    z = self._staged(m, self._staged(m, z, f"z_s1_{a}_{k}"), f"z_s2_{a}_{k}", from_stages=3)
                    m.d.sync += go[a].eq(clip_expr(m, z, consts[a]["lo"], consts[a]["hi"],
                                                   gate_value_shape(layer, a)))
                    continue
                leaked = self._staged(m, leak_expr(up[a], n.leak, n.leak_rounding), f"leaked_s1_{a}_{k}")
                drive = self._staged(m, lif_drive_expr(m, z, n, consts[a]), f"drive_s1_{a}_{k}")
                v = self._staged(m, lif_sum_expr(m, leaked, drive, n), f"v_s2_{a}_{k}", from_stages=3)
                s, u = lif_threshold_expr(m, v, n, consts[a])
                m.d.sync += [go[a].eq(s), un[a].eq(u)]
            uc = self._staged(m, self._staged(m, up["c"], f"uc_s1_{k}"), f"uc_s2_{k}", from_stages=3)
            m.d.sync += un["c"].eq(uc)
        return m
