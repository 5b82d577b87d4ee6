"""The lesson's checks: what each host must show, and how an observation is read.

Expectations come from the host's declared state (role, policies, http_tokens), never
from its name. Observations are read from CommandResults shaped exactly as the host-side
scripts print them: crafted with section(), and recorded from a real lab cloud
(data/imds_local.json, data/awscli_v1.json).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from labs.core.outputs import HostRecord, LabOutputs
from labs.core.result import CommandResult
from labs.lesson import imds_script
from labs.lesson.checks import Check, derive_checks, lab_policies, probe_suffix
from labs.lesson.classify import Outcome
from labs.lesson.probes import PROBES, expected, probes_for
from labs.program.policies import SUPPORTED

DATA = Path(__file__).parent / "data"
ROLE = "DemoRoleForEC2"
ARN = {name: policy.arn for name, policy in SUPPORTED.items()}
NOW = 1_780_000_000  # the host's `date -u +%s` in crafted outputs
REGION = "us-east-1"
S, N, D = str(Outcome.SUCCESS), str(Outcome.NO_CREDENTIALS), str(Outcome.ACCESS_DENIED)


def host(name: str = "with-role", role: str | None = ROLE, policies: tuple[str, ...] = (ARN["IAMReadOnlyAccess"],),
         http_tokens: str = "required", student: str = "student01",
         instance_id: str = "i-0123456789abcdef0") -> HostRecord:
    return HostRecord(student=student, name=name, instance_id=instance_id, address="127.0.0.1", port=2222,
                      user="root", role=role, policies=policies if role else (),
                      imds_endpoint="http://127.0.0.1:8111", http_tokens=http_tokens)


def checks_by_id(record: HostRecord, lab: tuple[str, ...] | None = None, region: str = REGION) -> dict[str, Check]:
    return {c.id: c for c in derive_checks(record, record.policies if lab is None else lab, region)}


# -- the IMDS script's output format -----------------------------------------------------------

def section(name: str, body: str, status: int | str = 200) -> str:
    """One section as the scripts print it: printf '\\n=== rolelab:NAME\\n'; body; '\\n' + http code."""
    return f"\n{imds_script.SECTION}{name}\n{body}\n{status}"


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def credentials(**changes) -> str:
    document = {"Code": "Success", "LastUpdated": iso(NOW - 60), "Type": "AWS-HMAC",
                "AccessKeyId": "ASIAEXAMPLEROLEKEY01", "SecretAccessKey": "c2VjcmV0", "Token": "FQoGZXIvYXdzEXAMPLE",
                "Expiration": iso(NOW + 6 * 3600)}
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}, indent=2)


def info(**changes) -> str:
    document = {"Code": "Success", "LastUpdated": iso(NOW - 60),
                "InstanceProfileArn": f"arn:aws:iam::123456789012:instance-profile/{ROLE}",
                "InstanceProfileId": "AIPAEXAMPLEPROFILE01"}
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}, indent=2)


Reply = tuple[str, int | str]  # (body, http status as curl prints it)


def token_flow(token: Reply = ("56", 200), role: Reply = (ROLE, 200), info_doc: Reply | None = None,
               creds: Reply | None = None, now: int = NOW) -> str:
    """The token flow script's output: token length + PUT status, role, iam/info, host clock, credentials."""
    info_doc = info_doc or (info(), 200)
    creds = creds or (credentials(), 200)
    return "".join([
        section("token", *token), section("role", *role), section("info", *info_doc),
        section("now", str(now)), section("credentials", *creds),
    ])


NOT_FOUND = '<?xml version="1.0" encoding="iso-8859-1"?>\n<title>404 - Not Found</title>\n'
UNREACHABLE = ("000", "000")  # curl -w prints 000, then `|| printf '\n000'` adds another

