"""A whole class on one lab cloud: per-student isolation, verdicts, JUnit tree and the class page."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from labs.cli.main import main
from labs.core.outputs import LabOutputs
from labs.labcloud.paths import StackPaths
from labs.program.policies import SUPPORTED
from labs.provision import local
from labs.provision.operator import operator_clients
from tests.offline.browser import open_page

STACK = "class"
READ_ONLY = SUPPORTED["IAMReadOnlyAccess"].arn


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[LabOutputs]:
    roster = tmp_path_factory.mktemp("roster") / "class.csv"
    roster.write_text("email,name\nana@example.org,Ana María\nbo@example.org,Bo\ncy@example.org,Cy\n"
                      "di@example.org,Di\ned@example.org,Ed\n")
    local.down(STACK)
    assert main(["local", "up", "--stack", STACK, "--roster", str(roster), "--json"]) == 0
    yield local.read_outputs(STACK)
    local.down(STACK)


def rows(page) -> dict[str, str]:
    grid = page.locator("table.grid tbody tr")
    return {grid.nth(i).get_attribute("data-student"): grid.nth(i).get_attribute("data-verdict")
            for i in range(grid.count())}


def test_the_roster_gives_each_student_a_pair_and_an_own_role(lab):
    assert lab.students() == ("ana-maria", "bo", "cy", "di", "ed")
    assert len(lab.hosts) == 10
    assert {h.role for h in lab.hosts if h.role} == {f"DemoRoleForEC2-{s}" for s in lab.students()}


def test_a_green_class_renders_five_green_rows(lab, capsys, tmp_path, artifacts_dir):
    page_file, junit = tmp_path / "class.html", tmp_path / "class.xml"
    code = main(["verify", "--local", "--stack", STACK, "--quiet", "--html", str(page_file), "--junit", str(junit)])
    text = capsys.readouterr().out
    assert code == 0
    assert "class: 5/5 students all green" in text
    for student in lab.students():
        assert f"  {student:<24}  13/13  passed  all green" in text
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [f"rolelab.{STACK}.{s}" for s in lab.students()]
    assert all(s.get("tests") == "13" and s.get("failures") == "0" for s in suites)
    with open_page(page_file) as page:
        assert rows(page) == {s: "pass" for s in lab.students()}
        assert page.locator("table.grid td.cell[data-status=fail]").count() == 0
        page.screenshot(path=str(artifacts_dir / "class-green.png"), full_page=True)


def test_breaking_one_student_turns_exactly_that_row_red_and_exits_1(lab, capsys, tmp_path, artifacts_dir):
    """Isolation: a policy detached from cy's role changes cy's result and nobody else's."""
    iam = operator_clients(lab)("iam")
    iam.detach_role_policy(RoleName="DemoRoleForEC2-cy", PolicyArn=READ_ONLY)
    try:
        page_file = tmp_path / "broken.html"
        code = main(["verify", "--local", "--stack", STACK, "--quiet", "--json", "--settle", "1",
                     "--html", str(page_file)])
        report = json.loads(capsys.readouterr().out)
    finally:
        iam.attach_role_policy(RoleName="DemoRoleForEC2-cy", PolicyArn=READ_ONLY)
    assert code == 1
    verdicts = {s["student"]: s["verdict"] for s in report["students"]}
    assert verdicts == {"ana-maria": "pass", "bo": "pass", "cy": "fail", "di": "pass", "ed": "pass"}
    failed = {(r["student"], r["host"], r["check"]) for r in report["results"] if r["status"] != "pass"}
    assert failed == {("cy", "with-role", "iam-list-users"), ("cy", "with-role", "iam-list-roles")}
    with open_page(page_file) as page:
        assert rows(page) == {"ana-maria": "pass", "bo": "pass", "cy": "fail", "di": "pass", "ed": "pass"}
        colour = {s: page.locator(f'tr[data-student="{s}"] th.student').evaluate(
            "e => getComputedStyle(e).backgroundColor") for s in ("bo", "cy", "di")}
        assert colour["cy"] != colour["bo"] == colour["di"], colour
        red, green, blue = (int(v) for v in colour["cy"].split("(")[1].rstrip(")").split(",")[:3])
        assert red > green and red > blue, f"cy's row should be red, is {colour['cy']}"
        page.locator('details.failure[data-student="cy"] summary').first.click()
        details = page.locator('details.failure[data-student="cy"]').first.inner_text()
        assert "aws iam list-users" in details and "AccessDenied" in details
        page.screenshot(path=str(artifacts_dir / "class-one-red.png"), full_page=True)


def test_a_drill_on_one_student_leaves_the_others_green(lab, capsys):
    code = main(["drill", "detach-policy", "--local", "--stack", STACK, "--student", "bo", "--json", "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {r["student"] for r in report["results"]} == {"bo"}
    code = main(["verify", "--local", "--stack", STACK, "--quiet", "--json"])
    assert code == 0, "after the drill's restore, the whole class is green again"
    capsys.readouterr()


@pytest.mark.slow
def test_demo_for_five_students_writes_a_green_class_page(tmp_path, capsys):
    page_file = tmp_path / "class.html"
    code = main(["demo", "--stack", "demo5", "--config", "students=5", "--html", str(page_file), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text[-3000:]
    assert "class: 5/5 students all green" in text
    with open_page(page_file) as page:
        assert rows(page) == {f"student0{i}": "pass" for i in range(1, 6)}
    assert not StackPaths.for_stack("demo5").root.exists(), "the demo left its stack behind"
