"""Stream layouts, payload packing and the OutputSerializer (exact under stalls)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.stream_io import (
    OutputSerializer,
    check_input_mode,
    input_data_width,
    input_layout,
    input_lanes,
    output_layout,
    output_word_count,
    output_word_width,
    pack_input_word,
    readout_range,
    sim_recv,
    sim_send,
    unpack_output_words,
)
from snnhw.quant.frozen import BaselineLayer, FrozenBaseline, IntHead


def _baseline(D: int = 3, H: int = 4, C: int = 3, act_bits: int = 6) -> FrozenBaseline:
    rng = np.random.default_rng(0)
    layer = BaselineLayer(
        w_x=rng.integers(-8, 8, (4 * H, D)), w_h=rng.integers(-8, 8, (4 * H, H)), bias=np.zeros(4 * H, np.int64),
        x_shift=(0, 0, 0, 0), act_mult={g: (1, 1) for g in "figo"}, c_mult=(1, 1), act_shift=0, cell_bits=10,
        acc_bits=16,
    )
    head = IntHead(w_out=rng.integers(-8, 8, (C, H)), b_out=np.zeros(C, np.int64))
    return FrozenBaseline(weight_bits=4, act_bits=act_bits, input_bits=5, input_scale=0.1, layers=[layer], head=head)


def _serialize(count: int, width: int, vectors: list[list[int]], stall: float, idle: float, seed: int):
    dut = OutputSerializer(count, width)
    rng = np.random.default_rng(seed)
    mask = (1 << width) - 1
    payloads = [sum((v & mask) << (k * width) for k, v in enumerate(vec)) for vec in vectors]
    out: dict = {}

    async def source(ctx):
        out["in"] = await sim_send(ctx, dut.i, payloads, rng, idle)

    async def sink(ctx):
        out["words"], out["cycles"] = await sim_recv(ctx, dut.o, count * len(vectors), rng, stall)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    # bounded: a serializer that never completes fails here instead of hanging the suite
    sim.run_until(1e-8 * 50 * (count + 1) * len(vectors))
    assert "words" in out, "the serializer did not deliver every word in time"
    words = []
    for w in out["words"]:
        raw = w & mask
        words.append((raw - (1 << width) if raw >> (width - 1) else raw, w >> width))
    return words, out


@pytest.mark.parametrize("count", [1, 4])
@pytest.mark.parametrize("stall,idle", [(0.0, 0.0), (0.5, 0.3)])
def test_serializer_exact_under_stalls(count, stall, idle):
    rng = np.random.default_rng(count)
    vectors = rng.integers(-32, 32, (7, count)).tolist()
    words, out = _serialize(count, 6, vectors, stall, idle, seed=11)
    expected = [(v, int(k == count - 1)) for vec in vectors for k, v in enumerate(vec)]
    assert words == expected
    if stall == 0.0 and idle == 0.0:
        # back to back: first word one cycle after acceptance, then one word per cycle; the next
        # vector is accepted in the cycle its predecessor's final word moves
        first = out["in"][0] + 1
        assert out["in"] == [first - 1 + v * count for v in range(len(vectors))]
        assert out["cycles"] == list(range(first, first + count * len(vectors)))


def test_serializer_corrupted_expectation_fails():
    words, _ = _serialize(2, 4, [[1, -2]], 0.0, 0.0, seed=0)
    assert words != [(1, 0), (-3, 1)]


def test_layouts_and_modes():
    model = _baseline()
    assert check_input_mode(model, None) == "direct"
    with pytest.raises(ValueError):
        check_input_mode(model, "spikes")
    with pytest.raises(ValueError):
        check_input_mode(model, "bogus")
    assert input_data_width(model, "direct") == 15
    assert input_layout(model, "direct").size == 16
    assert readout_range(model) == (-32, 32)
    assert output_word_width(model, False) == 7
    assert output_layout(model, False).size == 8
    assert output_word_count(model, True) == 4 + 3 + 1
    assert output_word_width(model, True) >= 7


def test_pack_input_word_and_lanes():
    model = _baseline()
    word = pack_input_word(model, "direct", [-16, 15, -1], last=True)
    assert word == (0b10000 | (0b01111 << 5) | (0b11111 << 10) | (1 << 15))
    with pytest.raises(ValueError):
        pack_input_word(model, "direct", [16, 0, 0])
    with pytest.raises(ValueError):
        pack_input_word(model, "direct", [0, 0])
    from amaranth.hdl import Const

    lanes = input_lanes(model, "direct", Const(word & ((1 << 15) - 1), 15))
    assert len(lanes) == 3 and all(len(v) == 5 for v in lanes)


def test_unpack_output_words():
    model = _baseline(H=2, C=2)
    width = output_word_width(model, True)
    mask = (1 << width) - 1
    values = [5, -3, 100, -100, 1]
    payloads = [(v & mask) | (int(k == 4) << width) for k, v in enumerate(values)]
    (rec,) = unpack_output_words(model, payloads, head_in_hw=True)
    assert rec.readout.tolist() == [5, -3] and rec.logits.tolist() == [100, -100] and rec.cls == 1
    with pytest.raises(ValueError):
        unpack_output_words(model, payloads[:-1], head_in_hw=True)
    with pytest.raises(ValueError):
        unpack_output_words(model, payloads[1:], head_in_hw=True)


def test_spike_and_rate_packing():
    from snnhw.quant.synthetic import random_frozen_spiking

    model = random_frozen_spiking(0, input_size=2, hidden_size=4, T=3, encoding="rate", rate_bits=3)
    assert check_input_mode(model, None) == "rate"
    with pytest.raises(ValueError):
        check_input_mode(model, "direct")
    u = np.array([[1, -1], [0, 1], [-1, 0]])  # [T, D]
    word = pack_input_word(model, "spikes", u, last=False)
    assert input_data_width(model, "spikes") == 2 * 3 * 2
    lanes = [(word >> (2 * k)) & 3 for k in range(6)]
    assert lanes == [0b01, 0b11, 0b00, 0b01, 0b11, 0b00]  # lane t·D + d, two's complement
    with pytest.raises(ValueError):
        pack_input_word(model, "spikes", u * 2)
    assert pack_input_word(model, "rate", [-7, 7], last=True) == (0b1001 | (0b0111 << 4) | (1 << 8))