TOKEN_FLOW_CASES = [
    # (what is wrong, stdout, what the report shows)
    ("valid credentials", token_flow(), f"role {ROLE}: credentials valid"),
    ("Token missing", token_flow(creds=(credentials(Token=None), 200)), f"role {ROLE}: credentials lack Token"),
    ("Token and Expiration empty", token_flow(creds=(credentials(Token="", Expiration=""), 200)),
     f"role {ROLE}: credentials lack Token, Expiration"),
    ("long-term key", token_flow(creds=(credentials(AccessKeyId="AKIAEXAMPLEUSERKEY01"), 200)),
     f"role {ROLE}: credentials are not temporary role keys (Code Success, key AKIA...)"),
    ("Code not Success", token_flow(creds=(credentials(Code="Failure"), 200)),
     f"role {ROLE}: credentials are not temporary role keys (Code Failure, key ASIA...)"),
    ("expires in 4 minutes", token_flow(creds=(credentials(Expiration=iso(NOW + 240)), 200)),
     f"role {ROLE}: credentials expire in 240 s (must be replaced at least 300 s before)"),
    ("expired", token_flow(creds=(credentials(Expiration=iso(NOW - 10)), 200)),
     f"role {ROLE}: credentials expire in -10 s (must be replaced at least 300 s before)"),
    ("expires in exactly 5 minutes", token_flow(creds=(credentials(Expiration=iso(NOW + 300)), 200)),
     f"role {ROLE}: credentials valid"),
    ("Expiration with microseconds", token_flow(creds=(credentials(Expiration="2026-05-28T20:00:00.123456Z"), 200)),
     f"role {ROLE}: Expiration '2026-05-28T20:00:00.123456Z' is not an IMDS timestamp"),
    ("credentials 404", token_flow(creds=(NOT_FOUND, 404)), f"role {ROLE}: credentials HTTP 404"),
    ("credentials not JSON", token_flow(creds=("oops", 200)), f"role {ROLE}: credentials are not JSON"),
    ("iam/info lacks profile", token_flow(info_doc=(info(InstanceProfileArn=None, InstanceProfileId=None), 200)),
     f"role {ROLE}: iam/info lacks InstanceProfileArn, InstanceProfileId"),
    ("iam/info 404", token_flow(info_doc=(NOT_FOUND, 404)),
     f"role {ROLE}: iam/info lacks Code, LastUpdated, InstanceProfileArn, InstanceProfileId"),
    ("other role", token_flow(role=("SomeOtherRole", 200)), "role SomeOtherRole: credentials valid"),
    ("PUT forbidden", token_flow(token=("0", 403)), "no IMDSv2 token (PUT /latest/api/token answered HTTP 403)"),
    ("PUT answered 200 but empty", token_flow(token=("0", 200)),
     "no IMDSv2 token (PUT /latest/api/token answered HTTP 200)"),
    ("IMDS down", token_flow(token=("0", "000"), role=UNREACHABLE, info_doc=UNREACHABLE, creds=UNREACHABLE),
     "IMDS unreachable (no answer to PUT /latest/api/token)"),
    ("no token section", section("role", ROLE), "IMDS unreachable (no answer to PUT /latest/api/token)"),
    ("nothing printed", "", "IMDS unreachable (no answer to PUT /latest/api/token)"),
    ("no role: 404", token_flow(role=(NOT_FOUND, 404), info_doc=(NOT_FOUND, 404), creds=UNREACHABLE),
     "no role (404)"),
    ("IMDS stopped after the token", token_flow(role=UNREACHABLE, info_doc=UNREACHABLE, creds=UNREACHABLE),
     "IMDS unreachable (HTTP 0)"),
    ("role lookup 500", token_flow(role=("boom", 500)), "role lookup HTTP 500"),
]


@pytest.mark.parametrize("stdout, observed", [c[1:] for c in TOKEN_FLOW_CASES], ids=[c[0] for c in TOKEN_FLOW_CASES])
def test_token_flow_observation(stdout, observed):
    check = checks_by_id(host())["imds-credentials"]
    assert check.evaluate(CommandResult(check.command, 0, stdout, "")) == observed


def test_token_flow_passes_only_for_valid_credentials_of_the_declared_role():
    check = checks_by_id(host())["imds-credentials"]
    passing = [name for name, stdout, _ in TOKEN_FLOW_CASES
               if check.evaluate(CommandResult(check.command, 0, stdout, "")) == check.expected]
    assert passing == ["valid credentials", "expires in exactly 5 minutes"]


