"""What a run reports: the exit status, the summary line, the failure details, JSON and JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labs.core.errors import ExitStatus
from labs.core.outputs import HostRecord
from labs.core.result import CommandResult
from labs.lesson.checks import Check, derive_checks, finding
from labs.lesson.findings import Finding, Status
from labs.program.policies import SUPPORTED
from labs.report.machine import render_json, render_junit
from labs.report.model import Report
from labs.report.text import render_text
from labs.verify.hints import observed_hint

DATA = Path(__file__).parent / "data"
RECORDED = json.loads((DATA / "awscli_v1.json").read_text())
IAM_READ = SUPPORTED["IAMReadOnlyAccess"].arn


def host(student: str, name: str, role: str | None) -> HostRecord:
    suffix = {"no-role": "a", "with-role": "b"}[name]
    return HostRecord(student=student, name=name, instance_id=f"i-0{student[-2:]}{suffix}0000000000000",
                      address="127.0.0.1", port=2200, user="root", role=role,
                      policies=(IAM_READ,) if role else (), imds_endpoint="http://127.0.0.1:8111",
                      http_tokens="required")


def check(student: str, name: str, check_id: str) -> Check:
    record = host(student, name, "DemoRoleForEC2" if name == "with-role" else None)
    return next(c for c in derive_checks(record, (IAM_READ,), "us-east-1") if c.id == check_id)


def passed(student: str, name: str, check_id: str, seconds: float = 0.5) -> Finding:
    c = check(student, name, check_id)
    return finding(c, Status.PASS, c.expected, 1, seconds)


def recorded(name: str) -> CommandResult:
    r = RECORDED[name]
    return CommandResult(r["command"], r["rc"], r["stdout"], r["stderr"])


def list_users_without_credentials() -> Finding:
    """with-role's list-users saw NoCredentials: the role host could not reach IMDS."""
    found = finding(check("student01", "with-role", "iam-list-users"), Status.FAIL, "NoCredentials", 4, 10.2,
                    evidence=recorded("no_role_list_users"))
    return found.with_hint(observed_hint(found))


def unreachable(student: str) -> Finding:
    c = check(student, "no-role", "imds-tokenless")
    return finding(c, Status.UNREACHABLE, "unreachable", 0, 15.0,
                       note=f"{student}/no-role (127.0.0.1:2200): no SSH after 9 attempt(s) in 15.0 s (budget 15 s): "
                            "ConnectionRefusedError: [Errno 111] Connection refused")


def report(*results: Finding, seconds: float = 12.34) -> Report:
    r = Report(stack="class", mode="local", started=1_700_000_000.0)
    r.add(list(results))
    r.seconds = seconds
    return r


@pytest.mark.parametrize("statuses, exit_status", [
    ([Status.PASS, Status.PASS], ExitStatus.OK),
    ([Status.PASS, Status.UNREACHABLE], ExitStatus.UNREACHABLE),
    ([Status.PASS, Status.FAIL], ExitStatus.LAB_WRONG),
    ([Status.UNREACHABLE, Status.FAIL, Status.PASS], ExitStatus.LAB_WRONG),  # a failed expectation wins
    ([Status.FAIL, Status.UNREACHABLE], ExitStatus.LAB_WRONG),
])
def test_exit_status_precedence(statuses, exit_status):
    c = check("student01", "no-role", "iam-list-users")
    r = report(*[finding(c, s, "x", 1, 0.1) for s in statuses])
    assert r.exit_status is exit_status
    assert int(r.exit_status) == {ExitStatus.OK: 0, ExitStatus.LAB_WRONG: 1, ExitStatus.UNREACHABLE: 3}[exit_status]


@pytest.mark.parametrize("results, line", [
    ([passed("student01", "no-role", "iam-list-users"), passed("student01", "with-role", "iam-list-users")],
     "2 checks: 2 passed, 0 failed, 0 unreachable in 12.3 s -> exit 0 (the lab matches the lesson)"),
    ([passed("student01", "no-role", "iam-list-users"), unreachable("student02")],
     "2 checks: 1 passed, 0 failed, 1 unreachable in 12.3 s -> exit 3 (infrastructure did not answer)"),
    ([passed("student01", "no-role", "iam-list-users"), list_users_without_credentials(), unreachable("student02")],
     "3 checks: 1 passed, 1 failed, 1 unreachable in 12.3 s -> exit 1 (the lab is wrong)"),
])
def test_summary_line(results, line):
    r = report(*results)
    assert r.summary() == line
    assert render_text(r).rstrip().splitlines()[-1] == line


def test_text_report_explains_a_failure():
    text = render_text(report(passed("student01", "no-role", "iam-list-users"), list_users_without_credentials()))
    failures = text.split("Failures:", 1)[1]
    assert "FAIL student01/with-role (i-001b0000000000000) verify:iam-list-users" in failures
    assert "command:  aws iam list-users --output json" in failures
    assert "expected: Success" in failures
    assert "observed: NoCredentials (after 4 tries in 10.2 s)" in failures
    assert 'stderr:   Unable to locate credentials. You can configure credentials by running "aws configure".' in failures
    # NoCredentials on a host that declares a role: the association or the trust, not IMDS (it answered)
    assert "hint:     no credentials reached this host although it declares role DemoRoleForEC2" in failures
    assert "student01/no-role" not in failures, "a passing check is not listed as a failure"


def test_text_report_explains_an_unreachable_host():
    text = render_text(report(unreachable("student02")))
    assert "UNREACHABLE student02/no-role (i-002a0000000000000) verify:imds-tokenless" in text
    assert "detail:   student02/no-role (127.0.0.1:2200): no SSH after 9 attempt(s)" in text


