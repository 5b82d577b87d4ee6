"""classify() on real aws CLI output: what the report calls Success, NoCredentials, AccessDenied.

awscli_v1.json was recorded once from a local lab cloud (the real PyPI aws CLI over sshd,
credentials from the IMDS emulator, authorization by moto); awscli_v2.json is transcribed
from the documented v2 behaviour (see its "_source"). The tests never regenerate them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labs.core.result import CommandResult
from labs.lesson.classify import Outcome, classify

DATA = Path(__file__).parent / "data"


def load(name: str) -> dict[str, dict]:
    return {k: v for k, v in json.loads((DATA / name).read_text()).items() if not k.startswith("_")}


V1 = load("awscli_v1.json")
V2 = load("awscli_v2.json")

# fixture -> what a person must be told. Every fixture in the files is listed (checked below).
EXPECTED_V1 = {
    "no_role_list_users": Outcome.NO_CREDENTIALS,
    "no_role_caller_identity": Outcome.NO_CREDENTIALS,
    "with_role_list_users": Outcome.SUCCESS,
    "with_role_list_roles": Outcome.SUCCESS,
    "with_role_caller_identity": Outcome.SUCCESS,
    "with_role_create_user": Outcome.ACCESS_DENIED,
    # denied under IAMReadOnlyAccess; moto's EC2 says AccessDenied (AWS says UnauthorizedOperation, see v2)
    "with_role_ec2_describe_instances": Outcome.ACCESS_DENIED,
    # JSON-protocol services: "An error occurred (403)" with the AccessDenied code inside an XML body
    "with_role_logs_describe_log_groups": Outcome.ACCESS_DENIED,
    "with_role_ssm_get_parameter": Outcome.ACCESS_DENIED,
    # S3: "Access Denied", no "is not authorized" sentence at all
    "with_role_s3api_list_buckets": Outcome.ACCESS_DENIED,
    "with_role_s3api_create_bucket": Outcome.ACCESS_DENIED,
    "iamro_s3_ls_denied": Outcome.ACCESS_DENIED,
    "with_role_bogus_flag": Outcome.OTHER_ERROR,  # exit 255 like a denial, but a usage error
    "s3full_s3_ls": Outcome.OTHER_ERROR,  # exit 0, but text rather than the JSON an API call prints
    "s3full_s3api_list_buckets": Outcome.SUCCESS,
    "s3full_s3api_create_bucket": Outcome.SUCCESS,
    "ec2ro_describe_instances": Outcome.SUCCESS,
    "s3full_iam_list_users": Outcome.ACCESS_DENIED,
}

EXPECTED_V2 = {
    "v2_no_credentials_pre_2_32": Outcome.NO_CREDENTIALS,
    "v2_no_credentials_2_32_aws_login": Outcome.NO_CREDENTIALS,
    "v2_no_credentials_2_34": Outcome.NO_CREDENTIALS,
    "v2_list_users_success": Outcome.SUCCESS,
    "v2_create_user_access_denied_pre_2_34": Outcome.ACCESS_DENIED,
    "v2_create_user_access_denied_2_34": Outcome.ACCESS_DENIED,
    "v2_ec2_unauthorized_operation": Outcome.ACCESS_DENIED,
    # mutating EC2 calls carry only an encoded message: the error code is the one stable token
    "v2_ec2_unauthorized_encoded_message": Outcome.ACCESS_DENIED,
    "v2_logs_access_denied_exception": Outcome.ACCESS_DENIED,
    "v2_unknown_option": Outcome.OTHER_ERROR,  # 252
    "v2_profile_not_found": Outcome.OTHER_ERROR,  # 253, but not missing credentials
    "v2_no_such_entity": Outcome.OTHER_ERROR,  # 254, but not a denial
    "v2_endpoint_unreachable": Outcome.OTHER_ERROR,  # 255
    "v2_s3_ls_text": Outcome.OTHER_ERROR,
}


def as_result(name: str, fixture: dict) -> CommandResult:
    return CommandResult(fixture.get("command", name), fixture["rc"], fixture["stdout"], fixture["stderr"])


def test_every_fixture_has_an_expectation():
    assert set(EXPECTED_V1) == set(V1), "awscli_v1.json and EXPECTED_V1 disagree"
    assert set(EXPECTED_V2) == set(V2), "awscli_v2.json and EXPECTED_V2 disagree"


@pytest.mark.parametrize("name", sorted(EXPECTED_V1))
def test_recorded_awscli_v1_output(name):
    fixture = V1[name]
    assert classify(as_result(name, fixture)) is EXPECTED_V1[name], (
        f"{name}: `{fixture['command']}` on {fixture['host']} exit {fixture['rc']}, stderr {fixture['stderr'][-160:]!r}")


@pytest.mark.parametrize("name", sorted(EXPECTED_V2))
def test_documented_awscli_v2_output(name):
    fixture = V2[name]
    assert classify(as_result(name, fixture)) is EXPECTED_V2[name], (
        f"{name} (v{fixture['version']}): exit {fixture['rc']}, stderr {fixture['stderr'][-160:]!r}")


def test_recorded_fixtures_show_the_lessons_facts():
    """The fixtures themselves are what the lesson promises (guards against re-recording junk)."""
    assert V1["no_role_list_users"]["rc"] == 255
    assert 'Unable to locate credentials. You can configure credentials by running "aws configure".' in \
        V1["no_role_list_users"]["stderr"]
    assert "Users" in json.loads(V1["with_role_list_users"]["stdout"])
    denied = V1["with_role_create_user"]
    assert denied["rc"] == 255 and "(AccessDenied)" in denied["stderr"]
    assert "is not authorized to perform: iam:CreateUser" in denied["stderr"]
    assert all(V2[n]["rc"] == 253 for n in V2 if n.startswith("v2_no_credentials"))
    assert V2["v2_create_user_access_denied_2_34"]["rc"] == 254


def test_v2_samples_carry_the_right_version_labels():
    """2.32 changed the hint to "aws login"; 2.34 added the 'aws: [ERROR]: ' prefix and the NoCredentials code."""
    assert V2["v2_no_credentials_pre_2_32"]["stderr"].strip() == (
        'Unable to locate credentials. You can configure credentials by running "aws configure".')
    assert V2["v2_no_credentials_2_32_aws_login"]["stderr"].strip() == (
        'Unable to locate credentials. You can configure credentials by running "aws login".')
    assert V2["v2_no_credentials_2_34"]["stderr"].strip() == (
        'aws: [ERROR]: An error occurred (NoCredentials): Unable to locate credentials. '
        'You can configure credentials by running "aws login".')
    for name, sample in V2.items():
        if sample["rc"] == 0:
            continue
        prefixed = any(line.startswith("aws: [ERROR]: ") for line in sample["stderr"].splitlines())
        assert prefixed == (sample["version"] == "2.34+"), f"{name}: labelled {sample['version']}"
        if "Unable to locate credentials" in sample["stderr"]:
            assert ('"aws login"' in sample["stderr"]) == (sample["version"] != "2.15-2.31"), name


@pytest.mark.parametrize("rc, stderr, outcome", [
    # the no-credentials token only counts with a no-credentials exit code
    (253, "Unable to locate credentials", Outcome.NO_CREDENTIALS),
    (255, "Unable to locate credentials", Outcome.NO_CREDENTIALS),
    (254, "Unable to locate credentials", Outcome.OTHER_ERROR),
    (253, "aws: [ERROR]: An error occurred (NoCredentials): no credentials found", Outcome.NO_CREDENTIALS),
    (254, "aws: [ERROR]: An error occurred (NoCredentials): no credentials found", Outcome.OTHER_ERROR),
    (1, "Unable to locate credentials", Outcome.OTHER_ERROR),
    # denial tokens only count with a service-error exit code
    (254, "An error occurred (AccessDenied) when calling", Outcome.ACCESS_DENIED),
    (255, "User: x is not authorized to perform: iam:ListUsers", Outcome.ACCESS_DENIED),
    (253, "An error occurred (AccessDenied) when calling", Outcome.OTHER_ERROR),
    (2, "An error occurred (AccessDenied) when calling", Outcome.OTHER_ERROR),
    (255, "Could not connect to the endpoint URL", Outcome.OTHER_ERROR),
    (255, "", Outcome.OTHER_ERROR),
])
def test_exit_code_and_token_must_agree(rc, stderr, outcome):
    assert classify(CommandResult("aws iam list-users", rc, "", stderr)) is outcome


@pytest.mark.parametrize("stdout, outcome", [
    ('{"Users": []}', Outcome.SUCCESS),
    ("[]", Outcome.SUCCESS),
    ("", Outcome.OTHER_ERROR),  # a silent exit 0 is not proof the API answered
    ("2024-05-01 10:00:00 bucket\n", Outcome.OTHER_ERROR),
])
def test_exit_zero_needs_json(stdout, outcome):
    assert classify(CommandResult("aws ...", 0, stdout, "")) is outcome


def test_only_stderr_decides_a_failure():
    """A denial token echoed on stdout (e.g. a user named AccessDenied) does not make a usage error a denial."""
    result = CommandResult("aws iam get-user", 252, '{"UserName": "AccessDenied"}', "Unknown options: --bogus")
    assert classify(result) is Outcome.OTHER_ERROR


def test_outcome_prints_as_the_report_spells_it():
    assert [str(o) for o in Outcome] == ["Success", "NoCredentials", "AccessDenied", "OtherError"]