def test_no_role_host_expects_404_and_refuses_credentials():
    check = checks_by_id(host("no-role", role=None))["imds-credentials"]
    assert check.expected == "no role (404)"
    assert check.evaluate(CommandResult(check.command, 0, token_flow(), "")) == f"role {ROLE}: credentials valid"
    # the no-role check cannot pass for the wrong reason: no token, or no IMDS, is not "no role"
    for stdout in (token_flow(token=("0", 403)), token_flow(token=("0", "000")), token_flow(role=UNREACHABLE), ""):
        assert check.evaluate(CommandResult(check.command, 0, stdout, "")) != check.expected


@pytest.mark.parametrize("http_tokens, stdout, observed, passes", [
    ("required", section("tokenless", "<title>401 - Unauthorized</title>", 401), "HTTP 401", True),
    ("required", section("tokenless", "i-0123456789abcdef0", 200), "HTTP 200", False),  # IMDSv1 still open
    ("optional", section("tokenless", "i-0123456789abcdef0", 200), "HTTP 200", True),
    ("optional", section("tokenless", "<title>401 - Unauthorized</title>", 401), "HTTP 401", False),
    ("required", section("tokenless", "000", "000"), "IMDS unreachable", False),
    ("required", "", "IMDS unreachable", False),
])
def test_tokenless_request(http_tokens, stdout, observed, passes):
    check = checks_by_id(host(http_tokens=http_tokens))["imds-tokenless"]
    seen = check.evaluate(CommandResult(check.command, 0, stdout, ""))
    assert seen == observed
    assert (seen == check.expected) is passes, f"http_tokens={http_tokens}: expected {check.expected}, saw {seen}"


@pytest.mark.parametrize("rc, stdout, observed", [
    (0, "checked\n", "nothing stored"),
    (0, "credentials-file\nchecked\n", "stored: credentials-file"),
    (0, "keys-in-config\naccess-key-env\nsecret-key-env\nchecked\n",
     "stored: keys-in-config, access-key-env, secret-key-env"),
    (255, "", "could not look (exit 255)"),  # the script did not finish: never "nothing stored"
    (127, "credentials-file\n", "could not look (exit 127)"),
])
def test_nothing_stored(rc, stdout, observed):
    check = checks_by_id(host())["nothing-stored"]
    assert check.expected == "nothing stored"
    assert check.evaluate(CommandResult(check.command, rc, stdout, "")) == observed


@pytest.mark.parametrize("rc, stdout, stderr, observed", [
    (0, json.dumps({"UserId": "AROAEXAMPLE:i-0123456789abcdef0", "Account": "123456789012",
                    "Arn": f"arn:aws:sts::123456789012:assumed-role/{ROLE}/i-0123456789abcdef0"}), "",
     f"assumed-role/{ROLE}/i-0123456789abcdef0"),
    (0, json.dumps({"Arn": f"arn:aws:sts::123456789012:assumed-role/{ROLE}/someone-else"}), "",
     f"assumed-role/{ROLE}/someone-else"),
    (0, json.dumps({"Arn": "arn:aws:iam::123456789012:user/alice"}), "", "user/alice"),  # stored user keys
    (0, json.dumps({"Arn": "not-an-arn"}), "", "not-an-arn"),
    (255, "", 'Unable to locate credentials. You can configure credentials by running "aws configure".\n',
     "NoCredentials"),
    (254, "", "An error occurred (AccessDenied) when calling the GetCallerIdentity operation", "AccessDenied"),
])
def test_caller_identity(rc, stdout, stderr, observed):
    check = checks_by_id(host())["sts-caller-identity"]
    assert check.expected == f"assumed-role/{ROLE}/i-0123456789abcdef0"
    assert check.evaluate(CommandResult(check.command, rc, stdout, stderr)) == observed


# -- recorded from a real local lab cloud ---------------------------------------------------------

RECORDED_IMDS = {k: v for k, v in json.loads((DATA / "imds_local.json").read_text()).items() if not k.startswith("_")}
RECORDED_CLI = json.loads((DATA / "awscli_v1.json").read_text())
RECORDED_PROBES = {  # probe id -> the recorded awscli v1 run of that command on that host
    "no-role": {"iam-list-users": "no_role_list_users"},
    "with-role": {"iam-list-users": "with_role_list_users", "iam-list-roles": "with_role_list_roles",
                  "iam-create-user": "with_role_create_user", "sts-caller-identity": "with_role_caller_identity"},
}


