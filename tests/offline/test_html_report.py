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

from labs.core.outputs import HostRecord, LabOutputs
from labs.core.result import CommandResult
from labs.lesson.checks import Check, finding
from labs.lesson.findings import Finding, Status
from labs.lesson.suite import lab_checks
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
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page
    assert [t for t, _ in parse(page)].count("script") == 0


def test_a_dead_host_is_one_entry_with_its_cause_not_one_per_check() -> None:
    page = render_html(class_report())
    entries = re.findall(r'<li class="unreachable" data-student="student03">(.*?)</li>', page, re.S)
    assert len(entries) == 1 and "3 check(s) not run" in entries[0], entries
    assert page.count('<details class="failure unreachable"') == 1


def test_the_same_report_renders_the_same_page() -> None:
    assert render_html(class_report()) == render_html(class_report())


# -- in headless chromium, without JavaScript -------------------------------------------------------

@pytest.fixture
def browser_page(artifacts_dir: Path) -> Iterator:
    path = artifacts_dir / "class-report.html"
    path.write_text(render_html(class_report()), encoding="utf-8")
    with open_page(path) as page:
        yield page


@pytest.mark.browser
def test_students_who_need_attention_come_first_with_coloured_cells(browser_page) -> None:
    page = browser_page
    rows = page.locator("table.grid tbody tr")
    assert [rows.nth(i).get_attribute("data-student") for i in range(rows.count())] == \
        ["student02", "student03", "student01"]
    counts = {s: page.locator(f"table.grid td.cell[data-status={s}]").count()
              for s in ("pass", "fail", "unreachable", "absent")}
    assert counts == {"pass": 15, "fail": 1, "unreachable": 3, "absent": 2}, counts
    assert page.locator("table.grid thead th.check").count() == 7
    broken = page.locator('td.cell[data-student="student02"][data-check="with-role:iam-list-users"]')
    assert broken.get_attribute("class") == "cell fail"
    assert broken.inner_text() == "✗ AccessDenied"
    assert "10.20 s" in broken.get_attribute("title")


@pytest.mark.browser
def test_only_the_broken_students_row_is_red(browser_page) -> None:
    page = browser_page
    verdicts = {r.get_attribute("data-student"): r.get_attribute("data-verdict")
                for r in page.locator("table.grid tbody tr").all()}
    assert verdicts == {"student01": "pass", "student02": "fail", "student03": "unreachable"}
    backgrounds = {s: page.locator(f'table.grid tr[data-student="{s}"]').evaluate(
        "row => getComputedStyle(row).backgroundColor") for s in verdicts}
    assert reddish(backgrounds["student02"]), backgrounds
    assert not reddish(backgrounds["student01"]) and not reddish(backgrounds["student03"]), backgrounds
    name = page.locator('tr[data-student="student02"] th.student').evaluate("th => getComputedStyle(th).backgroundColor")
    assert reddish(name), f"the broken student's name cell is not red: {name}"


def reddish(css: str) -> bool:
    r, g, b, *alpha = (float(v) for v in re.findall(r"[\d.]+", css))
    return (not alpha or alpha[0] > 0) and r > 200 and r - g > 20 and r - b > 20


@pytest.mark.browser
def test_each_students_cause_is_visible_without_a_click(browser_page) -> None:
    page = browser_page
    cause = page.locator('tr[data-student="student02"] td.cause')
    assert cause.is_visible()
    assert "iam-list-users: expected Success, observed AccessDenied" in cause.inner_text()
    assert "AccessDenied points at the role's policies" in cause.inner_text()
    assert "unreachable" in page.locator('tr[data-student="student03"] td.cause').inner_text()
    assert page.locator('tr[data-student="student01"] td.cause').inner_text().strip() == ""


@pytest.mark.browser
def test_a_failure_opens_on_click_and_shows_what_a_person_would_type(browser_page, artifacts_dir: Path) -> None:
    page = browser_page
    failure = page.locator('details.failure[data-student="student02"][data-check="with-role:iam-list-users"]')
    assert failure.count() == 1
    assert page.locator('td.cell[data-student="student02"][data-check="with-role:iam-list-users"] a') \
        .get_attribute("href") == f"#{failure.get_attribute('id')}"
    stderr = failure.locator("dd.stderr")
    assert not stderr.is_visible(), "the details should be folded until clicked"
    failure.locator("summary").click()
    assert failure.get_attribute("open") is not None
    assert failure.locator("dd.command").inner_text() == "aws iam list-users"  # the title, not the script
    text = failure.locator("dl").inner_text()
    for shown in ("Success", "AccessDenied", "4 tries in 10.20 s", "student02/with-role (i-0", "exit code", "255"):
        assert shown in text, f"{shown!r} is not in the opened failure:\n{text}"
    assert stderr.is_visible() and "is not authorized to perform: iam:ListUsers" in stderr.inner_text()

    dead = page.locator('details.failure[data-student="student03"][data-check="no-role:*"]')
    dead.locator("summary").click()
    assert "connection refused" in dead.locator("dd.note").inner_text()
    assert dead.locator("dd.checks").inner_text() == "imds-credentials, iam-list-users, nothing-stored"
    dead.locator("summary").click()  # fold it again: the screenshot shows one opened failure
    page.screenshot(path=str(artifacts_dir / "class-report.png"), full_page=True)


