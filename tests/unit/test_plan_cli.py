"""`rolelab plan`: offline, the real program, a readable tree; bad config exits 2 in one line."""

from __future__ import annotations

import re

from labs.cli.main import main


def test_plan_shows_one_pair_by_default(capsys):
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "Role student01-iam-role  (name=DemoRoleForEC2  trusted by ec2.amazonaws.com)" in out
    assert re.search(r"Instance student01-no-role-instance .*profile=none .*http_tokens=required", out)
    assert re.search(r"Instance student01-with-role-instance .*profile=DemoRoleForEC2 ", out)
    assert "8 AWS resources to create" not in out and "7 AWS resources to create" in out
    assert "rolelab:sshCidr is not set; planned with a placeholder" in out


def test_plan_with_three_students_shows_three_pairs(capsys):
    assert main(["plan", "--config", "students=3", "--config", "sshCidr=203.0.113.9/32"]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"Instance student0\d-no-role-instance", out)) == 3
    assert len(re.findall(r"Instance student0\d-with-role-instance", out)) == 3
    assert "DemoRoleForEC2-student03" in out and "from 203.0.113.9/32" in out
    assert "sshCidr is not set" not in out


def test_plan_refuses_world_open_ssh_with_one_line(capsys):
    assert main(["plan", "--config", "sshCidr=0.0.0.0/0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "rolelab:sshCidr" in lines[0] and "allowWorldSsh" in lines[0]


def test_unknown_flag_is_one_line_exit_2(capsys):
    assert main(["plan", "--bogus"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_plan_json_lists_resources_and_outputs(capsys):
    import json

    assert main(["plan", "--json", "--config", "imdsv1Demo=true"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sum(r["type"] == "aws:ec2/instance:Instance" for r in data["resources"]) == 3
    assert [h["name"] for h in data["outputs"]["hosts"]] == ["no-role", "with-role", "imdsv1"]


def test_a_semicolon_roster_plans_students_by_name_and_says_what_it_ignored(capsys, tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("name;email;group\nAna María;ana@example.org;g1\nBo;bo@example.org;g2\n")
    assert main(["plan", "--roster", str(roster)]) == 0
    captured = capsys.readouterr()
    assert "DemoRoleForEC2-ana-maria" in captured.out and "DemoRoleForEC2-bo" in captured.out
    assert "example" not in captured.out
    assert captured.err.strip() == f"rolelab: --roster {roster}: ignoring the column(s) group (known: name, email, ssh_public_key)"


def test_a_one_line_roster_of_digits_is_one_student(capsys, tmp_path):
    roster = tmp_path / "class.txt"
    roster.write_text("5\n")
    assert main(["plan", "--roster", str(roster)]) == 0
    out = capsys.readouterr().out
    assert "Instance 5-no-role-instance" in out and "student05" not in out
