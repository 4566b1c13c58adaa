"""Cell update of ``lanes`` units: ``c = sat_CW((s_f ? c_prev : 0) + i·g)``, the ternary LIF of c,
and ``h = s_o·s_c`` — ``arith.spike_select`` / ``arith.cell_update`` / ``arith.ternary_lif`` in
logic. Every product has a spike as one operand: muxes and a negation, no multiplier.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from snnhw.hw.adder_tree import SPIKE_SHAPE, spike_select_expr
from snnhw.hw.knobs import CELL_STAGES
from snnhw.hw.leak_unit import delayed, leak_expr, node, saturate_expr
from snnhw.hw.neuron_lanes import (gates_layout, lif_drive_expr, lif_sum_expr, lif_threshold_expr, neuron_constants,
                                   ternary_lif_expr, ternary_threshold_parts, ternary_threshold_select,
                                   validate_layer)
from snnhw.quant.frozen import ClipGate, SpikingLayer


class CellUpdate(wiring.Component):
    """c, s_c, U_c and h of ``lanes`` units of one cell (n, t), registered once, or twice with
    ``stages=2`` (the saturated c, U_c(n, t−1) and the o gate registered before c's ternary LIF),
    or three times with ``stages=3`` (then also c's shifted input y' and the leaked membrane
    λ·U_c(n, t−1) registered before the LIF's saturating add, threshold and reset), or four
    times with ``stages=4`` (the saturated sum registered before the threshold and reset too),
    or five times with ``stages=5`` (also c's unsaturated sum ``(s_f ? c_prev : 0) + q``
    registered before its saturation), or six times with ``stages=6`` (also the threshold's
    comparisons and the reset candidates v − θ+, v + θ− registered before the spike and reset
    multiplexers).

    ``q = s_i ? g : 0`` (non-spiking g) or ``q = s_g·i`` (non-spiking i);
    ``c = sat_{cell_bits}((s_f ? c_prev : 0) + q)``; ``(s_c, U_c) = ternary_lif(U_c_prev, c)``;
    ``h = s_o·s_c`` ∈ {−1, 0, 1}.

    Parameters:
        layer: the frozen layer; lanes: units in parallel (≥ 1).
        stages: 1..6 pipeline stages (the :attr:`latency`; ``knobs.CELL_STAGES``).
        trace: add the debug output ``s_c`` (the spike of c's ternary LIF, before the o gate).

    Ports (lane k):
        gates: In(ArrayLayout(gates_layout, lanes)).
        c_prev: In(ArrayLayout(signed(cell_bits), lanes)): c(n−1, t) (0 for the first element).
        uc_prev: In(ArrayLayout(signed(c.membrane_bits), lanes)): U_c(n, t−1).
        c: Out(ArrayLayout(signed(cell_bits), lanes)); uc: Out(... membrane_bits ...);
        h: Out(ArrayLayout(signed(2), lanes)).
        s_c: Out(ArrayLayout(signed(2), lanes)) (``trace`` only), registered with ``h``.
    """

    def __init__(self, layer: SpikingLayer, lanes: int, *, stages: int = 1, trace: bool = False) -> None:
        validate_layer(layer)
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"CellUpdate lanes must be an integer ≥ 1, not {lanes!r}")
        if stages not in CELL_STAGES:
            raise ValueError(f"CellUpdate stages must be in {CELL_STAGES[0]}..{CELL_STAGES[-1]}, not {stages!r}")
        self.layer = layer
        self.lanes = lanes
        self.stages = stages
        self.has_trace = bool(trace)
        cw, uw = signed(layer.cell_bits), signed(layer.c.membrane_bits)
        ports = {
            "gates": In(data.ArrayLayout(gates_layout(layer), lanes)),
            "c_prev": In(data.ArrayLayout(cw, lanes)),
            "uc_prev": In(data.ArrayLayout(uw, lanes)),
            "c": Out(data.ArrayLayout(cw, lanes)),
            "uc": Out(data.ArrayLayout(uw, lanes)),
            "h": Out(data.ArrayLayout(SPIKE_SHAPE, lanes)),
        }
        if self.has_trace:
            ports["s_c"] = Out(data.ArrayLayout(SPIKE_SHAPE, lanes))
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Cycles from inputs to ``c``/``uc``/``h``: ``stages`` (1: one output register)."""
        return self.stages

    @staticmethod
    def _registered(m: Module, lane: int, stage: int, **values: Value) -> list[Signal]:
        """Registers ``<name>_s<stage>_<lane>`` holding ``values`` one cycle later (in order)."""
        return [delayed(m, v, f"{name}_s{stage}_{lane}") for name, v in values.items()]

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        kc = neuron_constants(m, layer, ("c",))["c"]
        for k in range(self.lanes):
            gt = self.gates[k]
            if isinstance(layer.g, ClipGate):
                q = Mux(gt["i"].as_unsigned()[0], gt["g"], 0)
            else:
                q = spike_select_expr(gt["g"], gt["i"])
            total = Mux(gt["f"], self.c_prev[k], 0) + node(m, q, "q")
            uc_prev, o = self.uc_prev[k], gt["o"]
            if self.stages >= 5:  # register (s_f ? c_prev : 0) + q: its saturation runs in the next cycle
                total, uc_prev, o = self._registered(m, k, 0, total=total, uc=uc_prev, o=o)
            c = saturate_expr(m, total, layer.cell_bits)
            if self.stages >= 2:  # register c, U_c(n, t−1) and o: the LIF runs in the next cycle
                c, uc_prev, o = self._registered(m, k, 1, c=c, uc=uc_prev, o=o)
            if self.stages >= 3:  # register y' and λ·U_c(n, t−1): the saturating add runs in the next cycle
                drive = lif_drive_expr(m, c, layer.c, kc)
                leaked = leak_expr(uc_prev, layer.c.leak, layer.c.leak_rounding)
                drive, leaked, c, o = self._registered(m, k, 2, drive=drive, leaked=leaked, c=c, o=o)
                v = lif_sum_expr(m, leaked, drive, layer.c)
                if self.stages >= 4:  # register v = sat(λ·U_c + y'): threshold and reset in the next cycle
                    v, c, o = self._registered(m, k, 3, v=v, c=c, o=o)
                if self.stages == 6:  # register the comparisons and candidates: the multiplexers next cycle
                    parts = ternary_threshold_parts(m, v, layer.c, kc)
                    names = list(parts)
                    *values, c, o = self._registered(m, k, 4, **parts, c=c, o=o)
                    s_c, u_c = ternary_threshold_select(dict(zip(names, values)), layer.c)
                else:
                    s_c, u_c = lif_threshold_expr(m, v, layer.c, kc)
            else:
                s_c, u_c = ternary_lif_expr(m, uc_prev, c, layer.c, kc)
            m.d.sync += [
                self.c[k].eq(c),
                self.uc[k].eq(u_c),
                self.h[k].eq(Mux(o, s_c, 0)),
            ]
            if self.has_trace:
                m.d.sync += self.s_c[k].eq(s_c)
        return m
