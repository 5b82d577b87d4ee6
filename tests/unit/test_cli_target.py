"""The CLI names the lab as a person does: the hint after `local up`, roster names for --student."""

from __future__ import annotations

import pytest

from labs.cli.main import resolve_student, try_line
from labs.core.errors import UsageError
from labs.core.outputs import HostRecord, LabOutputs


def outputs(stack: str, *students: str) -> LabOutputs:
    hosts = tuple(HostRecord(s, name, f"i-{n:017x}", "127.0.0.1", 2200 + n, "lab", None, (), "http://127.0.0.1:1",
                             "required") for n, (s, name) in enumerate((s, h) for s in students
                                                                       for h in ("no-role", "with-role")))
    return LabOutputs("local", "us-east-1", stack, hosts)


def test_the_hint_after_local_up_names_a_student_in_a_class_and_the_stack_when_not_default():
    assert try_line(outputs("local", "student01")) == "rolelab ssh with-role -- aws iam list-users"
    assert try_line(outputs("ux1", "ana-maria", "bo", "cy")) == (
        "rolelab ssh with-role --student ana-maria --stack ux1 -- aws iam list-users")


def test_a_student_is_found_by_slug_or_by_roster_name():
    lab = outputs("ux1", "ana-maria", "bo")
    assert resolve_student(lab, "ana-maria") == resolve_student(lab, "Ana María") == "ana-maria"
    with pytest.raises(UsageError, match=r"--student 'Zed': no such student .*students: ana-maria, bo"):
        resolve_student(lab, "Zed")
