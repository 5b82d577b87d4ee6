"""The local engine on a running stack: the program's registrations against the recorded state.

Each resource the program registers is looked up by (type, logical name) in the stack's
recorded resources. Unchanged: its recorded id and state are returned, and nothing is
called. Changed: updated in place where pulumi-aws updates in place, replaced where it
replaces. New: created. Recorded but no longer registered: deleted after the program ran,
in reverse order of creation (instances before profiles before roles). The record is
written after every step, so an interrupted run leaves it matching what exists, and the
next run finishes the job.

What changes in place (as pulumi-aws): an instance's iamInstanceProfile (associate, replace
or disassociate the association: same instance id), its metadataOptions (http_tokens) and
tags; a role's trust policy and tags; an instance profile's role; a security group's
ingress. What is replaced: a role's or a profile's name, a policy attachment's role or ARN,
a key pair's public key, a host key (tls PrivateKey: made once, kept in the record like Pulumi's state);
an instance's ami, instanceType, keyName or userData (pulumi-aws stops and
starts an instance for instanceType; the lab cloud replaces it, documented in the README).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi

from labs.provision.engine import Created, LocalEngine, _permission
from labs.provision.hostkeys import PRIVATE_KEY, private_key_state

INSTANCE = "aws:ec2/instance:Instance"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
KEY_PAIR = "aws:ec2/keyPair:KeyPair"
IN_PLACE: dict[str, frozenset[str]] = {
    INSTANCE: frozenset({"iamInstanceProfile", "metadataOptions", "tags", "volumeTags"}),
    ROLE: frozenset({"assumeRolePolicy", "tags", "description"}),
    PROFILE: frozenset({"role", "tags"}),
    SECURITY_GROUP: frozenset({"ingress", "egress", "tags"}),
    ATTACHMENT: frozenset(),
    KEY_PAIR: frozenset({"tags"}),
    PRIVATE_KEY: frozenset(),  # a host key is made once; any change makes a new one (and a new instance)
}


@dataclass(frozen=True)
class Step:
    op: str  # create, update, replace, delete
    type: str
    name: str
    changed: tuple[str, ...] = ()

    @property
    def mark(self) -> str:
        return {"create": "+", "update": "~", "replace": "+-", "delete": "-"}[self.op]

    def line(self) -> str:
        kind = self.type.rsplit(":", 1)[-1]
        detail = f" ({', '.join(self.changed)})" if self.changed else ""
        return f"{self.mark} {self.op:<7} {kind} {self.name}{detail}"


def _changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    keys = sorted(set(old) | set(new))
    return tuple(k for k in keys if json.dumps(old.get(k), sort_keys=True, default=str)
                 != json.dumps(new.get(k), sort_keys=True, default=str))


class ConvergingEngine(LocalEngine):
    """`save` is called with the live record after every applied step."""

    def __init__(self, clients, account_id: str, recorded: list[Created], dry_run: bool = False,
                 save: Callable[[list[Created]], None] | None = None):
        super().__init__(clients, account_id)
        self.recorded = list(recorded)
        self.dry_run = dry_run
        self.save = save or (lambda _: None)
        self.steps: list[Step] = []
        self._live: dict[tuple[str, str], Created] = {(c.type, c.name): c for c in recorded}
        self._seen: set[tuple[str, str]] = set()
        self._retired: list[Created] = []  # replaced: deleted after the run, as Pulumi does

    # -- registrations --------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:
            return "", {}
        key = (args.typ, args.name)
        self._seen.add(key)
        old = self._live.get(key)
        if old is None:
            self.steps.append(Step("create", args.typ, args.name))
            if self.dry_run:
                if args.typ == PRIVATE_KEY:  # a stand-in key: the program's user data needs one to render
                    return f"(new) {args.name}", private_key_state(dict(args.inputs), seed=args.name.encode())
                return f"(new) {args.name}", dict(args.inputs)
            return self._record(super().new_resource(args), args)
        changed = _changed(old.inputs, dict(args.inputs))
        if not changed:
            return old.id, old.state
        in_place = set(changed) <= IN_PLACE.get(args.typ, frozenset())
        self.steps.append(Step("update" if in_place else "replace", args.typ, args.name, changed))
        if self.dry_run:
            return old.id, {**old.state, **args.inputs}
        if in_place:
            return self._update(old, dict(args.inputs), changed)
        if args.typ == KEY_PAIR:  # a fixed physical name: delete before replace, as the program declares
            DELETERS[KEY_PAIR](self, old)
            self.recorded.remove(old)
        else:
            self._retired.append(old)
        return self._record(super().new_resource(args), args)

    def _record(self, result: tuple[str, dict], args) -> tuple[str, dict]:
        if self.failure is None:
            with self._lock:
                self._live[(args.typ, args.name)] = next(c for c in reversed(self.created)
                                                         if (c.type, c.name) == (args.typ, args.name))
            self.save(self.state())
        return result

    def state(self) -> list[Created]:
        """What exists now: the recorded resources still live, then the new ones, in creation order."""
        retired = {id(c) for c in self._retired}
        order = [c for c in self.recorded if self._live.get((c.type, c.name)) is c and id(c) not in retired]
        return order + [c for c in self.created if c not in order]

    # -- in place -------------------------------------------------------------------------

    def _update(self, old: Created, inputs: dict, changed: tuple[str, ...]) -> tuple[str, dict]:
        try:
            UPDATERS[old.type](self, old, inputs, changed)
        except Exception as error:  # noqa: BLE001 kept like a create's failure: one line, the rest skipped
            from labs.provision.engine import ApplyError

            self.failure = self.failure or ApplyError(f"updating {old.type} {old.name!r} in the lab cloud failed: "
                                                      f"{error}")
            return old.id, old.state
        old.inputs, old.state = inputs, {**old.state, **inputs}
        self.save(self.state())
        return old.id, old.state

    # -- after the program ran -------------------------------------------------------------

    def finish(self) -> None:
        """Delete what the program no longer declares, and what was replaced, newest first."""
        gone = [c for c in self.recorded if (c.type, c.name) not in self._seen]
        for created in gone:
            self.steps.append(Step("delete", created.type, created.name))
        if self.dry_run or self.failure is not None:
            return
        for created in reversed(self._retired + gone):
            DELETERS[created.type](self, created)
            if created in gone:
                self._live.pop((created.type, created.name), None)
            else:
                self._retired.remove(created)
            self.recorded = [c for c in self.recorded if c is not created]
            self.save(self.state())


# -- one updater and one deleter per type ----------------------------------------------------

def _update_instance(engine: ConvergingEngine, old: Created, inputs: dict, changed) -> None:
    ec2 = engine.clients("ec2")
    if "iamInstanceProfile" in changed:
        live = ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [old.id]}])["IamInstanceProfileAssociations"]
        live = [a for a in live if a.get("State") in ("associating", "associated")]
        wanted = inputs.get("iamInstanceProfile")
        if not wanted:
            for association in live:
                ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
        elif live:
            ec2.replace_iam_instance_profile_association(AssociationId=live[0]["AssociationId"],
                                                         IamInstanceProfile={"Name": wanted})
        else:
            ec2.associate_iam_instance_profile(InstanceId=old.id, IamInstanceProfile={"Name": wanted})
    if "metadataOptions" in changed:
        meta = inputs.get("metadataOptions", {})
        ec2.modify_instance_metadata_options(InstanceId=old.id, HttpTokens=meta.get("httpTokens", "optional"),
                                             HttpPutResponseHopLimit=int(meta.get("httpPutResponseHopLimit", 1)))
    if "tags" in changed:
        stale = set(old.inputs.get("tags") or {}) - set(inputs.get("tags") or {})
        if stale:
            ec2.delete_tags(Resources=[old.id], Tags=[{"Key": k} for k in stale])
        if inputs.get("tags"):
            ec2.create_tags(Resources=[old.id], Tags=[{"Key": k, "Value": v} for k, v in inputs["tags"].items()])


def _update_role(engine: ConvergingEngine, old: Created, inputs: dict, changed) -> None:
    iam = engine.clients("iam")
    if "assumeRolePolicy" in changed:
        iam.update_assume_role_policy(RoleName=old.id, PolicyDocument=inputs["assumeRolePolicy"])
    if "tags" in changed and inputs.get("tags"):
        iam.tag_role(RoleName=old.id, Tags=[{"Key": k, "Value": v} for k, v in inputs["tags"].items()])


def _update_profile(engine: ConvergingEngine, old: Created, inputs: dict, changed) -> None:
    iam = engine.clients("iam")
    if "role" in changed:
        if old.inputs.get("role"):
            iam.remove_role_from_instance_profile(InstanceProfileName=old.id, RoleName=old.inputs["role"])
        if inputs.get("role"):
            iam.add_role_to_instance_profile(InstanceProfileName=old.id, RoleName=inputs["role"])


def _update_security_group(engine: ConvergingEngine, old: Created, inputs: dict, changed) -> None:
    ec2 = engine.clients("ec2")
    if "ingress" in changed:
        before = [_permission(r) for r in old.inputs.get("ingress", [])]
        if before:
            ec2.revoke_security_group_ingress(GroupId=old.id, IpPermissions=before)
        after = [_permission(r) for r in inputs.get("ingress", [])]
        if after:
            ec2.authorize_security_group_ingress(GroupId=old.id, IpPermissions=after)


def _nothing(engine: ConvergingEngine, old: Created, inputs: dict, changed) -> None:
    """Tags only, on a resource whose tags the lab does not read back."""


UPDATERS = {INSTANCE: _update_instance, ROLE: _update_role, PROFILE: _update_profile,
            SECURITY_GROUP: _update_security_group, KEY_PAIR: _nothing, ATTACHMENT: _nothing, PRIVATE_KEY: _nothing}


def _forget(engine: ConvergingEngine, gone: Created) -> None:
    """A host key lives only in the state (as with pulumi-tls): deleting it touches no cloud."""


def _delete_instance(engine: ConvergingEngine, gone: Created) -> None:
    engine.clients("ec2").terminate_instances(InstanceIds=[gone.id])


def _delete_attachment(engine: ConvergingEngine, gone: Created) -> None:
    iam = engine.clients("iam")
    try:
        iam.detach_role_policy(RoleName=gone.inputs["role"], PolicyArn=gone.inputs["policyArn"])
    except iam.exceptions.NoSuchEntityException:
        pass  # detached by hand: the goal is reached


def _delete_profile(engine: ConvergingEngine, gone: Created) -> None:
    iam = engine.clients("iam")
    for role in iam.get_instance_profile(InstanceProfileName=gone.id)["InstanceProfile"]["Roles"]:
        iam.remove_role_from_instance_profile(InstanceProfileName=gone.id, RoleName=role["RoleName"])
    iam.delete_instance_profile(InstanceProfileName=gone.id)


def _delete_role(engine: ConvergingEngine, gone: Created) -> None:
    iam = engine.clients("iam")
    for attached in iam.list_attached_role_policies(RoleName=gone.id)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=gone.id, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=gone.id)


def _delete_security_group(engine: ConvergingEngine, gone: Created) -> None:
    engine.clients("ec2").delete_security_group(GroupId=gone.id)


def _delete_key_pair(engine: ConvergingEngine, gone: Created) -> None:
    engine.clients("ec2").delete_key_pair(KeyName=gone.id)


DELETERS = {INSTANCE: _delete_instance, ATTACHMENT: _delete_attachment, PROFILE: _delete_profile,
            ROLE: _delete_role, SECURITY_GROUP: _delete_security_group, KEY_PAIR: _delete_key_pair,
            PRIVATE_KEY: _forget}
