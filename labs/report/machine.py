"""The report for machines: JSON (an LMS, a script) and JUnit XML (CI shows the class as a tree)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from labs.lesson.findings import Status
from labs.report.model import Report
from labs.report.text import render_failure


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def _xml_safe(text: str) -> str:
    """XML 1.0 forbids most control characters (an ANSI colour in stderr would break the file)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)


def render_junit(report: Report) -> str:
    """JUnit XML: one testsuite per student, one testcase per check (CI shows the class as a tree)."""
    suites = ET.Element("testsuites", name=f"rolelab {report.stack}", tests=str(len(report.results)),
                        failures=str(report.count(Status.FAIL)), errors=str(report.count(Status.UNREACHABLE)),
                        time=f"{report.seconds:.3f}")
    for student, mine in report.by_student().items():
        suite = ET.SubElement(suites, "testsuite", name=f"rolelab.{report.stack}.{student}", tests=str(len(mine)),
                              failures=str(sum(r.status is Status.FAIL for r in mine)),
                              errors=str(sum(r.status is Status.UNREACHABLE for r in mine)),
                              skipped="0", time=f"{sum(r.seconds for r in mine):.3f}")
        for r in mine:
            case = ET.SubElement(suite, "testcase", classname=f"{student}.{r.host.name}",
                                 name=f"{r.phase}:{r.check}", time=f"{r.seconds:.3f}")
            if r.status is not Status.PASS:
                tag = "failure" if r.status is Status.FAIL else "error"
                node = ET.SubElement(case, tag, message=_xml_safe(f"expected {r.expected}, observed {r.observed}"),
                                     type=r.status.value)
                node.text = _xml_safe(render_failure(r))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
