# amaranth: UnusedElaboratable=no
"""``snnhw build`` end to end on tiny synthetic models, and the self-checking top with the real cores.

The builds here skip Yosys (``yosys=False``) to stay fast; the verification step runs in the
slow test only (the cocotb flow has its own tests in ``tests/sim``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.cli import main
from snnhw.errors import UserError
from snnhw.flow.build import STEPS, BuildOptions, run_build, selfcheck_words
from snnhw.flow.selfcheck import SelfCheckTop
from snnhw.hw.registry import core_spec, shared_knobs
from snnhw.quant.frozen_io import save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking, random_inputs


def tiny_models(tmp_path: Path) -> tuple[Path, Path]:
    spiking = save_frozen(tmp_path / "tiny.snnhw", random_frozen_spiking(1, input_size=3, hidden_size=4, T=2))
    baseline = save_frozen(tmp_path / "tiny.baseline.snnhw", random_frozen_baseline(2, input_size=3, hidden_size=4))
    return spiking, baseline


def tiny_options(tmp_path: Path, **changes: object) -> BuildOptions:
    spiking, baseline = tiny_models(tmp_path)
    opts = BuildOptions(models=[spiking, baseline], out_dir=tmp_path / "out", verify=False, yosys=False,
                        knobs=shared_knobs(lanes=2, fanin=2), progress=False)
    for key, value in changes.items():
        setattr(opts, key, value)
    return opts


def test_build_writes_every_step_and_the_report(tmp_path: Path) -> None:
    result = run_build(tiny_options(tmp_path))
    out = tmp_path / "out"
    assert result.exit_code == 0
    for step in STEPS:
        record = json.loads((out / f"{step}.json").read_text())
        assert record["step"] == step and record["seconds"] >= 0
        assert record["status"] == ("skipped" if step in ("budget", "timing", "verify", "yosys", "pnr", "vivado")
                                    else "ok"), step
    assert json.loads((out / "verify.json").read_text())["reason"] == "--no-verify"
    assert json.loads((out / "budget.json").read_text())["reason"].startswith("no --budget")
    assert json.loads((out / "yosys.json").read_text())["reason"] == "--no-yosys"
    assert "not requested" in json.loads((out / "vivado.json").read_text())["reason"]
    for name in ("rtl/spiking_core.v", "rtl/baseline_core.v", "rtl/spiking_core.manifest.json",
                 "model/spiking.snnhw", "model/baseline.snnhw", "board/snnhw_top.v", "board/snnhw_top.tcl",
                 "board/build_snnhw_top.sh", "board/selfcheck_roms.json", "vivado/spiking_ooc.tcl",
                 "vivado/baseline_ooc.tcl", "vivado/spiking_core.v", "report.json", "report.md", "latency.png",
                 "build.json", "reports.json"):
        assert (out / name).is_file(), name
    # every artefact a step lists exists (relative to the build directory)
    for step in STEPS:
        for path in json.loads((out / f"{step}.json").read_text())["artefacts"].values():
            assert (out / path).exists(), (step, path)
    report = json.loads((out / "report.json").read_text())
    lat = report["latency"]
    # the model records no N and the build has no data: its random sequences' N first, then the references
    assert lat["N"] == [16, 28, 81, 128] and lat["rows"][0] == "this model"
    assert lat["rows"][1:] == ["reference: T-MNIST rows", "reference: GSC frames", "reference: UCI HAR samples"]
    assert all(s < r for s, r in zip(lat["cores"]["spiking"], lat["serial"]))
    assert lat["cores"]["baseline"][1] == lat["schedules"]["baseline"]["per_element"] * 28 + \
        lat["schedules"]["baseline"]["fixed"]
    assert "resources" not in report and "accuracy" not in report  # not measured, not faked
    md = (out / "report.md").read_text()
    assert "resources not measured" in md and "Not run (`--no-verify`)" in md
    board = json.loads((out / "board.json").read_text())
    assert board["board"]["name"] == "kc705" and board["selfcheck"]["sequences"] == 2
    assert "xc7k325t" in (out / "board" / "snnhw_top.tcl").read_text()
    assert "create_clock -name clk -period 6.410" in (out / "vivado" / "spiking_ooc.xdc").read_text()


def test_unknown_board_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unknown board 'zedboard'; known boards: .*kc705"):
        run_build(tiny_options(tmp_path, board="zedboard"))


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--model", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    baseline = save_frozen(tmp_path / "b.snnhw", random_frozen_baseline(2, input_size=3, hidden_size=4))
    assert main(["build", "--model", str(baseline), "-o", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "needs a spiking model" in capsys.readouterr().err


def run_selfcheck(top: SelfCheckTop, max_cycles: int) -> tuple[int, int, int, int]:
    """Simulate ``top`` until done (or ``max_cycles``); returns (done, passed, failed, errors)."""
    sim = Simulator(top)
    sim.add_clock(1e-8)
    result: dict[str, int] = {}

    async def bench(ctx) -> None:  # noqa: ANN001
        for _ in range(max_cycles):
            await ctx.tick()
            if ctx.get(top.done):
                break
        await ctx.tick()
        result.update(done=ctx.get(top.done), passed=ctx.get(top.passed), failed=ctx.get(top.failed),
                      errors=ctx.get(top.errors))

    sim.add_testbench(bench)
    sim.run()
    return result["done"], result["passed"], result["failed"], result["errors"]


@pytest.mark.parametrize("kind", ["spiking", "baseline"])
def test_selfcheck_top_with_the_real_core(kind: str) -> None:
    """The real core in the self-checking top passes on golden expectations and fails when one
    expected ROM word is corrupted (first, middle, last word; data and last bits)."""
    from snnhw.hw.stream_io import output_word_width

    spec = core_spec(kind)
    model = (random_frozen_spiking(3, input_size=3, hidden_size=4, T=2) if kind == "spiking"
             else random_frozen_baseline(4, input_size=3, hidden_size=4))
    knobs = shared_knobs(lanes=2, fanin=2)[kind]

    def make() -> object:
        return spec.build(model, knobs)
    x, lengths = random_inputs(model, 5, 2, 5)
    in_words, expected, cycles = selfcheck_words(model, spec.schedule_of(model, knobs), x, lengths)
    assert len(in_words) == int(lengths.sum()) and len(expected) == 2 * model.hidden_size
    budget = cycles + 50
    assert run_selfcheck(SelfCheckTop(make(), in_words, expected), budget) == (1, 1, 0, 0)
    last_flag = 1 << output_word_width(model, False)
    final = len(expected) - 1
    for index, flip in ((0, 1), (final // 2, 2), (final, last_flag)):
        corrupted = list(expected)
        corrupted[index] ^= flip
        assert run_selfcheck(SelfCheckTop(make(), in_words, corrupted), budget) == (1, 0, 1, 1), index


def test_selfcheck_rom_words_follow_the_interface() -> None:
    """Expected words are ``(data mod 2^Wo) | last << Wo`` with last on each sequence's final word."""
    from snnhw.hw.stream_io import output_word_width, unpack_output_words
    from snnhw.quant.golden import run_spiking

    model = random_frozen_spiking(3, input_size=3, hidden_size=4, T=2)
    x, lengths = random_inputs(model, 7, 3, 6)
    _, expected, _ = selfcheck_words(model, core_spec("spiking").schedule_of(model, shared_knobs(lanes=2, fanin=2)
                                                                            ["spiking"]), x, lengths)
    width = output_word_width(model, False)
    assert [w >> width for w in expected] == [0, 0, 0, 1] * 3
    records = unpack_output_words(model, expected, head_in_hw=False)
    golden = run_spiking(model, x, lengths).readout
    assert np.array_equal(np.stack([r.readout for r in records]), golden)


