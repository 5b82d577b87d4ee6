"""Students as a count, a list or a roster file: sanitized, and refused when unsafe."""

from __future__ import annotations

import pytest

from labs.core.errors import ConfigError, UsageError
from labs.program.roster import numbered, parse_students, read_roster, read_roster_keys, sanitize, students_value


@pytest.mark.parametrize("raw, safe", [
    ("Ana María", "ana-maria"),
    ("O'Neil, Bo", "oneil-bo"),
    ("  Zoë_Ünal  ", "zoe-unal"),
    ("student 7", "student-7"),
])
def test_sanitize_makes_aws_safe_names(raw, safe):
    assert sanitize(raw) == safe


def test_counts_are_numbered_with_padding():
    assert numbered(3) == ("student01", "student02", "student03")
    assert numbered(100)[-1] == "student100" and numbered(100)[0] == "student001"
    assert parse_students("2") == ("student01", "student02")


def test_lists_keep_order():
    assert parse_students("zed, amy ,Bo") == ("zed", "amy", "bo")


def test_roster_file_one_name_per_line_with_comments(tmp_path):
    path = tmp_path / "class.txt"
    path.write_text("# autumn class\nAna María\n\nBo Li\n")
    assert read_roster(path) == ("ana-maria", "bo-li")


def test_roster_csv_with_name_column(tmp_path):
    path = tmp_path / "class.csv"
    path.write_text("email,name\nana@example.org,Ana\nbo@example.org,Bo\n")
    assert read_roster(path) == ("ana", "bo")


@pytest.mark.parametrize("content, needle", [
    ("", "roster is empty"),
    ("email,id\na@x,1\n", "needs a 'name' column"),
    ("Ana\nana\n", "duplicate"),
    ("Ana\n!!!\n", "empty"),
    ("x" * 50 + "\n", "at most 32"),
])
def test_bad_rosters_are_one_line(tmp_path, content, needle):
    path = tmp_path / "roster.txt"
    path.write_text(content)
    with pytest.raises(UsageError) as caught:
        read_roster(path)
    assert needle in str(caught.value) and "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_missing_roster_file(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_roster(tmp_path / "nope.txt")


def test_too_many_names():
    with pytest.raises(ConfigError, match="at most 100"):
        parse_students(",".join(f"s{i}" for i in range(101)))


# -- a roster file is always names ---------------------------------------------------------------------

@pytest.mark.parametrize("content", ["5\n", "0\n", "name\n5\n"])
def test_a_one_line_roster_of_digits_is_one_student_so_named(tmp_path, content):
    path = tmp_path / "roster.txt"
    path.write_text(content)
    names = read_roster(path)
    assert len(names) == 1 and names[0] == content.split()[-1]
    assert parse_students(students_value(names)) == names


@pytest.mark.parametrize("content", [
    "name;email\nAna María;ana@example.org\nBo;bo@example.org\n",  # Excel's CSV in many locales
    "name\temail\nAna María\tana@example.org\nBo\tbo@example.org\n",
    "email,name\nana@example.org,Ana María\nbo@example.org,Bo\n",
    "name;email\n\"Ana María\";ana@example.org\nBo;bo@example.org\n",
])
def test_semicolon_and_tab_rosters_give_names_not_emails(tmp_path, content):
    path = tmp_path / "roster.csv"
    path.write_text(content)
    assert read_roster(path) == ("ana-maria", "bo")


def test_extra_columns_are_ignored_and_named_once(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("name;email;group;ssh_public_key;Notes\nAna;a@x;g1;;late\nBo;b@x;g2;;\n")
    said: list[str] = []
    assert read_roster(path, on_ignored=said.append) == ("ana", "bo")
    assert len(said) == 1 and "group, notes" in said[0] and "\n" not in said[0]


def test_known_columns_alone_say_nothing(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("name,email,ssh_public_key\nAna,a@x,\n")
    said: list[str] = []
    assert read_roster(path, on_ignored=said.append) == ("ana",) and said == []


def test_a_header_without_rows_is_an_empty_roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("name;email\n")
    with pytest.raises(UsageError, match="no students"):
        read_roster(path)


@pytest.mark.parametrize("value", ["1e3", "3.0", "1_0", "2.5e1"])
def test_a_count_that_is_not_digits_is_refused(value):
    with pytest.raises(ConfigError, match="not a whole number"):
        parse_students(value)


def test_names_that_are_not_numbers_stay_names():
    assert parse_students("nan,inf") == ("nan", "inf")
    assert parse_students("5,7") == ("5", "7")


# -- students' own keys: the ssh_public_key column ------------------------------------------------------

ANA_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINv3RdMyzyZRvPrnGCu1IvU1ui88eXyhft6LJ6lghNaD ana@laptop"


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_a_roster_may_carry_each_students_own_public_key(tmp_path, separator):
    path = tmp_path / "class.csv"
    rows = [["name", "email", "ssh_public_key"], ["Ana María", "ana@example.org", ANA_KEY], ["Bo", "bo@example.org", ""]]
    path.write_text("\n".join(separator.join(r) for r in rows) + "\n")
    ignored: list[str] = []
    assert read_roster_keys(path, ignored.append) == (("ana-maria", "bo"), {"ana-maria": ANA_KEY})
    assert ignored == [], "ssh_public_key is a known column"


@pytest.mark.parametrize("key, words", [
    ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= bo@x", ["RSA and ED25519 keys only", "ssh-keygen -t ed25519"]),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", ["this is a private key", ".pub"]),
    ("ssh-ed25519 not-base64!", ["not an OpenSSH public key"]),
])
def test_a_bad_key_in_the_roster_is_one_line_naming_the_row_and_the_fix(tmp_path, key, words):
    path = tmp_path / "class.csv"
    path.write_text(f"name,ssh_public_key\nAna,{ANA_KEY}\nBo Li,{key}\n")
    with pytest.raises(UsageError) as caught:
        read_roster_keys(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"--roster {path}: row 3 (Bo Li): ssh_public_key = ")
    assert all(w in message for w in words), message
    assert caught.value.exit_status == 2


def test_rolelab_roster_prints_the_pulumi_config_for_names_and_keys(tmp_path, capsys):
    import json
    import shlex

    from labs.cli.main import main

    path = tmp_path / "class.csv"
    path.write_text(f"name;ssh_public_key\nAna María;{ANA_KEY}\nBo;\n")
    assert main(["roster", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert shlex.split(lines[0]) == ["pulumi", "config", "set", "rolelab:students", "ana-maria,bo"]
    words = shlex.split(lines[1])
    assert words[:4] == ["pulumi", "config", "set", "rolelab:studentKeys"]
    assert json.loads(words[4]) == {"ana-maria": ANA_KEY}


def test_roster_keys_and_config_student_keys_together_are_refused(tmp_path, capsys):
    from labs.cli.main import main

    path = tmp_path / "class.csv"
    path.write_text(f"name,ssh_public_key\nAna,{ANA_KEY}\n")
    assert main(["plan", "--roster", str(path), "--config", 'studentKeys={"ana": "x"}']) == 2
    assert "keep one" in capsys.readouterr().err
