"""The flow's tool layer: the one synth_xilinx recipe, the stat reader and one-line tool errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from snnhw.errors import UserError
from snnhw.flow.tools import read_stat_cells, run_tool, synth_xilinx_script, yosys_missing


def test_one_recipe_for_build_and_dsp_check() -> None:
    # The build's script text is part of its result cache key: this is the exact text it has.
    fold = "proc; memory_collect a:snnhw_role=constants; memory_map a:snnhw_role=constants"
    script = synth_xilinx_script("../rtl/core.v", "snn_lstm_core", stat_json="stat.json", netlist_json="netlist.json")
    synth = "synth_xilinx -family xc7 -noiopad -flatten -top snn_lstm_core"
    assert script == (
        f"read_verilog ../rtl/core.v; {synth} -run :prepare; {fold}; {synth} -run prepare:; "
        "tee -q -o stat.json stat -json; write_json netlist.json")
    synth = "synth_xilinx -family xc7 -noiopad -flatten -top top"
    assert synth_xilinx_script("core.v", "top", stat_json="top.stat.json") == (
        f"read_verilog core.v; {synth} -run :prepare; {fold}; {synth} -run prepare:; tee -q -o top.stat.json stat -json")


def test_read_stat_cells(tmp_path: Path) -> None:
    stat = tmp_path / "stat.json"
    # `tee -o` may put Yosys's own lines before the JSON object.
    design = {"num_cells": 5, "num_cells_by_type": {"LUT2": 3, "FDRE": 2}}
    stat.write_text("-- stat --\n" + json.dumps({"design": design}))
    assert read_stat_cells(stat) == ({"LUT2": 3, "FDRE": 2}, 5)
    stat.write_text(json.dumps({"modules": {"\\top": {"num_cells_by_type": {"DSP48E1": 4}}}}))
    assert read_stat_cells(stat) == ({"DSP48E1": 4}, 4)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_tool_keeps_a_log_and_fails_in_one_line(tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    proc = run_tool(_python("print('hello')"), what="echo", timeout_s=60, log=log)
    assert proc.returncode == 0 and log.read_text() == "hello\n"

    log = tmp_path / "bad.log"
    code = "import sys; print('step 1'); print('ERROR: no such module top'); print('bye'); sys.exit(3)"
    with pytest.raises(UserError) as info:
        run_tool(_python(code), what="tool on core.v", timeout_s=60, log=log)
    message = str(info.value)
    assert "\n" not in message
    assert message == f"tool on core.v failed (exit 3): ERROR: no such module top; see {log}"
    assert "step 1" in log.read_text()

    proc = run_tool(_python("import sys; sys.exit(1)"), what="lint", timeout_s=60, check=False)
    assert proc.returncode == 1


def test_run_tool_missing_output_timeout_and_tool_log(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^writer exited 0 but did not write out\.json: .*; see "):
        run_tool(_python("print('done')"), what="writer", timeout_s=60, log=tmp_path / "w.log",
                 outputs=[tmp_path / "out.json"])
    with pytest.raises(UserError, match=r"^sleeper did not finish within 1 s$"):
        run_tool(_python("import time; time.sleep(30)"), what="sleeper", timeout_s=1)
    # A tool that writes its own log (yosys -l): run_tool leaves it and quotes it.
    own = tmp_path / "own.log"
    code = f"import sys; open({str(own)!r}, 'w').write('ERROR: from the log\\n'); print('stdout'); sys.exit(1)"
    with pytest.raises(UserError, match="ERROR: from the log"):
        run_tool(_python(code), what="t", timeout_s=60, log=own, tool_writes_log=True)
    assert own.read_text() == "ERROR: from the log\n"
    with pytest.raises(UserError, match="could not start"):
        run_tool([str(tmp_path / "no-such-tool")], what="ghost", timeout_s=60)


@pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))
def test_yosys_error_is_one_line(tmp_path: Path) -> None:
    from snnhw.flow.lint import yosys_cell_counts

    source = tmp_path / "bad.v"
    source.write_text("module bad(input a, output b); assign b = a; endmodule\n")
    with pytest.raises(UserError) as info:
        yosys_cell_counts(source, "missing_top", tmp_path / "work")
    message = str(info.value)
    assert "\n" not in message and "failed" in message and "missing_top" in message
    assert message.endswith(str(tmp_path / "work" / "missing_top.yosys.log"))
