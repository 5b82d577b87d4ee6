"""Grading a student's exercise from what was seen: each step done, todo or wrong, with the next action."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from labs.core.trust import trust_problem
from labs.lesson.exercise import STEPS, Seen, grade

READ = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
EC2_TRUST = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole"}]}


def finished() -> Seen:
    return Seen("DemoRoleForEC2", (READ,), "i-0abc", role_exists=True, trust_document=EC2_TRUST, attached=(READ,),
                profiles=("DemoRoleForEC2",), associated="DemoRoleForEC2", list_users="Success",
                create_user="AccessDenied", stored="nothing stored")


def statuses(seen: Seen) -> dict[str, str]:
    return {r.id: r.status for r in grade(seen)}


def test_the_steps_are_in_the_lessons_order_and_a_finished_lab_is_all_done():
    results = grade(finished())
    assert [r.id for r in results] == [s.id for s in STEPS]
    assert {r.status for r in results} == {"done"} and all(not r.hint for r in results)


def test_a_fresh_exercise_is_all_todo_with_the_first_action_named():
    results = grade(Seen("DemoRoleForEC2", (READ,), "i-0abc", list_users="NoCredentials",
                         create_user="NoCredentials", stored="nothing stored"))
    assert {r.status for r in results} == {"todo"}
    assert "aws iam create-role --role-name DemoRoleForEC2" in results[0].hint and "docs/LAB.md" in results[0].hint


@pytest.mark.parametrize("principal, reason", [
    ({"Service": "lambda.amazonaws.com"}, "lambda.amazonaws.com, not ec2.amazonaws.com"),
    ("*", "any principal"),
    ({"AWS": "arn:aws:iam::123456789012:root"}, "an account or user"),
])
def test_a_trust_other_than_ec2_is_wrong_with_the_reason(principal, reason):
    document = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
    assert reason in trust_problem(document)
    results = {r.id: r for r in grade(replace(finished(), trust_document=json.dumps(document)))}
    assert results["role-trust"].status == "wrong" and reason in results["role-trust"].observed


@pytest.mark.parametrize("change, words", [
    ({"attached": (READ, "arn:aws:iam::aws:policy/AdministratorAccess")}, "AdministratorAccess"),
    ({"attached": ("arn:aws:iam::aws:policy/IAMFullAccess",)}, "IAMFullAccess"),
    ({"inline": {"all": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}}, "inline all"),
])
def test_a_broader_grant_is_wrong_least_privilege(change, words):
    result = next(r for r in grade(replace(finished(), **change)) if r.id == "role-policy")
    assert result.status == "wrong" and words in result.observed and "least privilege" in result.hint


def test_a_new_instance_instead_of_the_running_one_is_wrong():
    seen = replace(finished(), associated=None, elsewhere=("i-0new",), list_users="NoCredentials",
                   create_user="NoCredentials")
    result = next(r for r in grade(seen) if r.id == "profile-associated")
    assert result.status == "wrong" and "i-0new" in result.observed and "--instance-id i-0abc" in result.hint


def test_a_stored_key_makes_list_users_work_for_the_wrong_reason():
    got = statuses(replace(finished(), stored="stored: credentials-file"))
    assert got["nothing-stored"] == "wrong" and got["list-users-works"] == "wrong"


def test_a_created_user_means_the_role_can_write_iam():
    got = statuses(replace(finished(), create_user="Success", user_created=True))
    assert got["create-user-denied"] == "wrong"
