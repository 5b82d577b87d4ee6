"""The class report page (--html): what an instructor sees, rendered by a real headless chromium.

The report is built from real Finding/Check/CommandResult/HostRecord objects with
synthetic outcomes: three students, student02 with one AccessDenied, student03 with an
unreachable host, student01 with an extra host the others lack (absent cells).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from labs.core.outputs import HostRecord
from labs.core.result import CommandResult
from labs.lesson.checks import Check, finding
from labs.lesson.findings import Finding, Status
from labs.report.html import render_html
from labs.report.model import Report
from tests.offline.browser import open_page

READ_ONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
DENIED = ("An error occurred (AccessDenied) when calling the ListUsers operation: User: "
          "arn:aws:sts::123456789012:assumed-role/DemoRoleForEC2/i-0b2 is not authorized to perform: iam:ListUsers")
CHECKS = {  # check id -> (command, expected on no-role, expected on with-role)
    "imds-credentials": ("sh -c 'imds token flow'", "no role (404)", "role DemoRoleForEC2: credentials valid"),
    "iam-list-users": ("aws iam list-users --output json", "NoCredentials", "Success"),
    "nothing-stored": ("test -e ~/.aws/credentials", "nothing stored", "nothing stored"),
}


def host(student: str, name: str, number: int) -> HostRecord:
    role = None if name == "no-role" else "DemoRoleForEC2"
    return HostRecord(student, name, f"i-0{number:016x}", "127.0.0.1", 2200 + number, "lab", role,
                      (READ_ONLY,) if role else (), f"http://127.0.0.1:{9100 + number}",
                      "optional" if name == "imdsv1" else "required")


def result(h: HostRecord, check_id: str, observed: str | None = None, *, status: Status | None = None,
           stderr: str = "", rc: int = 0, note: str = "", phase: str = "verify", attempts: int = 1,
           seconds: float = 0.45) -> Finding:
    command, no_role, with_role = CHECKS.get(check_id, (f"probe {check_id}", "HTTP 200", "HTTP 200"))
    expected = with_role if h.role else no_role
    observed = expected if observed is None else observed
    check = Check(check_id, h, command.split(" --output")[0], command, expected, evaluate=lambda _: observed,
                  hint="AccessDenied points at the role's policies", phase=phase)
    run = None if status is Status.UNREACHABLE else CommandResult(command, rc, "", stderr, seconds, h.label)
    status = status or (Status.PASS if observed == expected else Status.FAIL)
    return finding(check, status, observed, attempts, seconds, evidence=run, note=note)


def class_report(observed_on_student02: str = "AccessDenied") -> Report:
    report = Report("class-b", "local", started=1767261600.0)  # 2026-01-01 10:00:00 UTC
    number = 0
    for student in ("student01", "student02", "student03"):
        hosts = ["no-role", "with-role"] + (["imdsv1"] if student == "student01" else [])
        for name in hosts:
            number += 1
            h = host(student, name, number)
            if name == "imdsv1":
                report.add([result(h, "imds-tokenless")])
                continue
            for check_id in CHECKS:
                if student == "student02" and name == "with-role" and check_id == "iam-list-users":
                    report.add([result(h, check_id, observed_on_student02, stderr=f"\n{DENIED}\n", rc=255,
                                       attempts=4, seconds=10.2)])
                elif student == "student03" and name == "no-role":
                    report.add([result(h, check_id, "unreachable", status=Status.UNREACHABLE, seconds=15.0,
                                       note="ssh 127.0.0.1:2205: connection refused for 15.0 s")])
                else:
                    report.add([result(h, check_id)])
    with_role = host("student01", "with-role", 2)
    report.add([_drill(with_role, "AccessDenied", "detach-policy"),
                _drill(with_role, "Success", "detach-policy/re-attached")])
    report.events += ["student01/with-role: detached IAMReadOnlyAccess from DemoRoleForEC2",
                      "student01/with-role: the detach propagated: iam-list-users is AccessDenied after 2.1 s (3 tries)",
                      "student01/with-role: re-attached IAMReadOnlyAccess; success again after 0.5 s (1 try)"]
    report.seconds = 83.4
    return report


def _drill(h: HostRecord, outcome: str, phase: str) -> Finding:
    check = Check("iam-list-users", h, "aws iam list-users", "aws iam list-users --output json", outcome,
                  evaluate=lambda _: outcome, phase=phase)
    return finding(check, Status.PASS, outcome, 3, 2.1, converged_after=2.1,
                       evidence=CommandResult(check.command, 0, "{}", "", 0.4, h.label))


# -- without a browser ----------------------------------------------------------------------------

class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def test_the_page_is_self_contained_and_loads_nothing() -> None:
    page = render_html(class_report())
    tags = parse(page)
    loaders = [(t, a) for t, a in tags if t in {"script", "link", "img", "iframe", "object", "embed", "base"}]
    assert not loaders, f"the page loads external things: {loaders}"
    assert not [a for _, a in tags if "src" in a], "no element may have a src attribute"
    hrefs = [a["href"] for t, a in tags if t == "a"]
    assert hrefs and all(h.startswith("#") for h in hrefs), f"links must stay inside the page: {hrefs}"
    style = "".join(re.findall(r"<style>(.*?)</style>", page, re.S))
    assert "url(" not in style and "@import" not in style, "the inline CSS fetches something"
    assert not re.search(r"""(?:href|src)\s*=\s*["']?https?://""", page), "an attribute points at the network"