@pytest.mark.parametrize("kind", ["no-role", "with-role"])
def test_the_recorded_default_lab_passes_every_check_it_has_output_for(kind):
    """A correct lab, recorded once: every derived check that has a recording must pass on it."""
    key = kind.replace("-", "_")
    raw = RECORDED_IMDS[f"{key}_token_flow"]["host_record"]
    record = HostRecord(**dict(raw, policies=tuple(raw["policies"])))
    imds_checks = checks_by_id(record, (ARN["IAMReadOnlyAccess"],))
    # the aws CLI runs were recorded on an earlier lab of the same shape: judge them as that instance
    cli_host = replace(record, instance_id=RECORDED_CLI[RECORDED_PROBES[kind]["iam-list-users"]]["instance_id"])
    cli_checks = checks_by_id(cli_host, (ARN["IAMReadOnlyAccess"],))
    pairs = [(imds_checks["imds-tokenless"], RECORDED_IMDS[f"{key}_tokenless"]),
             (imds_checks["imds-credentials"], RECORDED_IMDS[f"{key}_token_flow"]),
             (imds_checks["nothing-stored"], RECORDED_IMDS[f"{key}_nothing_stored"])]
    pairs += [(cli_checks[probe], RECORDED_CLI[name]) for probe, name in RECORDED_PROBES[kind].items()]
    for check, run in pairs:
        observed = check.evaluate(CommandResult(run["command"], run["rc"], run["stdout"], run["stderr"]))
        assert observed == check.expected, f"{record.label} {check.id}: expected {check.expected}, observed {observed}"


@pytest.mark.parametrize("record", [None, "no-role"])
def test_recorded_imds_outage_is_reported_as_imds_not_as_no_role(record):
    """Recorded: the token flow against a loopback port where nothing listens."""
    run = RECORDED_IMDS["with_role_token_flow_imds_down"]
    target = host("no-role", role=None) if record else host()
    check = checks_by_id(target)["imds-credentials"]
    observed = check.evaluate(CommandResult(run["command"], run["rc"], run["stdout"], run["stderr"]))
    assert observed == "IMDS unreachable (no answer to PUT /latest/api/token)"
    assert observed != check.expected


def test_crafted_sections_parse_like_the_recorded_script_output():
    recorded = imds_script.parse_sections(RECORDED_IMDS["with_role_token_flow"]["stdout"])
    crafted = imds_script.parse_sections(token_flow())
    assert list(recorded) == list(crafted) == ["token", "role", "info", "now", "credentials"]
    assert [s for s, _ in recorded.values()] == [s for s, _ in crafted.values()] == [200] * 5
    assert recorded["role"][1] == ROLE


# -- probe expectations: from policies, for every supported policy -------------------------------

POLICY_EXPECTATIONS = {
    # policy -> {probe: outcome} for exactly the probes a lab with that policy runs, in order
    "IAMReadOnlyAccess": {"iam-list-users": S, "iam-list-roles": S, "iam-create-user": D},
    "AmazonS3ReadOnlyAccess": {"iam-list-users": D, "iam-list-roles": D, "iam-create-user": D,
                               "s3-list-buckets": S, "s3-create-bucket": D},
    "AmazonS3FullAccess": {"iam-list-users": D, "iam-list-roles": D, "iam-create-user": D,
                           "s3-list-buckets": S, "s3-create-bucket": S},
    "AmazonEC2ReadOnlyAccess": {"iam-list-users": D, "iam-list-roles": D, "iam-create-user": D,
                                "ec2-describe-instances": S},
    "CloudWatchAgentServerPolicy": {"iam-list-users": D, "iam-list-roles": D, "iam-create-user": D,
                                    "logs-describe-log-groups": S},
    "AmazonSSMManagedInstanceCore": {"iam-list-users": D, "iam-list-roles": D, "iam-create-user": D,
                                     "ssm-get-parameter": S},
}


def test_every_supported_policy_has_a_row():
    assert set(POLICY_EXPECTATIONS) == set(SUPPORTED)


