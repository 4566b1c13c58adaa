"""The MAC array of the baseline core: ``rows`` accumulators, ``fanin`` multipliers each.

Every enabled cycle each row r computes

    acc[r] <= (accumulate ? acc[r] : init[r]) + Σ_{k<fanin} weights[r·fanin + k] · inputs[k]

i.e. ``fanin`` true (variable × variable) products summed by an adder tree into a registered
accumulator. The input vector is shared by all rows (one chunk of x or h broadcast), the weights
are one ROM word. ``rows × fanin`` multipliers in all (DSP48 slices on 7-series).

With ``product_registers`` ≥ 1 the products are registered first and summed into the accumulator
one cycle later (two with 2: the first register can move into the multiplier block, ECP5, and the
second sits in the fabric by the adder tree) (``en`` and ``accumulate`` delayed with them), so that no clock path holds both a
multiplier and the adder tree. With ``operand_registers`` ≥ 1 the operands (``weights`` and
``inputs``, together, so that they stay aligned) are registered before the multipliers as well
(``en`` and ``accumulate`` along): the logic that selects them (a ROM read, an operand
multiplexer) and the multipliers are in different cycles. With 2 they are registered twice: the
second register has nothing but the first one and its multiplier around it, so that it can move
into the multiplier block (ECP5: :mod:`snnhw.flow.ecp5_dsp`), where the first one's fan-out to
every row stays a register-to-register path. With ``sum_register`` each row's adder-tree sum is
registered before the accumulator (``en`` and ``accumulate`` along), so that the accumulator adds
two operands: synthesis otherwise folds the fan-in products, the accumulator and its
``accumulate`` / ``init`` selection into one carry-save tree, whose select inputs then pass
several LUT levels before the carry chain (the H = 128 baseline's critical path on ECP5,
``docs/open-flow.md``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from snnhw.hw.leak_unit import delayed


class MacArray(wiring.Component):
    """``rows`` multiply-accumulate units of ``fanin`` synapses per cycle.

    Args:
        rows: accumulators (the baseline core uses ``4·lanes``: every gate of every lane).
        fanin: products per row per cycle.
        weight_bits: signed width of a weight.
        input_bits: signed width of an input (activation) value.
        acc_bits: signed width of an accumulator; the caller sizes it so no partial sum
            overflows (it wraps otherwise, like any register).
        product_registers: 0, 1 or 2 registers on the ``rows·fanin`` products (``weight_bits +
            input_bits`` bits each) before the adder trees: one more cycle of latency each.
        operand_registers: 0, 1 or 2 registers on ``weights`` and ``inputs`` before the
            multipliers: one more cycle of latency each.
        weights_late: ``weights`` arrive a cycle after their step's ``en``, ``accumulate`` and
            ``inputs`` (a ROM whose read is registered, :class:`~snnhw.hw.memories.PackedRom`
            with ``bank_depth``), so those three are registered once first (``en_w``,
            ``accumulate_w``, ``inputs_w``): one more cycle of latency.
        sum_register: register every row's adder-tree sum (at its own width: a product's bits
            plus ⌈log2 fanin⌉) before its accumulator: one more cycle of latency.

    Ports:
        weights: ``In(ArrayLayout(signed(weight_bits), rows·fanin))``, weight k of row r at
            index ``r·fanin + k``.
        inputs: ``In(ArrayLayout(signed(input_bits), fanin))``, shared by every row.
        init: ``In(ArrayLayout(signed(acc_bits), rows))``, the start value when not
            accumulating, sampled when the step reaches the accumulators (``latency − 1``
            cycles after its ``en``), so that it may depend on ``acc`` after every earlier step.
        en: ``In(1)``, a step: its products go into the accumulators.
        accumulate: ``In(1)``, add them to the accumulator (1) or to ``init`` (0).
        acc: ``Out(ArrayLayout(signed(acc_bits), rows))``, the accumulators.

    Latency (:attr:`latency`): the sum of a cycle with ``en`` is in ``acc`` the next cycle (1),
    a cycle later per product register, per operand register, with the sum register and with
    late weights (2 to 7);
    steps follow one per cycle.
    """

    def __init__(self, rows: int, fanin: int, weight_bits: int, input_bits: int, acc_bits: int, *,
                 product_registers: int = 0, operand_registers: int = 0, weights_late: bool = False,
                 sum_register: bool = False) -> None:
        for name, value in (("rows", rows), ("fanin", fanin), ("weight_bits", weight_bits),
                            ("input_bits", input_bits), ("acc_bits", acc_bits)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if acc_bits < weight_bits + input_bits:
            raise ValueError(f"acc_bits {acc_bits} is narrower than one product ({weight_bits + input_bits} bits)")
        self.rows, self.fanin = rows, fanin
        self.weight_bits, self.input_bits, self.acc_bits = weight_bits, input_bits, acc_bits
        if operand_registers not in (0, 1, 2):
            raise ValueError(f"operand_registers must be 0, 1 or 2, not {operand_registers!r}")
        if product_registers not in (0, 1, 2):
            raise ValueError(f"product_registers must be 0, 1 or 2, not {product_registers!r}")
        self.product_registers = int(product_registers)
        self.operand_registers = int(operand_registers)
        self.sum_register = bool(sum_register)
        self.weights_late = bool(weights_late)
        super().__init__(
            {
                "weights": In(data.ArrayLayout(signed(weight_bits), rows * fanin)),
                "inputs": In(data.ArrayLayout(signed(input_bits), fanin)),
                "init": In(data.ArrayLayout(signed(acc_bits), rows)),
                "en": In(1),
                "accumulate": In(1),
                "acc": Out(data.ArrayLayout(signed(acc_bits), rows)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from an enabled step to its sum in ``acc``: 1 + ``product_registers`` +
        ``operand_registers`` (+ 1 with ``sum_register``, + 1 with ``weights_late``)."""
        return 1 + self.product_registers + self.operand_registers + int(self.sum_register) + int(self.weights_late)

    @property
    def multipliers(self) -> int:
        """Variable × variable multipliers instantiated: rows × fanin."""
        return self.rows * self.fanin

    def elaborate(self, platform) -> Module:
        m = Module()
        acc = Signal(data.ArrayLayout(signed(self.acc_bits), self.rows))
        m.d.comb += self.acc.eq(acc)
        en, accumulate = self.en, self.accumulate
        weights, inputs = self.weights, self.inputs
        if self.weights_late:  # wait for the weights
            en, accumulate = delayed(m, en, "en_w"), delayed(m, accumulate, "accumulate_w")
            inputs = delayed(m, inputs, "inputs_w")
        for level in range(self.operand_registers):  # names: weights_o, then weights_o2
            suffix = "_o" if level == 0 else f"_o{level + 1}"
            en, accumulate = delayed(m, en, "en" + suffix), delayed(m, accumulate, "accumulate" + suffix)
            weights, inputs = delayed(m, weights, "weights" + suffix), delayed(m, inputs, "inputs" + suffix)
        for level in range(self.product_registers):  # names: en_p, then en_p2
            suffix = "_p" if level == 0 else f"_p{level + 1}"
            en, accumulate = delayed(m, en, "en" + suffix), delayed(m, accumulate, "accumulate" + suffix)
        if self.sum_register:
            en, accumulate = delayed(m, en, "en_s"), delayed(m, accumulate, "accumulate_s")
        for r in range(self.rows):
            terms = [weights[r * self.fanin + k] * inputs[k] for k in range(self.fanin)]
            for level in range(self.product_registers):  # product_<r>_<k>, then product2_<r>_<k>
                prefix = "product" if level == 0 else f"product{level + 1}"
                terms = [delayed(m, term, f"{prefix}_{r}_{k}") for k, term in enumerate(terms)]
            while len(terms) > 1:  # balanced adder tree
                terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k] for k in range(0, len(terms), 2)]
            total = terms[0]
            if self.sum_register:
                total = Signal(Value.cast(terms[0]).shape(), name=f"tree_sum_{r}")
                m.d.sync += total.eq(terms[0])
            with m.If(en):
                m.d.sync += acc[r].eq(Mux(accumulate, acc[r], self.init[r]) + total)
        return m
