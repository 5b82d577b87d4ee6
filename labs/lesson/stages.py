"""The lesson as stages, for `rolelab demo --step`: what each shows, and its steps.

A host step names a check of labs.lesson.checks, never an outcome: its expectation is
derived from the hosts' state at that point (as declared, or as the stage's console
action left it), so the walkthrough agrees with verify for every config (roleName,
policies, imdsv1Demo, a class). A console step is one of labs.lesson.actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labs.lesson.actions import ALLOW_IMDSV1, ATTACH_ROLE, DETACH_POLICY, SECOND_ASSOCIATION, Action


@dataclass(frozen=True)
class HostStep:
    host: str  # no-role, with-role or imdsv1 (a step on a host the lab does not have is left out)
    check: str  # a check id, e.g. iam-list-users


@dataclass(frozen=True)
class ConsoleStep:
    action: Action


@dataclass(frozen=True)
class Stage:
    title: str
    explain: str  # may use {role} and {policy}
    steps: tuple[HostStep | ConsoleStep, ...] = field(default_factory=tuple)
    shows: str = ""  # the recap line: what the stage proved, when it went as the lesson says


LESSON: tuple[Stage, ...] = (
    Stage("Before and after",
          "Two instances, the same AMI. One has no IAM role, the other has {role}. The aws CLI looks for "
          "credentials in the environment, in ~/.aws, and finally in the instance metadata service, where a "
          "role's temporary credentials live.",
          (HostStep("no-role", "iam-list-users"), HostStep("with-role", "iam-list-users")),
          shows="no role, no credentials; the role's host gets them from IMDS"),
    Stage("What the policy allows",
          "{policy} decides what the role may do: the same commands succeed or are AccessDenied by the policy, "
          "and a write the policy does not grant is refused.",
          (HostStep("with-role", "iam-list-roles"), HostStep("with-role", "iam-create-user")),
          shows="the policy, not the instance, decides what is allowed"),
    Stage("Detaching the policy",
          "Permissions live in the role, not on the instance: take the policy away and the same instance loses "
          "the right, after IAM propagates the change (seconds on AWS).",
          (ConsoleStep(DETACH_POLICY), HostStep("with-role", "iam-list-users")),
          shows="detaching the policy takes the right away from the running instance"),
    Stage("Attaching a role to a running instance",
          "No restart, no new instance: Actions > Security > Modify IAM role, and the running no-role host gets "
          "credentials within seconds. Its instance id stays the same.",
          (ConsoleStep(ATTACH_ROLE), HostStep("no-role", "iam-list-users"), HostStep("no-role", "sts-caller-identity")),
          shows="a role attached to a running instance works at once, same instance id"),
    Stage("One role per instance",
          "An instance has at most one instance profile. Attaching a second one is refused; to change roles you "
          "replace the association.",
          (ConsoleStep(SECOND_ASSOCIATION),),
          shows="a second association is refused with IncorrectState"),
    Stage("IMDSv1 against IMDSv2",
          "With IMDSv2 required, a request without a session token gets 401. The token comes from a PUT that a "
          "forwarding proxy cannot make for an attacker. IMDSv1 (tokens optional) answers anyone.",
          (HostStep("with-role", "imds-tokenless"), HostStep("with-role", "imds-credentials"),
           HostStep("imdsv1", "imds-tokenless"),
           ConsoleStep(ALLOW_IMDSV1), HostStep("with-role", "imds-tokenless")),
          shows="IMDSv2 refuses tokenless requests; optional tokens answer anyone"),
    Stage("Nothing stored",
          "No access key was ever written: no ~/.aws/credentials, no AWS_ACCESS_KEY_ID. The keys the role hands "
          "out expire and are replaced before they do.",
          (HostStep("with-role", "nothing-stored"), HostStep("no-role", "nothing-stored"),
           HostStep("with-role", "imds-credentials")),
          shows="nothing secret is stored; role credentials expire and rotate"),
)