@pytest.mark.parametrize("policy", sorted(POLICY_EXPECTATIONS))
def test_role_host_probe_expectations(policy):
    record = host(policies=(ARN[policy],))
    probes = probes_for(record.policies)
    assert [p.id for p in probes] == list(POLICY_EXPECTATIONS[policy])
    assert {p.id: str(expected(p, ROLE, record.policies)) for p in probes} == POLICY_EXPECTATIONS[policy]
    checks = checks_by_id(record)
    assert {pid: checks[pid].expected for pid in POLICY_EXPECTATIONS[policy]} == POLICY_EXPECTATIONS[policy]


@pytest.mark.parametrize("policy", sorted(POLICY_EXPECTATIONS))
def test_no_role_host_expects_no_credentials_for_every_probe(policy):
    record = host("no-role", role=None)
    checks = checks_by_id(record, (ARN[policy],))  # the student's lab policies still choose the probes
    for pid in POLICY_EXPECTATIONS[policy]:
        assert checks[pid].expected == N, f"{pid} on a host without a role"
        assert checks[pid].hint == ""


def test_policies_combine_and_each_probe_runs_once():
    arns = (ARN["IAMReadOnlyAccess"], ARN["AmazonS3ReadOnlyAccess"], ARN["AmazonS3FullAccess"])
    record = host(policies=arns)
    assert [p.id for p in probes_for(arns)] == ["iam-list-users", "iam-list-roles", "iam-create-user",
                                                "s3-list-buckets", "s3-create-bucket"]
    checks = checks_by_id(record)
    assert [checks[p].expected for p in ("iam-list-users", "iam-create-user", "s3-create-bucket")] == [S, D, S]


def test_unknown_policy_arn_adds_no_probes_and_grants_nothing():
    unknown = ("arn:aws:iam::123456789012:policy/Custom",)
    assert [p.id for p in probes_for(unknown)] == ["iam-list-users", "iam-list-roles", "iam-create-user"]
    assert expected(PROBES["iam-list-users"], ROLE, unknown) is Outcome.ACCESS_DENIED


# -- derive_checks decides from declared state, never from names -----------------------------------

def test_host_named_no_role_but_declaring_a_role_gets_role_expectations():
    checks = checks_by_id(host("no-role", role=ROLE))
    assert checks["imds-credentials"].expected == f"role {ROLE}: credentials valid"
    assert checks["iam-list-users"].expected == S and checks["iam-create-user"].expected == D
    assert "sts-caller-identity" in checks


def test_host_named_with_role_but_declaring_none_gets_no_role_expectations():
    checks = checks_by_id(host("with-role", role=None), (ARN["IAMReadOnlyAccess"],))
    assert checks["imds-credentials"].expected == "no role (404)"
    assert {checks[p].expected for p in ("iam-list-users", "iam-list-roles", "iam-create-user")} == {N}
    assert "sts-caller-identity" not in checks


def test_http_tokens_decides_the_tokenless_expectation():
    assert checks_by_id(host(http_tokens="required"))["imds-tokenless"].expected == "HTTP 401"
    assert checks_by_id(host("imdsv1", http_tokens="optional"))["imds-tokenless"].expected == "HTTP 200"


def test_check_order_and_identity():
    record = host()
    assert [c.id for c in derive_checks(record, record.policies, REGION)] == [
        "imds-tokenless", "imds-credentials", "iam-list-users", "iam-list-roles", "iam-create-user",
        "sts-caller-identity", "nothing-stored"]
    assert {c.label for c in derive_checks(record, record.policies, REGION)} >= {"verify:student01/with-role:iam-list-users"}


def test_scripts_talk_to_the_declared_imds_endpoint_only():
    record = host()
    checks = checks_by_id(record)
    for check_id in ("imds-tokenless", "imds-credentials"):
        assert record.imds_endpoint in checks[check_id].command
        assert "169.254.169.254" not in checks[check_id].command
    assert "X-aws-ec2-metadata-token-ttl-seconds: 300" in checks["imds-credentials"].command


