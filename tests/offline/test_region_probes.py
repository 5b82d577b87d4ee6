"""Outside us-east-1 the lesson's S3 write probe carries the LocationConstraint S3 (and moto) require,
so a full-access host creates its bucket and a read-only one is AccessDenied, as the lesson says."""

from __future__ import annotations

import json

from labs.cli.main import main
from labs.provision import local
from labs.provision.operator import operator_clients

STACK = "euwest-s3"
REGION = "eu-west-1"


def verify(capsys) -> tuple[int, dict[tuple[str, str], dict]]:
    code = main(["verify", "--local", "--stack", STACK, "--json", "--quiet", "--settle", "1"])
    report = json.loads(capsys.readouterr().out)
    return code, {(r["host"], r["check"]): r for r in report["results"]}


def test_the_bucket_probe_behaves_as_the_lesson_says_in_another_region(capsys):
    local.down(STACK)
    try:
        outputs = local.up({"policies": "AmazonS3ReadOnlyAccess"}, stack=STACK, region=REGION).outputs
        assert outputs.region == REGION
        code, found = verify(capsys)
        create = found[("with-role", "s3-create-bucket")]
        assert f"LocationConstraint={REGION}" in create["command"]
        assert (create["expected"], create["observed"], create["status"]) == ("AccessDenied", "AccessDenied", "pass")
        assert found[("no-role", "s3-create-bucket")]["observed"] == "NoCredentials"
        assert code == 0, [r for r in found.values() if r["status"] != "pass"]

        assert main(["local", "up", "--stack", STACK, "--region", REGION, "--config", "policies=AmazonS3FullAccess"]) == 0
        capsys.readouterr()
        code, found = verify(capsys)
        create = found[("with-role", "s3-create-bucket")]
        assert (create["expected"], create["status"]) == ("Success", "pass"), create
        assert code == 0, [r for r in found.values() if r["status"] != "pass"]
        s3 = operator_clients(local.read_outputs(STACK))("s3")
        assert not [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("rolelab-probe-")], \
            "the probe's bucket is deleted again"
    finally:
        local.down(STACK)
