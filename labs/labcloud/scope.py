"""Exercise mode: a student's console may touch only that student's instances, roles and profiles.

moto's IAM enforcement evaluates only `Action` (its access_control.py says so): `Resource`
and `Condition` are ignored. A student console user's policy grants the actions of a
sandbox account; this request check adds the scope, on the request path, as AWS would
with resource conditions: instance-profile associations only on instances tagged with the
student's name, IAM writes only on roles and instance profiles named with the student's
target role, and only AWS managed policies attached. Requests of anyone else pass.
"""

from __future__ import annotations

import functools
import io
import re
import urllib.parse
import uuid
from html import escape

from labs.core.tags import CONSOLE_TAG, PREFIX_TAG

STUDENT_TAG = "student"  # on an instance (labs/core/tags.py)
EC2_SCOPED = {"AssociateIamInstanceProfile": "InstanceId", "ReplaceIamInstanceProfileAssociation": "AssociationId",
              "DisassociateIamInstanceProfile": "AssociationId"}
IAM_WRITES = re.compile(r"^(Create|Delete|Update|Attach|Detach|Put|Add|Remove|Tag|Untag)\w*")
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


def _params(environ: dict) -> dict[str, str]:
    """The query and form parameters; the body is put back for moto to read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if body and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        params.update(urllib.parse.parse_qsl(body.decode(errors="replace")))
    return params


def _denied(service: str, user_arn: str, action: str, why: str) -> tuple[str, str, str]:
    message = escape(f"User: {user_arn} is not authorized to perform: {service}:{action} ({why})")
    if service == "ec2":
        body = (f"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>{message}</Message></Error>"
                f"</Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message>"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return "403 Forbidden", body, "text/xml"


class ConsoleScope:
    """A request check (labs/labcloud/gate.py): None lets the request through; (status, XML body, type) refuses it
    with the error AWS would give (UnauthorizedOperation for EC2, AccessDenied for IAM)."""

    def __init__(self, account_id: str, region: str):
        self.account_id, self.region = account_id, region

    # Looked up at first use, not at the lab cloud's start: moto's EC2 models take about a second to
    # import, and the lab cloud says it is ready before anyone has asked EC2 anything.
    @functools.cached_property
    def _iam(self):
        from moto.iam.models import iam_backends

        return iam_backends[self.account_id]["global"]

    @functools.cached_property
    def _ec2(self):
        from moto.ec2.models import ec2_backends

        return ec2_backends[self.account_id][self.region]

    def _console(self, environ: dict) -> tuple[str, str, str] | None:
        """(student, role prefix, user ARN) when the request is signed by a student console user."""
        found = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        key = self._iam.access_keys.get(found.group(1)) if found else None
        user = self._iam.users.get(key.user_name) if key is not None else None
        if user is None:
            return None
        tags = {t["Key"]: t["Value"] for t in self._iam.tagger.list_tags_for_resource(user.arn)["Tags"]}
        return (tags[CONSOLE_TAG], tags.get(PREFIX_TAG, ""), user.arn) if CONSOLE_TAG in tags else None

    def _instance_student(self, params: dict[str, str], field: str) -> str | None:
        if field == "InstanceId":
            instance_id = params.get("InstanceId", "")
        else:
            association = next((a for a in self._ec2.iam_instance_profile_associations.values()
                                if a.association_id == params.get("AssociationId")), None)
            instance_id = association.instance.id if association else ""
        try:
            instance = self._ec2.get_instance(instance_id)
        except Exception:  # noqa: BLE001 moto's not-found: moto answers the request itself
            return None
        return next((t["value"] for t in instance.get_tags() if t["key"] == STUDENT_TAG), "")

    def __call__(self, environ: dict) -> tuple[str, str, str] | None:
        console = self._console(environ)
        if console is None:
            return None
        student, prefix, user_arn = console
        params = _params(environ)
        action = params.get("Action", "")
        if action in EC2_SCOPED:
            owner = self._instance_student(params, EC2_SCOPED[action])
            if owner is not None and owner != student:
                return _denied("ec2", user_arn, action, f"the instance is not {student}'s")
        elif IAM_WRITES.match(action):
            for field in ("RoleName", "InstanceProfileName"):
                name = params.get(field)
                if name is not None and prefix and not name.startswith(prefix):
                    return _denied("iam", user_arn, action, f"{field} must start with {prefix}")
            arn = params.get("PolicyArn")
            if arn is not None and not arn.startswith("arn:aws:iam::aws:policy/"):
                return _denied("iam", user_arn, action, "only AWS managed policies may be attached")
        return None
