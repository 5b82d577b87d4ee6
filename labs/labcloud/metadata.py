"""What an instance's IMDS knows, read from moto's state at request time.

The role comes from the instance's *current* profile association, so attaching or
detaching a role takes effect on the running host, as on EC2. Credentials are minted
through moto's STS backend in-process (as the EC2 service would), with the instance id
as the session name, so the assumed-role ARN has the real shape.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from labs.core.trust import trusts_ec2

IMDS_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # botocore parses Expiration with exactly this
MIN_VALIDITY_AT_ROTATION = 300  # EC2 hands out new credentials at least 5 minutes before expiry


@dataclass(frozen=True)
class InstanceFacts:
    instance_id: str
    ami_id: str
    instance_type: str
    region: str
    availability_zone: str
    http_tokens: str
    http_endpoint: str
    local_ipv4: str
    public_ipv4: str
    profile_arn: str | None
    profile_id: str | None
    role_name: str | None
    role_arn: str | None


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime(IMDS_TIME_FORMAT)


class MotoMetadata:
    """Instance facts straight from moto's EC2 and IAM backends (same process)."""

    def __init__(self, account_id: str, region: str):
        from moto.ec2.models import ec2_backends

        self.region = region
        self._ec2 = ec2_backends[account_id][region]
        # IAM propagation (labs/cloud/propagation.py) may show a role change late; None = at once.
        self.view: Callable[[InstanceFacts], InstanceFacts] | None = None

    def facts(self, instance_id: str) -> InstanceFacts | None:
        try:
            instance = self._ec2.get_instance(instance_id)
        except Exception:  # noqa: BLE001 moto raises its own not-found type
            return None
        if instance.state != "running":
            return None
        association = self._ec2.iam_instance_profile_associations.get(instance_id)
        profile = association.iam_instance_profile if association else None
        role = profile.roles[0] if profile and profile.roles else None
        options = instance.metadata_options
        facts = InstanceFacts(
            instance_id=instance_id,
            ami_id=instance.image_id,
            instance_type=instance.instance_type,
            region=self.region,
            availability_zone=getattr(instance.placement, "zone", None) or f"{self.region}a",
            http_tokens=options.http_tokens or "optional",
            http_endpoint=getattr(options, "http_endpoint", None) or "enabled",
            local_ipv4=instance.private_ip or "",
            public_ipv4=instance.public_ip or "",
            profile_arn=profile.arn if profile else None,
            profile_id=profile.id if profile else None,
            role_name=role.name if role else None,
            role_arn=role.arn if role else None,
        )
        return self.view(facts) if self.view else facts


class CredentialMinter:
    """Role credentials per (instance, role), rotated on a schedule, never closer than 5 min to expiry.

    `lifetime` is how long a set is valid; `rotate_every` how often a new set is issued.
    EC2 issues ~6 h credentials and rotates well before; tests shorten both to watch it.
    """

    def __init__(self, account_id: str, region: str, lifetime: int = 6 * 3600, rotate_every: int = 3600,
                 clock: Callable[[], float] = time.time):
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        self._sts = sts_backends[account_id]["global"]
        self._iam = iam_backends[account_id]["global"]
        self.region = region
        self.clock = clock
        self._lock = threading.Lock()
        self._issued: dict[tuple[str, str], tuple[float, dict]] = {}
        self.configure(lifetime, rotate_every)

    def configure(self, lifetime: int, rotate_every: int) -> None:
        if rotate_every < 1 or lifetime - rotate_every < MIN_VALIDITY_AT_ROTATION:
            raise ValueError(f"rotate_every must be 1..lifetime-{MIN_VALIDITY_AT_ROTATION} s "
                             f"(got lifetime={lifetime}, rotate_every={rotate_every})")
        self.lifetime, self.rotate_every = lifetime, rotate_every
        with self._lock:
            self._issued.clear()

    def credentials(self, instance_id: str, role_arn: str) -> dict:
        refused = self._untrusted(role_arn)
        if refused:
            return refused
        key = (instance_id, role_arn)
        with self._lock:
            now = self.clock()
            issued = self._issued.get(key)
            if issued is None or now - issued[0] >= self.rotate_every:
                issued = (now, self._mint(instance_id, role_arn, now))
                self._issued[key] = issued
            return dict(issued[1])

    def _untrusted(self, role_arn: str) -> dict | None:
        """EC2 gets credentials only for a role that trusts ec2.amazonaws.com; otherwise IMDS serves this
        document, with no keys (AWS's "Troubleshoot IAM and Amazon EC2"), and the aws CLI finds none."""
        role = next((r for r in list(self._iam.roles.values()) if r.arn == role_arn), None)
        if role is not None and trusts_ec2(role.assume_role_policy_document):
            return None
        name = role_arn.rsplit("/", 1)[-1]
        return {"Code": "AssumeRoleUnauthorizedAccess",
                "Message": f"EC2 cannot assume the role {name}. Please see documentation at "
                           "https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_iam-ec2.html.",
                "LastUpdated": _utc(self.clock())}

    def _mint(self, instance_id: str, role_arn: str, now: float) -> dict:
        assumed = self._sts.assume_role(
            region_name=self.region, role_session_name=instance_id, role_arn=role_arn,
            policy=None, duration=self.lifetime, external_id=None,
        )
        return {
            "Code": "Success",
            "LastUpdated": _utc(now),
            "Type": "AWS-HMAC",
            "AccessKeyId": assumed.access_key_id,
            "SecretAccessKey": assumed.secret_access_key,
            "Token": assumed.session_token,
            "Expiration": _utc(now + self.lifetime),
        }