def test_text_report_table_has_one_row_per_check():
    results = [passed("student01", "no-role", "iam-list-users"), passed("student01", "with-role", "iam-create-user")]
    text = render_text(report(*results))
    assert "Failures:" not in text
    header, _, *rows = text.split("\n\n")[0].splitlines()
    assert header.split() == ["phase", "host", "check", "expected", "observed", "result", "s"]
    assert [row.split()[1:6] for row in rows] == [
        ["student01/no-role", "iam-list-users", "NoCredentials", "NoCredentials", "pass"],
        ["student01/with-role", "iam-create-user", "AccessDenied", "AccessDenied", "pass"]]


def test_json_report_round_trip():
    r = report(passed("student01", "no-role", "iam-list-users"), list_users_without_credentials(),
               unreachable("student02"))
    r.events.append("detached IAMReadOnlyAccess: list-users AccessDenied after 3.2 s")
    data = json.loads(render_json(r))
    assert data == json.loads(json.dumps(r.to_dict()))
    assert data["exit_status"] == 1 and data["stack"] == "class" and data["mode"] == "local"
    assert data["summary"] == {"passed": 1, "failed": 1, "unreachable": 1}
    assert data["events"] == ["detached IAMReadOnlyAccess: list-users AccessDenied after 3.2 s"]
    failure = data["results"][1]
    assert {k: failure[k] for k in ("student", "host", "instance_id", "check", "expected", "observed", "status",
                                    "attempts", "exit_code", "hint")} == {
        "student": "student01", "host": "with-role", "instance_id": "i-001b0000000000000", "check": "iam-list-users",
        "expected": "Success", "observed": "NoCredentials", "status": "fail", "attempts": 4, "exit_code": 255,
        "hint": observed_hint(list_users_without_credentials())}
    assert failure["stderr_tail"].startswith("Unable to locate credentials.")
    assert data["results"][2]["exit_code"] is None and "ConnectionRefusedError" in data["results"][2]["note"]
    assert data["results"][0]["hint"] == "", "a passing check carries no hint"


def junit(r: Report) -> ET.Element:
    text = render_junit(r)
    assert text.startswith("<?xml")
    return ET.fromstring(text.encode())  # parse exactly what a CI tool would read


def test_junit_one_suite_per_student_with_failures_and_errors():
    logs_denied = finding(check("student02", "with-role", "iam-create-user"), Status.FAIL, "OtherError", 1, 0.8,
                              evidence=recorded("with_role_logs_describe_log_groups"))  # an XML body in stderr
    r = report(passed("student01", "no-role", "iam-list-users", 0.25), list_users_without_credentials(),
               unreachable("student02"), logs_denied, passed("student02", "with-role", "iam-list-users", 0.5))
    root = junit(r)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["rolelab.class.student01", "rolelab.class.student02"]
    for suite in suites:
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases))
        assert suite.get("errors") == str(sum(c.find("error") is not None for c in cases))
    assert sum(int(s.get("tests")) for s in suites) == int(root.get("tests"))

    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == ["verify:iam-list-users", "verify:iam-list-users"]
    assert [c.get("classname") for c in cases] == ["student01.no-role", "student01.with-role"]
    assert cases[0].find("failure") is None and cases[0].find("error") is None  # passed
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "expected Success, observed NoCredentials"
    assert failure.get("type") == "fail"
    assert "Unable to locate credentials" in failure.text and "i-001b0000000000000" in failure.text

    s2 = suites[1].findall("testcase")
    error = s2[0].find("error")
    assert error is not None and s2[0].find("failure") is None
    assert error.get("type") == "unreachable" and "ConnectionRefusedError" in error.text
    xml_in_stderr = s2[1].find("failure")
    assert xml_in_stderr is not None and "<Code>AccessDenied</Code>" in xml_in_stderr.text  # escaped, not markup
    assert suites[1].get("time") == "16.300"  # the student's checks, summed


def test_junit_all_passing_has_no_failure_elements():
    root = junit(report(passed("student01", "no-role", "iam-list-users"), passed("student01", "with-role",
                                                                                 "iam-list-users")))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "0", "0")
    assert root.find(".//failure") is None and root.find(".//error") is None


HOSTILE = "boom\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\rfake: all passed\x9b31m\ttab\nnext"


def hostile_failure() -> Finding:
    """A host whose stderr and output carry terminal escapes (clipboard write, clear screen)."""
    found = finding(check("student01", "with-role", "iam-list-users"), Status.FAIL, f"Observed{HOSTILE}", 1, 0.3,
                    evidence=CommandResult("aws iam list-users", 255, HOSTILE, HOSTILE))
    return found


def test_text_report_and_progress_show_host_text_without_control_characters():
    from io import StringIO

    from labs.report.progress import Progress

    text = render_text(report(hostile_failure()))
    stream = StringIO()
    Progress(stream).say(HOSTILE)
    Progress(stream)(hostile_failure())
    for shown in (text, stream.getvalue()):
        assert not any(ord(ch) < 32 and ch not in "\n\t" or 0x7f <= ord(ch) <= 0x9f for ch in shown), repr(shown)
        assert "fake: all passed" in shown and "tab" in shown


def test_json_report_keeps_host_text_raw_and_escaped():
    rendered = render_json(report(hostile_failure()))
    assert "\x1b" not in rendered and "\\u001b]52" in rendered
    assert json.loads(rendered)["results"][0]["observed"] == f"Observed{HOSTILE}"