@pytest.mark.slow
def test_build_with_verification(tmp_path: Path) -> None:
    """The full build with the cocotb verification of both cores (Icarus) passes."""
    result = run_build(tiny_options(tmp_path, verify=True, verify_sequences=2))
    assert result.exit_code == 0
    verify = json.loads((tmp_path / "out" / "verify.json").read_text())
    assert verify["status"] == "ok" and verify["passed"]
    assert set(verify["cores"]) == {"spiking", "baseline"}
    assert (tmp_path / "out" / "vivado" / "spiking.saif").is_file()
    assert "read_saif" in (tmp_path / "out" / "vivado" / "spiking_ooc.tcl").read_text()


@pytest.mark.slow
def test_a_mismatch_fails_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RTL generated from a different spiking model (same shapes) fails verification: exit 1,
    ``verify.json`` failed with the located mismatch, the report still written, saying FAILED."""
    import snnhw.hw.generate as generate_module

    real = generate_module.generate
    other = random_frozen_spiking(9, input_size=3, hidden_size=4, T=2)

    def wrong_rtl(cores: list, out_dir: object, **kwargs: object) -> dict:
        return real([(other, knobs) if isinstance(model, type(other)) else (model, knobs) for model, knobs in cores],
                    out_dir, **kwargs)

    monkeypatch.setattr(generate_module, "generate", wrong_rtl)
    result = run_build(tiny_options(tmp_path, verify=True, verify_sequences=2))
    out = tmp_path / "out"
    assert result.exit_code == 1
    verify = json.loads((out / "verify.json").read_text())
    assert verify["status"] == "failed" and "RTL does not match the golden model" in verify["reason"]
    assert "spiking" in verify["reason"] and "board" not in result.records
    assert verify["cores"]["spiking"]["first_mismatch"] is not None and verify["cores"]["baseline"]["passed"]
    assert "**FAILED**" in (out / "report.md").read_text()


def test_spiking_only_build(tmp_path: Path) -> None:
    """A frozen spiking model alone builds; the baseline columns say — instead of a figure."""
    spiking, _ = tiny_models(tmp_path)
    opts = tiny_options(tmp_path)
    opts.models = [spiking]
    assert run_build(opts).exit_code == 0
    out = tmp_path / "out"
    assert not (out / "rtl" / "baseline_core.v").exists() and (out / "vivado" / "spiking_ooc.tcl").is_file()
    report = json.loads((out / "report.json").read_text())
    assert list(report["latency"]["cores"]) == ["spiking"] and [c["name"] for c in report["cores"]] == ["spiking"]
    assert "| 28 | " in (out / "report.md").read_text()


def test_auto_knobs_scale_with_the_model(tmp_path: Path) -> None:
    """One automatic rule (snnhw.hw.knobs) sizes every core to its model, in every command."""
    from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs, auto_engines, auto_width

    assert [auto_width(h) for h in (4, 16, 32, 128, 512)] == [1, 2, 4, 8, 8]
    assert [auto_engines(4, 4), auto_engines(4, 8), auto_engines(8, 2), auto_engines(2, 1)] == [2, 4, 2, 1]
    spk = random_frozen_spiking(1, input_size=3, hidden_size=32, T=4)
    assert SpikingKnobs().resolved(spk).to_manifest() == {**SpikingKnobs().to_manifest(), "lanes": 4,
                                                          "fanin": 4, "engines": 2, "proj_lanes": 4}
    assert SpikingKnobs(lanes=8).resolved(spk).engines == 4  # engines follow the lanes given
    base = random_frozen_baseline(1, input_size=3, hidden_size=40)
    assert BaselineKnobs().resolved(base).lanes == 5  # a divisor of H (auto width 5)
    base = random_frozen_baseline(1, input_size=3, hidden_size=50)
    assert BaselineKnobs().resolved(base).lanes == 5 and BaselineKnobs().resolved(base).fanin == 6
    run_build(tiny_options(tmp_path, knobs={}))  # H = 4, T = 2
    knobs = json.loads((tmp_path / "out" / "load.json").read_text())["knobs"]
    assert {k: knobs["spiking"][k] for k in ("lanes", "fanin", "engines", "automatic")} == \
        {"lanes": 1, "fanin": 1, "engines": 1, "automatic": ["lanes", "fanin", "engines", "proj_lanes"]}
    assert knobs["baseline"]["lanes"] == 1 and knobs["baseline"]["automatic"] == ["lanes", "fanin"]


def test_a_second_build_into_the_same_directory_is_refused(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """While a build holds its directory's lock, another is refused with one line (nothing
    written); once the holder is gone (even killed: the OS drops the lock) the build runs."""
    import fcntl

    from snnhw.cli import main
    from snnhw.flow.build import LOCK_FILE, build_lock

    opts = tiny_options(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with build_lock(out):
        assert (out / LOCK_FILE).read_text().strip().isdigit()
        with pytest.raises(UserError, match=r"another snnhw build \(pid \d+\) is writing to"):
            run_build(opts)
        spiking, baseline = tiny_models(tmp_path)
        rc = main(["build", "--model", str(spiking), str(baseline), "--no-verify", "--no-yosys", "-o", str(out),
                   "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("snnhw: error: another snnhw build") and err.count("\n") == 1
        assert not (out / "load.json").exists() and not (out / "build.json").exists()
    with open(out / LOCK_FILE) as handle:  # released: anyone can take it
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert run_build(opts).exit_code == 0


def test_a_qat_checkpoint_builds_on_its_trained_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``build --model qat.pt`` quantizes with the grid ``train --qat`` recorded (input width and
    scale, leak terms) unless told otherwise."""
    from snnhw.quant.frozen_io import load_frozen
    from snnhw.train.checkpoint import load_checkpoint
    from train_fixtures import write_npz

    data = write_npz(tmp_path / "toy.npz")
    quick = ["--hidden", "4", "--batch-size", "32", "--lr", "0.01", "--epochs", "1", "--no-progress"]
    assert main(["train", "--data", "npz", "--data-dir", str(data), *quick, "-o", str(tmp_path / "hard.pt")]) == 0
    assert main(["train", "--init", str(tmp_path / "hard.pt"), "--T", "2", "--qat", "--qat-input-bits", "10",
                 "--qat-leak-terms", "3", *quick, "-o", str(tmp_path / "qat.pt")]) == 0
    capsys.readouterr()
    grid = load_checkpoint(tmp_path / "qat.pt").metrics["settings"]["qat"]
    for given, expected in ((None, 10), (8, 8)):
        out = tmp_path / f"out{given}"
        opts = BuildOptions(models=[tmp_path / "qat.pt"], out_dir=out, verify=False, yosys=False, input_bits=given,
                            knobs=shared_knobs(lanes=2, fanin=2), progress=False)
        assert run_build(opts).exit_code == 0
        load = json.loads((out / "load.json").read_text())
        assert load["quantizer"] == {"weight_bits": 8, "input_bits": expected, "leak_terms": 3,
                                     "input_percentile": 99.9}
        spiking = load_frozen(out / "model" / "spiking.snnhw")
        assert spiking.input_bits == expected and spiking.meta["quantizer"]["leak_terms"] == 3
        assert (spiking.input_scale == grid["input_scale"]) == (given is None)
        assert any("differs from the grid" in line for line in load["quantizer_notes"]) == (given is not None)