def test_observed_values_are_escaped() -> None:
    page = render_html(class_report(observed_on_student02='<script>alert("owned")</script>'))
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page
    assert [t for t, _ in parse(page)].count("script") == 0


def test_the_same_report_renders_the_same_page() -> None:
    assert render_html(class_report()) == render_html(class_report())


# -- in headless chromium, without JavaScript -------------------------------------------------------

@pytest.fixture(scope="module")
def browser_page(artifacts_dir: Path) -> Iterator:
    path = artifacts_dir / "class-report.html"
    path.write_text(render_html(class_report()), encoding="utf-8")
    with open_page(path) as page:
        yield page


@pytest.mark.browser
def test_grid_has_a_row_per_student_and_coloured_cells(browser_page) -> None:
    page = browser_page
    rows = page.locator("table.grid tbody tr")
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-student") for i in range(3)] == ["student01", "student02", "student03"]
    counts = {s: page.locator(f"table.grid td.cell[data-status={s}]").count()
              for s in ("pass", "fail", "unreachable", "absent")}
    assert counts == {"pass": 15, "fail": 1, "unreachable": 3, "absent": 2}, counts
    assert page.locator("table.grid thead th.check").count() == 7
    broken = page.locator('td.cell[data-student="student02"][data-check="with-role:iam-list-users"]')
    assert broken.get_attribute("class") == "cell fail"
    assert "10.20 s" in broken.inner_text()
    assert page.locator('td.cell[data-student="student01"][data-check="imdsv1:imds-tokenless"]').inner_text() \
        .startswith("HTTP 200")


@pytest.mark.browser
def test_only_the_broken_students_row_is_red(browser_page) -> None:
    page = browser_page
    verdicts = {r.get_attribute("data-student"): r.get_attribute("data-verdict")
                for r in page.locator("table.grid tbody tr").all()}
    assert verdicts == {"student01": "pass", "student02": "fail", "student03": "unreachable"}
    backgrounds = {s: page.locator(f'table.grid tr[data-student="{s}"]').evaluate(
        "row => getComputedStyle(row).backgroundColor") for s in verdicts}

    def reddish(css: str) -> bool:
        r, g, b, *alpha = (float(v) for v in re.findall(r"[\d.]+", css))
        return (not alpha or alpha[0] > 0) and r > 200 and r - g > 20 and r - b > 20

    assert reddish(backgrounds["student02"]), backgrounds
    assert not reddish(backgrounds["student01"]) and not reddish(backgrounds["student03"]), backgrounds
    name = page.locator('tr[data-student="student02"] th.student').evaluate("th => getComputedStyle(th).backgroundColor")
    assert reddish(name), f"the broken student's name cell is not red: {name}"


@pytest.mark.browser
def test_a_failure_opens_on_click_and_shows_what_happened(browser_page, artifacts_dir: Path) -> None:
    page = browser_page
    failure = page.locator('details.failure[data-student="student02"][data-check="with-role:iam-list-users"]')
    assert failure.count() == 1
    summary = failure.locator("summary")
    assert summary.inner_text() == "expected Success, observed AccessDenied"
    stderr = failure.locator("dd.stderr")
    assert not stderr.is_visible(), "the details should be folded until clicked"
    summary.click()
    assert failure.get_attribute("open") is not None
    text = failure.locator("dl").inner_text()
    for shown in ("aws iam list-users --output json", "Success", "AccessDenied", "4 tries in 10.20 s",
                  "student02/with-role (i-0", "exit code", "255"):
        assert shown in text, f"{shown!r} is not in the opened failure:\n{text}"
    assert stderr.is_visible() and "is not authorized to perform: iam:ListUsers" in stderr.inner_text()
    assert failure.locator("dd.hint").is_visible()

    unreachable = page.locator('details.failure[data-student="student03"][data-check="no-role:iam-list-users"]')
    unreachable.locator("summary").click()
    assert "connection refused" in unreachable.locator("dd.note").inner_text()
    unreachable.locator("summary").click()  # fold it again: the screenshot shows one opened failure
    page.screenshot(path=str(artifacts_dir / "class-report.png"), full_page=True)


@pytest.mark.browser
def test_header_and_drills_read_without_javascript(browser_page) -> None:
    page = browser_page
    assert page.locator("script").count() == 0
    header = page.locator("header").inner_text()
    for shown in ("class-b", "local", "2026-01-01 10:00:00 UTC", "1 min 23.4 s", "exit 1: the lab is wrong",
                  "1 / 3", "students all green"):
        assert shown in header, f"{shown!r} is not in the header:\n{header}"
    tiles = dict(reversed(t.inner_text().split("\n", 1)) for t in page.locator(".tile").all())
    assert tiles["checks passed"] == "17" and tiles["checks failed"] == "1" and tiles["checks unreachable"] == "3"
    phases = [t.get_attribute("data-phase") for t in page.locator("table.drill").all()]
    assert phases == ["detach-policy", "detach-policy/re-attached"]
    assert page.locator("ol.events li").count() == 3
    assert page.locator("ol.events li").first.inner_text().startswith("student01/with-role: detached")
