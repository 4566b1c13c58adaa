"""Memory contents in ``$readmemh`` files (``snnhw.sim.memory_files``) and build reuse.

* The rewrite round-trips: the hex files hold exactly the words of the inline ``initial``
  blocks, and rebuilding those blocks from the files gives the generated Verilog byte for byte.
* Two models that differ in weights, biases and neuron constants (the second: each weight row
  and each gate's biases permuted, every threshold, bias shift and clip bound moved by ±1,
  ``same_structure_twin``) have one structure: the second model's run
  reuses the first one's compiled simulator and both are bit-exact; a corrupted bias word
  reaches the simulator through its hex file (same build) and the verification fails, located.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from simfixtures import batch_inputs, generate_core

from snnhw.hw.knobs import SpikingKnobs
from snnhw.quant.synthetic import random_frozen_spiking, same_structure_twin
from snnhw.errors import UserError
from snnhw.sim.memory_files import split_memories, write_hex_files
from snnhw.sim.runner import SIMULATORS, simulator_missing
from snnhw.sim.stimulus import default_modes
from snnhw.sim.verify import verify_core

SMALL = {"input_size": 3, "hidden_size": 4, "T": 2}
KNOBS = SpikingKnobs(lanes=2, fanin=2)
INIT_WORD = re.compile(r"^\s+\S+ ?\[\d+\] = \d+'h([0-9a-f]+);$")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory):
    """(model, schedule, Verilog path) of a small spiking model and of its twin with permuted
    weights and biases and moved neuron constants (:func:`~snnhw.quant.synthetic.same_structure_twin`)."""
    root = tmp_path_factory.mktemp("hexmem")
    model = random_frozen_spiking(7, **SMALL)
    out = []
    for name, m in (("a", model), ("b", same_structure_twin(model, 1))):
        schedule, verilog = generate_core(m, KNOBS, root / name)
        out.append((m, schedule, verilog))
    return out


def read_hex_file(path: Path, width: int) -> list[int]:
    """The words of a ``$readmemh`` file written by :func:`~snnhw.sim.memory_files.write_hex_files`
    (each checked to fit ``width`` bits)."""
    words = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        try:
            value = int(line, 16)
        except ValueError:
            raise UserError(f"{path}:{number}: {line!r} is not a hex word") from None
        if value >> width:
            raise UserError(f"{path}:{number}: {line} does not fit {width} bits")
        words.append(value)
    return words


def inline_block(name: str, width: int, words: list[int], indent: str = "  ") -> str:
    """The ``initial`` block Yosys writes for these words (``ceil(width / 4)`` hex digits)."""
    digits = (width + 3) // 4
    body = "".join(f"{indent}  {name}[{k}] = {width}'h{w:0{digits}x};\n" for k, w in enumerate(words))
    return f"{indent}initial begin\n{body}{indent}end\n"


def test_rewrite_round_trips(two_models, tmp_path: Path) -> None:
    text = two_models[0][2].read_text()
    design = split_memories(text)
    paths = write_hex_files(design, tmp_path)
    assert len(design.memories) >= 3
    names = [m.name for m in design.memories]
    assert len(set(names)) < len(names), "memories of one name in several modules (wmem) need unique files"
    assert len({p.name for p in paths}) == len(paths)
    inline = [int(m.group(1), 16) for line in text.splitlines() if (m := INIT_WORD.match(line))]
    from_files = [w for mem, p in zip(design.memories, paths) for w in read_hex_file(p, mem.width)]
    assert from_files == inline
    rebuilt = design.verilog
    for mem, path in zip(design.memories, paths):
        line = f'  initial $readmemh("{mem.file}", {mem.name});\n'
        assert rebuilt.count(line) == 1
        rebuilt = rebuilt.replace(line, inline_block(mem.name, mem.width, read_hex_file(path, mem.width)))
    assert rebuilt == text
    assert not any(INIT_WORD.match(line) for line in design.verilog.splitlines()), "every block rewritten"


def test_same_shape_models_share_one_structure(two_models) -> None:
    a, b = (split_memories(v.read_text()) for _, _, v in two_models)
    assert a.digest == b.digest
    assert [m.file for m in a.memories] == [m.file for m in b.memories]
    changed = {x.name.strip() for x, y in zip(a.memories, b.memories) if x.words != y.words}
    assert {"wmem", "bmem", "constants"} <= changed, changed


def corrupted(verilog: Path, out_dir: Path) -> Path:
    """A copy of ``verilog`` (same file name, in ``out_dir``) with every bit of word 0 of its bias
    memory ``bmem`` inverted."""
    text = verilog.read_text()
    line = next(m for m in re.finditer(r"^(\s+bmem\[0\] = (\d+)'h)([0-9a-f]+);$", text, re.MULTILINE))
    width = int(line.group(2))
    bad = int(line.group(3), 16) ^ ((1 << width) - 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / verilog.name
    out.write_text(text[:line.start(3)] + f"{bad:0{len(line.group(3))}x}" + text[line.end(3):])
    return out


@pytest.mark.sim
@pytest.mark.parametrize("sim", SIMULATORS)
def test_second_model_reuses_the_build(sim: str, two_models, tmp_path: Path) -> None:
    reason = simulator_missing(sim)
    if reason:
        pytest.skip(f"{sim}: {reason}")
    builds = tmp_path / "builds"
    reports = []
    for name, (model, schedule, verilog) in zip(("a", "b"), two_models):
        x, lengths = batch_inputs(model, 5, 3, 4)
        reports.append(verify_core(model, schedule, verilog, x, lengths, tmp_path / name, knobs=KNOBS, sim=sim,
                                   modes=default_modes(5), build_dir=builds))
    first, second = reports
    assert first.passed and second.passed, (first.message, second.message)
    assert not first.build_reused and second.build_reused
    assert len(list(builds.glob(f"{sim}-*"))) == 1
    assert second.build_s < 1.0 < first.build_s or sim == "icarus"

    model, schedule, verilog = two_models[1]
    bad = corrupted(verilog, tmp_path / "bad-rtl")
    x, lengths = batch_inputs(model, 5, 3, 4)
    report = verify_core(model, schedule, bad, x, lengths, tmp_path / "bad", knobs=KNOBS, sim=sim,
                         modes=default_modes(5), build_dir=builds)
    hex_good = min((tmp_path / "b").glob("*bmem.hex")).read_text().splitlines()
    hex_bad = min((tmp_path / "bad").glob("*bmem.hex")).read_text().splitlines()
    assert [k for k, (g, h) in enumerate(zip(hex_good, hex_bad)) if g != h] == [0]
    assert report.build_reused and not report.passed
    assert report.first_mismatch is not None, report.message
    print(f"corrupted bias word: {report.message}")


def test_decimal_words_are_split_too() -> None:
    """Yosys writes 32-bit words in decimal (``32'd…``): such a block is data like a hex one, so
    two designs that differ only in it share one structure (one fuzz twin missed its build reuse
    before); a non-decimal digit after ``'d`` keeps the block inline."""
    def design(words: list[int], radix: str = "d") -> str:
        body = "".join(f"    wmem[{k}] = 32'{radix}{w};\n" for k, w in enumerate(words))
        return ("module top(clk);\n  input clk;\n  reg [31:0] wmem [1:0];\n  initial begin\n" + body
                + "  end\nendmodule\n")

    a, b = split_memories(design([91255825, 3])), split_memories(design([275789076, 16777219]))
    assert a.digest == b.digest and [m.words for m in a.memories] == [(91255825, 3)]
    assert b.memories[0].words == (275789076, 16777219)
    assert not split_memories(design([12, 3]).replace("32'd12", "32'd1f")).memories
