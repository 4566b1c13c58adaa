"""JUnit XML for verification results (what CI systems display as test reports).

One ``<testsuite>`` per call, one ``<testcase>`` per verified core/configuration; a failing
case carries a ``<failure>`` whose message is the located first mismatch.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JUnitCase:
    """One test case.

    Attributes:
        name: case name (e.g. "snn_lstm_core[lanes=8,fanin=8]").
        classname: grouping name (e.g. "snnhw.verify.spiking").
        time_s: wall time in seconds.
        failure: the failure message, or None when the case passed.
        skipped: a skip reason, or None.
        properties: extra key/value pairs (knobs, sequences, simulator).
        system_out: free text (e.g. per-sequence cycle counts).
    """

    name: str
    classname: str
    time_s: float
    failure: str | None = None
    skipped: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    system_out: str = ""


def write_junit(path: Path, suite: str, cases: list[JUnitCase]) -> Path:
    """Write ``cases`` as one JUnit ``testsuite`` named ``suite`` to ``path``; returns ``path``."""
    failures = sum(c.failure is not None for c in cases)
    skipped = sum(c.skipped is not None and c.failure is None for c in cases)
    root = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                       errors="0", skipped=str(skipped), time=f"{sum(c.time_s for c in cases):.3f}")
    for case in cases:
        tc = ET.SubElement(ts, "testcase", name=case.name, classname=case.classname, time=f"{case.time_s:.3f}")
        if case.properties:
            props = ET.SubElement(tc, "properties")
            for key, value in case.properties.items():
                ET.SubElement(props, "property", name=key, value=str(value))
        if case.failure is not None:
            ET.SubElement(tc, "failure", message=case.failure.splitlines()[0] if case.failure else "failed",
                          type="mismatch").text = case.failure
        elif case.skipped is not None:
            ET.SubElement(tc, "skipped", message=case.skipped)
        if case.system_out:
            ET.SubElement(tc, "system-out").text = case.system_out
    ET.indent(root)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
