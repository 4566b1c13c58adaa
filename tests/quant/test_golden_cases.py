"""Hand-computed cases of the integer contract (H = 1..2): every expected number below was
worked out on paper from docs/integer-contract.md, not produced by the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from snnhw.quant import golden
from snnhw.quant.frozen import (
    BaselineLayer,
    BinaryNeuron,
    ClipGate,
    FrozenBaseline,
    FrozenSpiking,
    IntHead,
    SpikingLayer,
    TernaryNeuron,
)

IF = ((1, 0),)
LIF_7_8 = ((1, 0), (-1, 3))
LIF_9_8 = ((1, 0), (1, 3))


def _arr(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def tiny_model(wx, wh, bias, *, T, f=None, i=None, g=None, o=None, c=None, cell_bits=8, x_shift=(0, 0, 0, 0),
               encoding="direct", w_out=((1,),), b_out=(0,), layers=None) -> FrozenSpiking:
    """A one-layer H = 1 (or H from wx) spiking model with the given parameters."""
    g = g or ClipGate(-5, 5)
    nonspiking = "g" if isinstance(g, ClipGate) else "i"
    layer = SpikingLayer(
        w_x=_arr(wx), w_h=_arr(wh), bias=_arr(bias), x_shift=x_shift,
        f=f or BinaryNeuron(3, IF, 8), i=i or BinaryNeuron(3, IF, 8), g=g,
        o=o or BinaryNeuron(3, IF, 8), c=c or TernaryNeuron(2, 2, 0, 0, IF, 8),
        cell_bits=cell_bits, acc_bits=16,
    )
    return FrozenSpiking(T=T, encoding=encoding, nonspiking_gate=nonspiking, weight_bits=8, input_bits=8,
                         input_scale=1.0, rate_bits=8, lfsr_seeds=_arr([1] * np.asarray(wx).shape[1]),
                         layers=layers or [layer], head=IntHead(w_out=_arr(w_out), b_out=_arr(b_out)))


def test_if_cell_two_elements_two_steps() -> None:
    # wx (f,i,g,o) = 2,3,4,1; wh = 1,0,-1,2; b = 0,1,0,1; θ_f = θ_i = θ_o = 3; g = clip(z, −5, 5);
    # c neuron θ± = 2, no shifts. x = [2, 1].
    model = tiny_model([[2], [3], [4], [1]], [[1], [0], [-1], [2]], [0, 1, 0, 1], T=2)
    tr = golden.run_spiking(model, _arr([[[2], [1]]]), None, trace=True).trace[0]
    # n=1: P = 4,6,8,2; z = 4,7,8,3 at both t (h(0,t) = 0)
    # t=1: U_f 4 → spike, 1; U_o 3 → no spike, 3; U_i 7 → spike, 4; g = 5; c = 5; U_c 5 → +1, 3; h = 0
    # t=2: U_f 5 → 1, 2; U_o 6 → 1, 3; U_i 11 → 1, 8; c = 5; U_c 8 → +1, 6; h = 1
    # n=2: P = 2,3,4,1. t=1 (h(1,1)=0): z = 2,4,4,2: f 0 (U 2), o 0 (U 2), i 1 (U 1), g 4,
    #      c = (s_f=0 → 0) + 4 = 4, U_c 4 → +1, 2; h = 0.
    # t=2 (h(1,2)=1): z = 3,4,3,4: U_f 5 → 1, 2; U_o 6 → 1, 3; U_i 5 → 1, 2; g = 3;
    #      c = c(1,2) + 3 = 8; U_c 10 → +1, 8; h = 1.
    assert tr["z"][0, :, :, :].tolist() == [[[4, 7, 8, 3], [4, 7, 8, 3]], [[2, 4, 4, 2], [3, 4, 3, 4]]]
    assert tr["f"][0, :, :, 0].tolist() == [[1, 1], [0, 1]]
    assert tr["U_f"][0, :, :, 0].tolist() == [[1, 2], [2, 2]]
    assert tr["o"][0, :, :, 0].tolist() == [[0, 1], [0, 1]]
    assert tr["U_o"][0, :, :, 0].tolist() == [[3, 3], [2, 3]]
    assert tr["i"][0, :, :, 0].tolist() == [[1, 1], [1, 1]]
    assert tr["U_i"][0, :, :, 0].tolist() == [[4, 8], [1, 2]]
    assert tr["g"][0, :, :, 0].tolist() == [[5, 5], [4, 3]]
    assert tr["c"][0, :, :, 0].tolist() == [[5, 5], [4, 8]]
    assert tr["s_c"][0, :, :, 0].tolist() == [[1, 1], [1, 1]]
    assert tr["U_c"][0, :, :, 0].tolist() == [[3, 6], [2, 8]]
    assert tr["h"][0, :, :, 0].tolist() == [[0, 1], [0, 1]]
    result = golden.run_spiking(model, _arr([[[2], [1]], [[2], [0]]]), _arr([2, 1]))
    assert result.readout[:, 0].tolist() == [1, 1]


def _leak_model(leak, z_f: int, *, T: int, bits: int = 16, theta: int = 100,
                rounding: str = "floor") -> FrozenSpiking:
    """H = 1, z_f = bias only (zero weights), f never fires unless z is large."""
    return tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [z_f, 0, 0, 0], T=T,
                      f=BinaryNeuron(theta, leak, bits, rounding))


def _u_f(model: FrozenSpiking, N: int = 1) -> list[int]:
    tr = golden.run_spiking(model, np.zeros((1, N, 1), dtype=np.int64), None, trace=True, saturation=True)
    return tr.trace[0]["U_f"][0, 0, :, 0].tolist()


def test_leak_if_lif_and_greater_than_one() -> None:
    # λ = 1: U = 5, 10, 15, 20
    assert _u_f(_leak_model(IF, 5, T=4)) == [5, 10, 15, 20]
    # λ = 7/8: U ← U − (U >> 3) + 5: 5; 5−0+5 = 10; 10−1+5 = 14; 14−1+5 = 18
    assert _u_f(_leak_model(LIF_7_8, 5, T=4)) == [5, 10, 14, 18]
    # negative input, flooring shifts: −5; −5+1−5 = −9; −9+2−5 = −12; −12+2−5 = −15
    assert _u_f(_leak_model(LIF_7_8, -5, T=4)) == [-5, -9, -12, -15]
    # λ = 1.125: U ← U + (U >> 3) + 5: 5; 10; 10+1+5 = 16; 16+2+5 = 23
    assert _u_f(_leak_model(LIF_9_8, 5, T=4)) == [5, 10, 16, 23]
    # T = 8 with λ = 7/8 and soft reset at θ = 12: v = 5,10,14→reset 2, 2+5=7, 7+5=12 (not > 12),
    # 12−1+5 = 16 → 4, 4+5 = 9, 9−1+5 = 13 → 1
    model = _leak_model(LIF_7_8, 5, T=8, theta=12)
    tr = golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None, trace=True).trace[0]
    assert tr["U_f"][0, 0, :, 0].tolist() == [5, 10, 2, 7, 12, 4, 9, 1]
    assert tr["f"][0, 0, :, 0].tolist() == [0, 0, 1, 0, 0, 1, 0, 1]


def test_leak_terms_rounded_to_nearest() -> None:
    # each term U >> e becomes round(U / 2^e), halves up. λ = 7/8, z = 5: 5; 5 − round(0.625) + 5
    # = 9; 9 − round(1.125) + 5 = 13; 13 − round(1.625) + 5 = 16 (floored: 5, 10, 14, 18)
    assert _u_f(_leak_model(LIF_7_8, 5, T=4, rounding="nearest")) == [5, 9, 13, 16]
    # z = −5: −5; −5 − round(−0.625) − 5 = −9; −9 − round(−1.125) − 5 = −13; −13 + 2 − 5 = −16
    assert _u_f(_leak_model(LIF_7_8, -5, T=4, rounding="nearest")) == [-5, -9, -13, -16]
    # halves go up: z = 4: 4; 4 − round(0.5) + 4 = 7; 7 − 1 + 4 = 10; 10 − 1 + 4 = 13;
    # z = −4: −4; −4 − round(−0.5) − 4 = −8 (−0.5 → 0); −8 + 1 − 4 = −11; −11 + 1 − 4 = −14
    assert _u_f(_leak_model(LIF_7_8, 4, T=4, rounding="nearest")) == [4, 7, 10, 13]
    assert _u_f(_leak_model(LIF_7_8, -4, T=4, rounding="nearest")) == [-4, -8, -11, -14]
    # λ = 1.125: 5; 5 + round(0.625) + 5 = 11; 11 + 1 + 5 = 17; 17 + round(2.125) + 5 = 24
    assert _u_f(_leak_model(LIF_9_8, 5, T=4, rounding="nearest")) == [5, 11, 17, 24]
    # λ = 1 has no shifted-out bit: the same as floored
    assert _u_f(_leak_model(IF, 5, T=4, rounding="nearest")) == [5, 10, 15, 20]


def test_membrane_and_cell_saturation_counts() -> None:
    # 4-bit membrane (−8..7): U = 5, sat(10) = 7, sat(12) = 7, sat(12) = 7: three clamps
    model = _leak_model(IF, 5, T=4, bits=4)
    result = golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None, trace=True, saturation=True)
    assert result.trace[0]["U_f"][0, 0, :, 0].tolist() == [5, 7, 7, 7]
    assert result.saturation[0]["U_f"] == 3
    assert result.saturation[0]["c"] == 0
    # cell: z_f = 4 > θ_f = 3 (s_f = 1 at t = 1), i fires (z_i = 4), g = clip(5) = 5; T = 1.
    # c = 5, then sat_4(5 + 5) = 7 (clamp), sat_4(7 + 5) = 7 (clamp) over N = 3 elements
    cell = tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [4, 4, 5, 0], T=1, cell_bits=4)
    result = golden.run_spiking(cell, np.zeros((1, 3, 1), dtype=np.int64), None, trace=True, saturation=True)
    assert result.trace[0]["c"][0, :, 0, 0].tolist() == [5, 7, 7]
    assert result.saturation[0]["c"] == 2
    # positions beyond a sample's length are not counted
    short = golden.run_spiking(cell, np.zeros((1, 3, 1), dtype=np.int64), _arr([2]), saturation=True)
    assert short.saturation[0]["c"] == 1


def test_nonspiking_i_with_ternary_g_and_shifts() -> None:
    # i = clip(z_i, 0, 6); g ternary θ+ = 4, θ− = 3, σ+ = 1, σ− = 2; z_g = bias ±.
    g = TernaryNeuron(theta_pos=4, theta_neg=3, shift_pos=1, shift_neg=2, leak=IF, membrane_bits=8)
    model = tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [4, 9, 3, 0], T=3,
                       i=ClipGate(0, 6), g=g, c=TernaryNeuron(4, 4, 0, 0, IF, 10), cell_bits=10)
    tr = golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None, trace=True).trace[0]
    # z_g = 3 > 0 → y' = 4: v = 4 (not > 4), 8 → +1 (U 4), 8 → +1 (U 4)
    assert tr["U_g"][0, 0, :, 0].tolist() == [4, 4, 4]
    assert tr["g"][0, 0, :, 0].tolist() == [0, 1, 1]
    assert tr["i"][0, 0, :, 0].tolist() == [6, 6, 6]  # clip(9, 0, 6)
    # q = s_g·i = 0, 6, 6; c(1,t) = q (n = 1)
    assert tr["c"][0, 0, :, 0].tolist() == [0, 6, 6]
    # negative z_g = −2 → y' = −4: v = −4 < −3 → −1 (U −1); −5 → −1 (U −2); −6 → −1 (U −3)
    neg = tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [4, 9, -2, 0], T=3,
                     i=ClipGate(0, 6), g=g, c=TernaryNeuron(4, 4, 0, 0, IF, 10), cell_bits=10)
    tr = golden.run_spiking(neg, np.zeros((1, 1, 1), dtype=np.int64), None, trace=True).trace[0]
    assert tr["g"][0, 0, :, 0].tolist() == [-1, -1, -1]
    assert tr["U_g"][0, 0, :, 0].tolist() == [-1, -2, -3]
    assert tr["c"][0, 0, :, 0].tolist() == [-6, -6, -6]  # q = −i (negate)
    # c neuron θ± = 4, no shift: U_c = −6 → −1 (U −2); −8 → −1 (U −4); −10 → −1 (U −6)
    assert tr["s_c"][0, 0, :, 0].tolist() == [-1, -1, -1]
    assert tr["U_c"][0, 0, :, 0].tolist() == [-2, -4, -6]
    # shifts off: v = 3, 6 → +1 (U 2), 5 → +1 (U 1)
    off = TernaryNeuron(theta_pos=4, theta_neg=3, shift_pos=0, shift_neg=0, leak=IF, membrane_bits=8)
    plain = tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [4, 9, 3, 0], T=3,
                       i=ClipGate(0, 6), g=off, c=TernaryNeuron(4, 4, 0, 0, IF, 10), cell_bits=10)
    tr = golden.run_spiking(plain, np.zeros((1, 1, 1), dtype=np.int64), None, trace=True).trace[0]
    assert tr["g"][0, 0, :, 0].tolist() == [0, 1, 1]
    assert tr["U_g"][0, 0, :, 0].tolist() == [3, 2, 1]


def test_nonspiking_g_gated_by_spiking_i() -> None:
    # i binary θ = 3 with z_i = 2: v = 2, 4 → 1 (U 1), 3 → 0 (U 3), 5 → 1 (U 2); g = clip(−9) = −5
    model = tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [4, 2, -9, 0], T=4)
    tr = golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None, trace=True).trace[0]
    assert tr["i"][0, 0, :, 0].tolist() == [0, 1, 0, 1]
    assert tr["g"][0, 0, :, 0].tolist() == [-5, -5, -5, -5]
    assert tr["c"][0, 0, :, 0].tolist() == [0, -5, 0, -5]


def test_two_layers_hand_computed() -> None:
    # layer 1: H = 1; f, i always fire (z 4 > 3), g = 5, o fires (z 4): c = 5 (n=1), U_c 5 → +1:
    #   h1 = +1 at t = 1; t = 2: U_c = 3 + 5 = 8 → +1: h1 = +1. T = 2, N = 1.
    # layer 2: H = 1, w_x = (0, 0, 2, 0) on h1, so z_g = 2 → g = 2; f z = 4, i z = 4, o z = 4 fire;
    #   c = 2: U_c 2 (not > 2) → 0; t = 2: U_c 4 → +1: h2 = 0, 1 → r = 1.
    first = tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [4, 4, 5, 4], T=2).layers[0]
    second = SpikingLayer(
        w_x=_arr([[0], [0], [2], [0]]), w_h=_arr([[0], [0], [0], [0]]), bias=_arr([4, 4, 0, 4]),
        x_shift=(0, 0, 0, 0), f=BinaryNeuron(3, IF, 8), i=BinaryNeuron(3, IF, 8), g=ClipGate(-5, 5),
        o=BinaryNeuron(3, IF, 8), c=TernaryNeuron(2, 2, 0, 0, IF, 8), cell_bits=8, acc_bits=8)
    model = tiny_model([[0], [0], [0], [0]], [[0], [0], [0], [0]], [0, 0, 0, 0], T=2, layers=[first, second],
                       w_out=((2,), (-1,)), b_out=(0, 1))
    result = golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None, trace=True)
    assert result.trace[0]["h"][0, 0, :, 0].tolist() == [1, 1]
    assert result.trace[1]["g"][0, 0, :, 0].tolist() == [2, 2]
    assert result.trace[1]["h"][0, 0, :, 0].tolist() == [0, 1]
    assert result.readout.tolist() == [[1]]
    assert result.logits.tolist() == [[2, 0]]  # 2·1 + 0, −1·1 + 1
    assert result.classes.tolist() == [0]


def test_direct_projection_shift_floors_per_gate() -> None:
    # H = 1, D = 2: wx rows (3, −2) for every gate; x = (3, 4) → 9 − 8 = 1; x = (1, 4) → −5.
    # shifts (0, 1, 2, 3): 1 → 1, 0, 0, 0;  −5 → −5, −3, −2, −1 (floor)
    model = tiny_model([[3, -2]] * 4, [[0]] * 4, [0, 0, 0, 0], T=1, x_shift=(0, 1, 2, 3))
    p = golden.input_projection(model.layers[0], _arr([[3, 4], [1, 4]]))
    assert p.tolist() == [[1, 0, 0, 0], [-5, -3, -2, -1]]


def test_head_with_hidden_layer() -> None:
    # r = (2, −1); w_hidden = [[3, 1], [−1, 2]], b = (1, 0), shift 1, 3 bits (0..7):
    # (6 − 1 + 1) >> 1 = 3; (−2 − 2) >> 1 = −2 → 0; logits = w_out·a + b = (1·3 + 2·0 + 0, −3 + 5)
    head = IntHead(w_out=_arr([[1, 2], [-1, 4]]), b_out=_arr([0, 5]), w_hidden=_arr([[3, 1], [-1, 2]]),
                   b_hidden=_arr([1, 0]), hidden_shift=1, hidden_bits=3)
    assert golden.head_forward(head, _arr([[2, -1]])).tolist() == [[3, 2]]
    # clip at the top: r = (10, 0) → (30 + 1) >> 1 = 15 → 7; (−10) >> 1 = −5 → 0; (7, −7 + 5)
    assert golden.head_forward(head, _arr([[10, 0]])).tolist() == [[7, -2]]


def test_baseline_hand_computed() -> None:
    # act_bits 4: q = 3, Q = 8. S = 4, M = 16 (×1), M_g = (16, 8), M_c = (16, 16). H = 1, D = 1.
    # x = 2, wx = (1, 2, 3, −1), shift 0, wh = (1, 0, 1, 0), b = (0, −4, 0, 4).
    # n=1: z = (2, 0, 6, 2): f = clip(2 + 4) = 6, i = 4, g = clip(6) = 6, o = 6;
    #   c = (6·0 + 4·6) >> 3 = 3; tc = 3; h = (6·3) >> 3 = 2.
    # n=2 (x = −3): z = (−3 + 2, −6 − 4, −9 + 2, 3 + 4) = (−1, −10, −7, 7):
    #   f = 3, i = clip(−10 + 4) = 0, g = (−7·8) >> 4 = −4, o = clip(11) = 8;
    #   c = (3·3 + 0) >> 3 = 1; tc = 1; h = (8·1) >> 3 = 1.
    layer = BaselineLayer(w_x=_arr([[1], [2], [3], [-1]]), w_h=_arr([[1], [0], [1], [0]]), bias=_arr([0, -4, 0, 4]),
                          x_shift=(0, 0, 0, 0), act_mult={"f": (16, 16), "i": (16, 16), "g": (16, 8), "o": (16, 16)},
                          c_mult=(16, 16), act_shift=4, cell_bits=8, acc_bits=12)
    model = FrozenBaseline(weight_bits=8, act_bits=4, input_bits=8, input_scale=1.0, layers=[layer],
                           head=IntHead(w_out=_arr([[1]]), b_out=_arr([0])))
    result = golden.run_baseline(model, _arr([[[2], [-3]]]), None, trace=True, saturation=True)
    tr = result.trace[0]
    assert tr["z"][0, :, :].tolist() == [[2, 0, 6, 2], [-1, -10, -7, 7]]
    assert tr["f"][0, :, 0].tolist() == [6, 3]
    assert tr["i"][0, :, 0].tolist() == [4, 0]
    assert tr["g"][0, :, 0].tolist() == [6, -4]
    assert tr["o"][0, :, 0].tolist() == [6, 8]
    assert tr["c"][0, :, 0].tolist() == [3, 1]
    assert tr["h"][0, :, 0].tolist() == [2, 1]
    assert result.readout.tolist() == [[1]]
    assert result.saturation == [{"c": 0, "acc": 0}]
    # c saturation: 3-bit c register (−4..3), z_f, z_i, z_g large: f = i = g = 8:
    # c = (0 + 64) >> 3 = 8 → 3 (clamp); then (8·3 + 64) >> 3 = 11 → 3 (clamp)
    layer.bias = _arr([100, 100, 100, 0])
    layer.cell_bits = 3
    result = golden.run_baseline(model, _arr([[[0], [0]]]), None, trace=True, saturation=True)
    assert result.trace[0]["c"][0, :, 0].tolist() == [3, 3]
    assert result.saturation == [{"c": 2, "acc": 0}]


def test_accumulator_range_violations_are_counted() -> None:
    # z = (5, 0, 0, 0) at each of T = 4 cells; acc_bits 3 holds −4..3: four violations
    model = _leak_model(IF, 5, T=4)
    model.layers[0].acc_bits = 3
    result = golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None, saturation=True)
    assert result.saturation[0]["acc"] == 4
    model.layers[0].acc_bits = 4
    result = golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None, saturation=True)
    assert result.saturation[0]["acc"] == 0


def test_nonspiking_gate_must_match_the_layers() -> None:
    model = _leak_model(IF, 5, T=1)
    model.nonspiking_gate = "i"
    with pytest.raises(ValueError):
        golden.run_spiking(model, np.zeros((1, 1, 1), dtype=np.int64), None)
