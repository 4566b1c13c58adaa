"""The ``--vivado`` path of ``snnhw build``, run against a stand-in ``vivado`` executable.

No Vivado exists on the project's machines, so a small script named ``vivado`` on PATH plays
it: it checks the batch-mode command line, reads the script it is given, and writes what the
real tool would (the out-of-context summary JSON and power report whose file names the script
names, or a bitstream for the board script). The test then checks that the build ran every
Vivado script it generated and took its figures from them (utilisation, achieved clock, power).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from test_build import tiny_options

from snnhw.flow.build import run_build

FAKE_VIVADO = r'''#!{python}
import json, re, sys
from pathlib import Path
args = sys.argv[1:]
assert args[:2] == ["-mode", "batch"] and "-source" in args, args
script = Path(args[args.index("-source") + 1])
text = script.read_text()
with open("{calls}", "a") as fh:
    fh.write(script.name + "\n")
summary = re.search(r"open \$out_dir/(\w+)_vivado\.json w", text)
if summary:
    name = summary.group(1)
    period = float(re.search(r"set period_ns\s+([0-9.]+)", text).group(1))
    Path(f"{{name}}_vivado.json").write_text(json.dumps({{
        "top": name, "part": "xc7k325tffg900-2", "period_ns": period, "wns_ns": -0.5, "LUT": 1234,
        "FF": 567, "DSP48E1": 0, "RAMB36E1": 0, "RAMB18E1": 1, "CARRY4": 89}}))
    Path(f"{{name}}_power.rpt").write_text("| Total On-Chip Power (W)  | 0.321 |\n| Dynamic (W) | 0.123 |\n")
else:
    Path("snnhw_top.bit").write_bytes(b"fake bitstream")
'''


@pytest.fixture
def fake_vivado(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "vivado_calls.txt"
    exe = bin_dir / "vivado"
    exe.write_text(FAKE_VIVADO.format(python=sys.executable, calls=calls))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return calls


def test_vivado_step_runs_every_script_and_reports_its_figures(tmp_path: Path, fake_vivado: Path) -> None:
    result = run_build(tiny_options(tmp_path, vivado=True))
    out = tmp_path / "out"
    assert result.exit_code == 0
    record = json.loads((out / "vivado.json").read_text())
    assert record["status"] == "ok", record
    assert sorted(fake_vivado.read_text().split()) == ["baseline_ooc.tcl", "snnhw_top.tcl", "spiking_ooc.tcl"]
    for kind in ("spiking", "baseline"):
        figures = record["results"][kind]
        assert figures["LUT"] == 1234 and figures["RAMB18E1"] == 1 and figures["power_total_w"] == 0.321
        assert figures["achieved_mhz"] == pytest.approx(1000 / (figures["period_ns"] + 0.5))
    assert any(Path(p).suffix == ".bit" for p in record["artefacts"].values())
    report = json.loads((out / "report.json").read_text())
    assert report["resources"]["source"] == "vivado"
    assert report["resources"]["cores"]["spiking"]["LUT"] == 1234


def test_vivado_requested_but_absent_is_skipped_with_the_reason(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_build(tiny_options(tmp_path, vivado=True))
    record = json.loads((tmp_path / "out" / "vivado.json").read_text())
    assert result.exit_code == 0 and record["status"] == "skipped"
    assert record["reason"] == "vivado is not on PATH"
