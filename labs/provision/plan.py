"""`rolelab plan`: what `pulumi up` would create, computed offline from the real program."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labs.program import config as lab_config
from labs.provision.fakecloud import FakeCloud
from labs.provision.mockrun import ProgramRun, Registration, run_program

# Stand-ins for the two keys only a real account needs, so a plan works before setup.
PLACEHOLDERS = {
    "sshCidr": "203.0.113.10/32",
    "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f "
                    "rolelab-plan-placeholder",
}


@dataclass
class Plan:
    config: lab_config.LabConfig
    run: ProgramRun
    placeholders: tuple[str, ...]

    @property
    def resources(self) -> list[Registration]:
        return [r for r in self.run.registrations if r.custom]


def make_plan(values: Mapping[str, str], stack: str = "dev", region: str = lab_config.DEFAULT_REGION) -> Plan:
    filled = {k: v for k, v in PLACEHOLDERS.items() if not values.get(k)}
    merged = {**values, **filled}
    parsed = lab_config.parse(merged, region=region, stack=stack)  # exit 2 before running anything
    return Plan(parsed, run_program(FakeCloud(), merged, stack=stack, region=region), tuple(filled))


def short_type(token: str) -> str:
    return token.rsplit(":", 1)[-1]


def describe(reg: Registration) -> str:
    """The few properties of a resource a student or reviewer wants to see."""
    i = reg.inputs
    if reg.type == "aws:iam/role:Role":
        import json
        trust = json.loads(i.get("assumeRolePolicy", "{}"))
        principals = sorted({p for s in trust.get("Statement", []) for p in _listify(s.get("Principal", {}).get("Service"))})
        return f"name={i.get('name')}  trusted by {', '.join(principals) or '?'}"
    if reg.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        return f"policy={str(i.get('policyArn', '')).rsplit('/', 1)[-1]}"
    if reg.type == "aws:iam/instanceProfile:InstanceProfile":
        return f"name={i.get('name')}  role={i.get('role')}"
    if reg.type == "aws:ec2/securityGroup:SecurityGroup":
        rules = [f"{r.get('protocol')}/{int(r.get('fromPort', 0))} from {', '.join(r.get('cidrBlocks') or r.get('ipv6CidrBlocks') or [])}"
                 for r in i.get("ingress", [])]
        return "ingress " + "; ".join(rules) + "  egress all"
    if reg.type == "aws:ec2/keyPair:KeyPair":
        return f"key_name={i.get('keyName')}"
    if reg.type == "aws:ec2/instance:Instance":
        meta = i.get("metadataOptions", {})
        encrypted = i.get("rootBlockDevice", {}).get("encrypted")
        return (f"{i.get('instanceType')}  profile={i.get('iamInstanceProfile') or 'none'}  "
                f"http_tokens={meta.get('httpTokens')}  root volume {'encrypted' if encrypted else 'NOT encrypted'}  "
                f"shutdown={i.get('instanceInitiatedShutdownBehavior')}")
    if reg.type == "tls:index/privateKey:PrivateKey":
        return f"{i.get('algorithm')} SSH host key, secret in the state"
    return ""


def _listify(value: Any) -> list:
    return value if isinstance(value, list) else [value] if value else []


def render(plan: Plan) -> str:
    c = plan.config
    lines = [
        f"Plan for stack {c.stack!r} in {c.region}: {len(c.students)} student(s), "
        f"role {c.role_name_for(c.students[0]) if not c.class_mode else c.role_name + '-<student>'}, "
        f"policies {', '.join(c.policies)}",
    ]
    for key in plan.placeholders:
        lines.append(f"  note: rolelab:{key} is not set; planned with a placeholder (pulumi up requires it)")
    lines.append("")
    by_parent: dict[str, list[Registration]] = {}
    urns = {r.urn for r in plan.run.registrations}
    for reg in plan.run.registrations:
        by_parent.setdefault(reg.parent if reg.parent in urns else "", []).append(reg)
    for children in by_parent.values():
        children.sort(key=lambda r: r.name)  # registration order varies; the tree must not

    def walk(parent: str, prefix: str) -> None:
        children = by_parent.get(parent, [])
        for index, reg in enumerate(children):
            last = index == len(children) - 1
            detail = describe(reg)
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{short_type(reg.type)} {reg.name}"
                         + (f"  ({detail})" if detail else ""))
            walk(reg.urn, prefix + ("   " if last else "│  "))

    walk("", "")
    counts: dict[str, int] = {}
    in_aws = [r for r in plan.resources if r.type.startswith("aws:")]
    for reg in in_aws:
        counts[short_type(reg.type)] = counts.get(short_type(reg.type), 0) + 1
    keys = len(plan.resources) - len(in_aws)
    lines += ["", f"{len(in_aws)} AWS resources to create: "
              + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())),  # stable, whatever the registration order
              f"{keys} SSH host keys made by the program (pinned from the outputs, installed by cloud-init)",
              "The AMI is read at `pulumi up` from SSM: " + "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"]
    return "\n".join(lines)


def as_json(plan: Plan) -> dict[str, Any]:
    return {
        "stack": plan.config.stack,
        "region": plan.config.region,
        "placeholders": list(plan.placeholders),
        "resources": [{"type": r.type, "name": r.name, "parent": r.parent, "inputs": r.inputs}
                      for r in plan.run.registrations],
        "outputs": plan.run.outputs,
    }
