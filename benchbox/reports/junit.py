"""`check --junit FILE`: the verdict as JUnit XML, the test-report format GitHub Actions, GitLab and Jenkins render.

One `testsuite` per model x engine (gates about a whole policy, such as "nothing to compare", go to a suite named
after the policy), one `testcase` per gate x subject: a failed gate is a `failure` carrying the value, the limit,
the interval and the reason; a skipped gate and one that cannot decide are `skipped` (the message says which, and
for "cannot decide" how many images would decide it). The layout follows the JUnit schema the CI tools read
(tests/data/junit.xsd: testsuites > testsuite > testcase > failure | skipped).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from benchbox.errors import UserError, printable
from benchbox.reports.verdict import Gate, VerdictResult
from benchbox.vocabulary import GateStatus


def _suite_of(gate: Gate) -> tuple[str, str]:
    """(model, engine) a gate is about, from its subject `model engine/precision set...`."""
    parts = gate.subject.split()
    model = gate.model or (parts[0] if parts and parts[0] != "—" else "")
    engine = next((p.split("/")[0] for p in parts[1:2] if "/" in p), "")
    return model, engine


def _message(gate: Gate) -> str:
    limit = gate.limit.get("value") if isinstance(gate.limit, dict) else gate.limit
    text = f"{gate.gate}: {gate.value_text()} vs limit {limit} {gate.scope}"
    return f"{text}: {gate.reason}" if gate.reason else text


def junit_tree(result: VerdictResult) -> ET.ElementTree:
    """The verdict as an ElementTree in the JUnit layout."""
    suites: dict[tuple[str, str], list[Gate]] = {}
    for gate in result.gates:
        suites.setdefault(_suite_of(gate), []).append(gate)
    root = ET.Element("testsuites", name=f"benchbox check ({result.policy.source})")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for (model, engine), gates in suites.items():
        name = f"{model} {engine}".strip() or f"policy {result.policy.source}"
        failures = sum(g.status == GateStatus.FAIL for g in gates)
        skipped = sum(g.status in (GateStatus.SKIPPED, GateStatus.UNDECIDED) for g in gates)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=name,
            tests=str(len(gates)),
            failures=str(failures),
            errors="0",
            skipped=str(skipped),
            time="0",
            timestamp=stamp,
        )
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="verdict", value=result.verdict.value)
        ET.SubElement(properties, "property", name="why", value=result.why)
        totals["tests"] += len(gates)
        totals["failures"] += failures
        totals["skipped"] += skipped
        for gate in gates:
            case = ET.SubElement(
                suite,
                "testcase",
                name=f"{gate.gate} {gate.subject}",
                classname=f"benchbox.{(model or 'policy').replace('.', '_')}.{engine or 'all'}",
                time="0",
            )
            if gate.status == GateStatus.FAIL:
                failure = ET.SubElement(case, "failure", message=_message(gate), type=gate.gate)
                failure.text = gate.arithmetic or _message(gate)
            elif gate.status == GateStatus.UNDECIDED:
                needed = f" (about {gate.needed_images} images would decide it)" if gate.needed_images else ""
                ET.SubElement(case, "skipped", message=f"cannot decide: {_message(gate)}{needed}")
            elif gate.status == GateStatus.SKIPPED:
                ET.SubElement(case, "skipped", message=f"skipped: {_message(gate)}")
            elif gate.arithmetic:
                out = ET.SubElement(case, "system-out")
                out.text = gate.arithmetic
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, result: VerdictResult) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise UserError(f"Cannot write {printable(path)}: {exc.strerror or exc}.") from exc