@pytest.mark.browser
def test_header_and_folded_drills_read_without_javascript(browser_page) -> None:
    page = browser_page
    assert page.locator("script").count() == 0
    header = page.locator("header").inner_text()
    for shown in ("class-b", "local", "2026-01-01 10:00:00 UTC", "1 min 23.4 s", "exit 1: the lab is wrong",
                  "1 / 3", "students all green", "2 of 3 students need attention"):
        assert shown in header, f"{shown!r} is not in the header:\n{header}"
    tiles = dict(reversed(t.inner_text().split("\n", 1)) for t in page.locator(".tile").all())
    assert tiles["checks passed"] == "17" and tiles["checks failed"] == "1" and tiles["checks unreachable"] == "3"
    drills = page.locator("details.drills")
    assert drills.get_attribute("open") is None and not page.locator("table.drill").first.is_visible()
    assert "2 drill step(s), 2 check(s): all passed; 3 action(s)" in drills.locator("summary").inner_text()
    drills.locator("summary").click()
    phases = [t.get_attribute("data-phase") for t in page.locator("table.drill").all()]
    assert phases == ["detach-policy", "detach-policy/re-attached"]
    assert page.locator("ol.events li").count() == 3
    assert page.locator("ol.events li").first.inner_text().startswith("student01/with-role: detached")


# -- the default lesson for a class of 20, on a laptop's screen -----------------------------------

def lesson_report(students: int = 20) -> Report:
    """The real default lesson's checks (labs.lesson.suite) for a class: one student failing, one host dead."""
    hosts = tuple(host(f"student{s:02d}", name, 2 * s + n) for s in range(1, students + 1)
                  for n, name in enumerate(("no-role", "with-role")))
    lab = LabOutputs("local", "us-east-1", "class-20", hosts)
    report = Report("class-20", "local", started=1767261600.0)
    for check in lab_checks(lab):
        if check.host.label == "student07/with-role" and check.id == "iam-list-roles":
            report.add([finding(check, Status.FAIL, "AccessDenied", 4, 10.2,
                                evidence=CommandResult(check.command, 255, "", DENIED, 1.0, check.host.label))
                        .with_hint("the role lost IAMReadOnlyAccess: attach it again (Permissions tab)")])
        elif check.host.label == "student12/no-role":
            report.add([finding(check, Status.UNREACHABLE, "unreachable", 12, 15.0,
                                note="no SSH after 12 attempt(s) in 15.0 s: connection refused")
                        .with_hint("sshd does not answer: see `rolelab local status`")])
        else:
            report.add([finding(check, Status.PASS, check.expected, 1, 0.8)])
    report.seconds = 41.5
    return report


@pytest.mark.browser
def test_a_class_of_20_fits_1366_px_without_scrolling_sideways(artifacts_dir: Path) -> None:
    path = artifacts_dir / "class-20.html"
    path.write_text(render_html(lesson_report()), encoding="utf-8")
    with open_page(path, width=1366, height=768) as page:
        page.screenshot(path=str(artifacts_dir / "class-20-1366.png"))
        widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"horizontal scrollbar: content {widths[0]} px in a {widths[1]} px window"
        rows = page.locator("table.grid tbody tr")
        assert rows.count() == 20
        assert rows.first.get_attribute("data-student") == "student07"
        assert rows.nth(1).get_attribute("data-student") == "student12"
        green = rows.nth(5).bounding_box()
        assert green["height"] <= 30, f"a green row is {green['height']} px tall"
        cause = page.locator('tr[data-student="student07"] td.cause')
        box = cause.bounding_box()
        assert cause.is_visible() and box["y"] + box["height"] <= 768, f"the cause is below the fold: {box}"
        assert "attach it again" in cause.inner_text()


@pytest.mark.browser
def test_a_student_name_and_stderr_with_script_tags_stay_text(artifacts_dir: Path) -> None:
    report = Report("class-x", "local", started=1767261600.0)
    evil = host('<script>alert("name")</script>', "with-role", 1)
    report.add([result(evil, "iam-list-users", "AccessDenied", stderr='<script>alert("stderr")</script>', rc=255),
                result(evil, "nothing-stored")])
    html = render_html(report)
    assert [t for t, _ in parse(html)].count("script") == 0
    path = artifacts_dir / "class-injection.html"
    path.write_text(html, encoding="utf-8")
    with open_page(path) as page:
        assert page.locator("script").count() == 0
        row = page.locator("table.grid tbody tr").first
        assert row.get_attribute("data-student") == '<script>alert("name")</script>'
        failure = page.locator("details.failure").first
        failure.locator("summary").click()
        assert failure.locator("dd.stderr").inner_text().strip() == '<script>alert("stderr")</script>'
