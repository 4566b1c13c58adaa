"""Memory contents of generated Verilog moved into ``$readmemh`` data files (simulation only).

Amaranth's Verilog back end (Yosys ``write_verilog``) writes the initial contents of every
:class:`amaranth.lib.memory.Memory` (weight, bias and threshold ROMs; the zeroed state RAMs)
as one assignment per word::

    reg [127:0] wmem [127:0];
    initial begin
      wmem[0] = 128'h01ed...;
      ...
    end

:func:`split_memories` replaces each such block by ``initial $readmemh("<file>", wmem);`` and
returns the words, and :func:`write_hex_files` writes them as ``$readmemh`` files: one word per
line, ``ceil(width / 4)`` lower-case hex digits holding exactly the word's ``width`` bits. The
rewritten Verilog (the design's *structure*) is then the same for every model of the same shape,
knobs and logic constants, so one compiled simulator serves them all
(:func:`snnhw.sim.runner.simulate` caches builds by :attr:`SplitDesign.digest`); each run puts
its own model's hex files where ``$readmemh`` reads them: the simulation's working directory
(file names are relative).

Why here and not in :mod:`snnhw.hw.generate`: the synthesis flows (Yosys, Vivado, nextpnr-ecp5
through YoWASP, which only sees its working directory) keep the self-contained inline form that
``snnhw generate`` writes; the split is a step of running a simulator on that file.

A block is rewritten only when it assigns words 0, 1, …, n−1 in order with plain hex (``'h``) or
decimal (``'d``, Yosys' form for 32-bit words) constants of the declared width;
anything else (x/z bits, gaps, other forms) stays inline and is part of the structure.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path


_MODULE = re.compile(r"^module\s+(\\\S+|[A-Za-z_][\w$]*)")
_DECL = re.compile(r"^\s*reg\s+\[(\d+):0\]\s+(\\\S+ |[A-Za-z_][\w$]*)\s*\[(\d+):0\];\s*$")
_WORD = re.compile(r"^\s*(\\\S+ |[A-Za-z_][\w$]*)\[(\d+)\]\s*=\s*(\d+)'([hd])([0-9a-fA-F]+);\s*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")


@dataclass(frozen=True)
class MemoryInit:
    """The initial contents of one memory of the design.

    Attributes:
        module: the Verilog module declaring it (as written, escaped names without the backslash).
        name: the memory's identifier in that module (as written, e.g. ``wmem`` or ``\\x$1 ``).
        width: bits per word.
        depth: declared words (the file may hold fewer: the first ``len(words)``).
        words: the words from address 0 on, each an unsigned integer of ``width`` bits.
        file: the ``$readmemh`` file name (relative; unique within the design).
    """

    module: str
    name: str
    width: int
    depth: int
    words: tuple[int, ...]
    file: str


@dataclass
class SplitDesign:
    """Verilog with its memory contents moved out (:func:`split_memories`).

    Attributes:
        verilog: the rewritten Verilog text (structure only).
        memories: the contents taken out, in file order.
    """

    verilog: str
    memories: list[MemoryInit] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the structure: equal for designs that differ only in memory contents."""
        return hashlib.sha256(self.verilog.encode()).hexdigest()


def hex_file_name(index: int, module: str, name: str, prefix: str = "") -> str:
    """The data file name of memory ``index`` (0-based in file order) of ``module``: unique
    within a file because of the index, readable because of the names (unsafe characters
    become ``_``); ``prefix`` tells files apart when a design has several."""
    safe = _UNSAFE.sub("_", f"{module}.{name.strip()}").strip("_.")
    return f"{prefix}mem{index:03d}_{safe}.hex"


def split_memories(text: str, prefix: str = "") -> SplitDesign:
    """Rewrite every plain memory initialisation block of ``text`` into ``$readmemh``.

    Returns the rewritten text and the contents; ``prefix`` starts every data file name
    (:func:`hex_file_name`). Text outside the rewritten blocks is kept byte for byte; a design
    without such blocks comes back unchanged with no memories.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    memories: list[MemoryInit] = []
    module = ""
    declared: dict[str, tuple[int, int]] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        found = _MODULE.match(line)
        if found:
            module, declared = found.group(1).lstrip("\\"), {}
        decl = _DECL.match(line)
        if decl:
            declared[decl.group(2)] = (int(decl.group(1)) + 1, int(decl.group(3)) + 1)
        block = _init_block(lines, i, declared) if line.strip() == "initial begin" else None
        if block is None:
            out.append(line)
            i += 1
            continue
        name, words, end = block
        width, depth = declared[name]
        mem = MemoryInit(module, name, width, depth, tuple(words), hex_file_name(len(memories), module, name, prefix))
        memories.append(mem)
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f'{indent}initial $readmemh("{mem.file}", {name});\n')
        i = end + 1
    return SplitDesign("".join(out), memories)


def _init_block(lines: list[str], start: int, declared: dict[str, tuple[int, int]]) -> tuple[str, list[int], int] | None:
    """(memory name, words, index of the ``end`` line) of the block opening at ``lines[start]``
    when it is a plain in-order initialisation of one declared memory, else None."""
    name: str | None = None
    words: list[int] = []
    for j in range(start + 1, len(lines)):
        if lines[j].strip() == "end":
            return (name, words, j) if name is not None and words else None
        word = _WORD.match(lines[j])
        if word is None:
            return None
        if name is None:
            name = word.group(1)
        width, depth = declared.get(name, (0, 0))
        if (word.group(1) != name or int(word.group(2)) != len(words) or int(word.group(3)) != width
                or len(words) >= depth):
            return None
        try:  # Yosys writes 32-bit words in decimal ('d), others in hex ('h)
            value = int(word.group(5), 16 if word.group(4) == "h" else 10)
        except ValueError:
            return None
        if value >> width:
            return None
        words.append(value)
    return None


def hex_text(mem: MemoryInit) -> str:
    """The ``$readmemh`` file of ``mem``: one word per line, ``ceil(width / 4)`` hex digits."""
    digits = (mem.width + 3) // 4
    return "".join(f"{w:0{digits}x}\n" for w in mem.words)


def write_hex_files(design: SplitDesign, directory: Path) -> list[Path]:
    """Write the data file of every memory of ``design`` into ``directory`` (created); returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for mem in design.memories:
        path = directory / mem.file
        path.write_text(hex_text(mem))
        paths.append(path)
    return paths