def test_probe_commands_are_unique_per_host_and_clean_up():
    record = host(policies=(ARN["AmazonS3FullAccess"],), student="Student_07", instance_id="i-0abcdef1234567890")
    assert probe_suffix(record) == "student-07-34567890"
    checks = checks_by_id(record)
    create_user = checks["iam-create-user"]
    assert create_user.command == "aws iam create-user --user-name rolelab-probe-student-07-34567890 --output json"
    assert create_user.title == "aws iam create-user --user-name rolelab-probe-student-07-34567890"
    assert create_user.must_not_exist == "rolelab-probe-student-07-34567890"
    bucket = checks["s3-create-bucket"]
    assert bucket.command == "aws s3api create-bucket --bucket rolelab-probe-student-07-34567890 --output json"
    assert bucket.undo == "aws s3api delete-bucket --bucket rolelab-probe-student-07-34567890"
    assert checks["iam-list-users"].title == "aws iam list-users"
    other = replace(record, instance_id="i-0abcdef1299999999")
    assert probe_suffix(other) != probe_suffix(record)


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2", "us-west-2"])
def test_outside_us_east_1_the_bucket_probe_names_the_region_as_s3_requires(region):
    """S3 refuses CreateBucket without a LocationConstraint outside us-east-1 (and with one inside it):
    without it, a full-access host would see an error, never Success."""
    record = host(policies=(ARN["AmazonS3FullAccess"],))
    bucket = checks_by_id(record, region=region)["s3-create-bucket"]
    assert bucket.command == (f"aws s3api create-bucket --bucket rolelab-probe-{probe_suffix(record)} "
                              f"--create-bucket-configuration LocationConstraint={region} --output json")
    assert bucket.title == bucket.command.removesuffix(" --output json")
    assert bucket.undo == f"aws s3api delete-bucket --bucket rolelab-probe-{probe_suffix(record)}"
    assert "LocationConstraint" not in checks_by_id(record, region="us-east-1")["s3-create-bucket"].command
    others = {c.id: c.command for c in checks_by_id(record, region=region).values() if c.id != "s3-create-bucket"}
    assert others == {c.id: c.command for c in checks_by_id(record).values() if c.id != "s3-create-bucket"}


def test_the_suite_spells_probes_for_the_outputs_region():
    from labs.lesson.suite import lab_checks

    record = host(policies=(ARN["AmazonS3ReadOnlyAccess"],))
    commands = {c.id: c.command for c in lab_checks(LabOutputs("aws", "eu-central-1", "dev", (record,)))}
    assert "--create-bucket-configuration LocationConstraint=eu-central-1 " in commands["s3-create-bucket"]


def test_probe_evaluate_is_classify():
    check = checks_by_id(host())["iam-create-user"]
    denied = RECORDED_CLI["with_role_create_user"]
    assert check.evaluate(CommandResult(check.command, denied["rc"], denied["stdout"], denied["stderr"])) == D
    assert check.evaluate(CommandResult(check.command, 0, '{"User": {"UserName": "x"}}', "")) == S


def test_lab_policies_are_the_students_own():
    hosts = (host("no-role", role=None), host(policies=(ARN["IAMReadOnlyAccess"], ARN["AmazonS3ReadOnlyAccess"])),
             host(student="student02", policies=(ARN["AmazonEC2ReadOnlyAccess"],)))
    assert lab_policies(hosts, "student01") == (ARN["IAMReadOnlyAccess"], ARN["AmazonS3ReadOnlyAccess"])
    assert lab_policies(hosts, "student02") == (ARN["AmazonEC2ReadOnlyAccess"],)


def test_verify_hands_out_aws_checks_first_and_takes_hosts_in_turn():
    from labs.verify.runner import submission_order

    a = host("no-role", role=None, instance_id="i-0000000000000000a")
    b = host("with-role", instance_id="i-0000000000000000b")
    policies = (ARN["IAMReadOnlyAccess"],)
    checks = derive_checks(a, policies, REGION) + derive_checks(b, policies, REGION)  # host by host, as the suite builds them
    order = submission_order(checks)

    assert sorted(c.label for c in order) == sorted(c.label for c in checks)
    is_aws = [c.command.startswith("aws ") for c in order]
    assert is_aws == sorted(is_aws, reverse=True), "every aws CLI check comes before the short ones"
    aws_hosts = [c.host.name for c in order if c.command.startswith("aws ")]
    assert aws_hosts[:4] == ["no-role", "with-role", "no-role", "with-role"], aws_hosts
