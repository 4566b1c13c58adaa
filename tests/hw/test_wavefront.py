# amaranth: UnusedElaboratable=no
"""LayerWavefront driven diagonal by diagonal: every h(n, t) it writes and its readout equal the
golden trace, each diagonal step takes exactly ``beats + latency`` cycles, invalid slots (fed
garbage) never disturb valid ones.
"""

from __future__ import annotations

from math import ceil

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.wavefront import LayerWavefront
from snnhw.quant import golden
from snnhw.quant.synthetic import random_frozen_spiking, random_inputs

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _nz_per_group(wf: LayerWavefront, u_slots: list, h_prev_slots: list) -> list[list[int]]:
    """Chunks with a nonzero spike in a valid slot, per issue group and pass (the event schedule)."""
    out = []
    for group in wf.issue_groups:
        counts = []
        for p in range(wf.P):
            mask = np.zeros(wf.C, dtype=bool)
            for e in group:
                t = p * wf.engines + e
                if t >= wf.T or u_slots[t] is None:
                    continue
                for c in range(wf.C_in):
                    mask[c] |= bool(np.any(u_slots[t][c * wf.fanin:(c + 1) * wf.fanin]))
                if h_prev_slots[t] is not None:
                    for c in range(wf.C_rec):
                        mask[wf.C_in + c] |= bool(np.any(h_prev_slots[t][c * wf.fanin:(c + 1) * wf.fanin]))
            counts.append(int(mask.sum()))
        out.append(counts)
    return out


def _run(T: int, engines: int, lanes: int, fanin: int, event_driven: bool, N: int, seed: int,
         ns: str = "g", leak: str = "if", event_mode: str = "engine", corrupt: bool = False) -> list[str]:
    model = random_frozen_spiking(seed, input_size=3, hidden_size=5, T=T, encoding="rate", nonspiking_gate=ns,
                                  leak=leak)
    layer = model.layers[0]
    x, lens = random_inputs(model, seed, 1, N, False, spikes=True)
    ref = golden.run_spiking(model, None, lens, spikes_in=x, trace=True)
    h_ref = ref.trace[0]["h"][0].copy()
    if corrupt:
        h_ref[N - 1, T - 1, 0] = 1 - abs(h_ref[N - 1, T - 1, 0])
    wf = LayerWavefront(layer, T=T, weight_bits=model.weight_bits, lanes=lanes, fanin=fanin, engines=engines,
                        direct_input=False, event_driven=event_driven, readout=True, event_mode=event_mode)
    rng = np.random.default_rng(seed + 100)
    bad: list[str] = []

    async def tb(ctx):
        ctx.set(wf.readout_clear, 1)
        await ctx.tick()
        ctx.set(wf.readout_clear, 0)
        for k in range(N + T - 1):
            ctx.set(wf.parity, k % 2)
            u_slots, h_slots = [], []
            for t in range(T):
                n = k - t
                valid = 0 <= n < N
                ctx.set(wf.flags[t].valid, int(valid))
                ctx.set(wf.flags[t].first, int(n == 0))
                ctx.set(wf.flags[t].last, int(n == N - 1))
                u = x[0, n, t] if valid else rng.integers(-1, 2, size=3)  # garbage in invalid slots
                for d in range(3):
                    ctx.set(wf.u[t][d], int(u[d]))
                u_slots.append(u if valid else None)
                h_slots.append(h_ref[n - 1, t] if valid and n > 0 else None)
            beats = wf.beats(_nz_per_group(wf, u_slots, h_slots) if event_driven else None)
            ctx.set(wf.start, 1)
            await ctx.tick()
            ctx.set(wf.start, 0)
            cycles = 1  # the start cycle; done comes `beats + latency` cycles after it
            while not ctx.get(wf.done):
                await ctx.tick()
                cycles += 1
            if cycles != beats + wf.latency:
                bad.append(f"diagonal {k}: done after {cycles} cycles, expected {beats + wf.latency}")
            await ctx.tick()
            ctx.set(wf.parity, (k + 1) % 2)  # the written buffer becomes the read buffer
            for t in range(T):
                n = k - t
                if 0 <= n < N:
                    got = [ctx.get(wf.h_prev[t][j]) for j in range(5)]
                    if got != h_ref[n, t].tolist():
                        bad.append(f"h({n},{t}) = {got}, golden {h_ref[n, t].tolist()}")
        got = [ctx.get(wf.readout[j]) for j in range(5)]
        if got != ref.readout[0].tolist():
            bad.append(f"readout {got}, golden {ref.readout[0].tolist()}")

    sim = Simulator(wf)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return bad


@pytest.mark.parametrize("T,engines,lanes,fanin,event,ns,leak,mode", [
    (3, 3, 2, 2, False, "g", "if", "engine"),
    (4, 3, 3, 1, False, "i", "lif", "engine"),
    (4, 2, 2, 2, True, "g", "gt1", "shared"),
    (4, 3, 2, 1, True, "g", "if", "engine"),
    (2, 1, 5, 3, True, "i", "if", "engine"),
])
def test_wavefront_matches_golden_trace(T, engines, lanes, fanin, event, ns, leak, mode) -> None:
    assert _run(T, engines, lanes, fanin, event, N=4, seed=T + engines, ns=ns, leak=leak, event_mode=mode) == []


def test_wavefront_fails_on_corrupted_expectation() -> None:
    bad = _run(2, 2, 2, 2, False, N=3, seed=1, corrupt=True)
    assert len(bad) == 1 and bad[0].startswith("h(2,1)")


def test_wavefront_geometry_and_validation() -> None:
    model = random_frozen_spiking(1, input_size=3, hidden_size=5, T=4, encoding="rate")
    wf = LayerWavefront(model.layers[0], T=4, weight_bits=8, lanes=2, fanin=2, engines=3, direct_input=False,
                        event_driven=False, readout=False)
    assert (wf.P, wf.G, wf.C_in, wf.C_rec) == (2, 3, 2, 3)
    assert wf.beats() == 2 * 3 * 5 and wf.beats([[0, 2]]) == 3 * 1 + 3 * 2 and wf.latency == 4
    assert wf.beats([[0, 2], [4, 4]]) == 3 * 4 + 3 * 4 and wf.issue_groups == [[0, 1, 2]]
    assert ceil(5 / 2) == wf.G
    with pytest.raises(ValueError):
        LayerWavefront(model.layers[0], T=4, weight_bits=8, lanes=2, fanin=2, engines=5, direct_input=False,
                       event_driven=False, readout=False)
