"""Students as a count, a list or a roster file: sanitized, and refused when unsafe."""

from __future__ import annotations

import pytest

from labs.core.errors import ConfigError, UsageError
from labs.program.roster import numbered, parse_students, read_roster, sanitize


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
