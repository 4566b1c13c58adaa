"""On-chip rate encoder: one xorshift32 generator per input feature (contract §1, ``arith.rate_spikes``).

For one sequence element the block produces the spikes of all T time steps at once (the T
generator steps are cascaded XOR networks, no arithmetic): for t = 1..T every generator steps
(``s ^= s<<13; s ^= s>>17; s ^= s<<5``, 32 bits), ``r = s >> (32 − R)``, and
``u(n,t)[d] = sign(x_q[d])`` if ``r < |x_q[d]|`` else 0. The generator state is reset to the
seeds at every sequence start (``restart``).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from snnhw.hw.adder_tree import SPIKE_SHAPE


def xorshift32_expr(s: Value) -> Value:
    """One xorshift32 step (13, 17, 5) on a 32-bit value: XOR-shift network, no carry."""
    s = s ^ (s << 13)[:32]
    s = s ^ (s >> 17)
    return s ^ (s << 5)[:32]


class RateEncoder(wiring.Component):
    """Spikes of one element for all T steps from its rate-quantized input (exact ``arith.rate_spikes``).

    Parameters:
        seeds: D non-zero 32-bit generator seeds (``FrozenSpiking.lfsr_seeds``).
        T: time steps (≥ 1). rate_bits: R (1..31).

    Ports:
        x: In(ArrayLayout(signed(R+1), D)): x_q of the element (|x_q| ≤ 2^R − 1).
        restart: In(1): the element is a sequence's first (encode from the seeds).
        step: In(1): commit the generators' state after this element's T steps.
        spikes: Out(ArrayLayout(signed(2), T·D)): u(n,t)[d] at lane t·D + d (the "spikes"
            input-mode word layout).
    """

    def __init__(self, seeds, T: int, rate_bits: int) -> None:
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("RateEncoder needs at least one seed (one per input feature)")
        for s in seeds:
            if not 0 < s < (1 << 32):
                raise ValueError(f"RateEncoder seed {s} is not a non-zero 32-bit value")
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"RateEncoder T must be an integer ≥ 1, not {T!r}")
        if not isinstance(rate_bits, int) or not 1 <= rate_bits <= 31:
            raise ValueError(f"RateEncoder rate_bits must be in 1..31, not {rate_bits!r}")
        self.seeds, self.T, self.rate_bits, self.D = seeds, T, rate_bits, len(seeds)
        super().__init__({
            "x": In(data.ArrayLayout(signed(rate_bits + 1), self.D)),
            "restart": In(1),
            "step": In(1),
            "spikes": Out(data.ArrayLayout(SPIKE_SHAPE, T * self.D)),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``x``/``restart`` to ``spikes``: 0 (combinational; the state updates on ``step``)."""
        return 0

    def elaborate(self, platform):
        m = Module()
        R = self.rate_bits
        for d, seed in enumerate(self.seeds):
            state = Signal(32, init=seed, name=f"state_{d}")
            s = Mux(self.restart, Const(seed, 32), state)
            x = self.x[d]
            mag = Mux(x < 0, -x, x)[:R]
            sign = Mux(x < 0, Const(-1, SPIKE_SHAPE), Const(1, SPIKE_SHAPE))
            for t in range(self.T):
                s = xorshift32_expr(s)
                nxt = Signal(32, name=f"s_{d}_{t}")
                m.d.comb += nxt.eq(s)
                s = nxt
                m.d.comb += self.spikes[t * self.D + d].eq(Mux(s[32 - R:] < mag, sign, 0))
            with m.If(self.step):
                m.d.sync += state.eq(s)
        return m
