"""What an aws CLI run amounted to, by exit code and stable tokens (never whole strings).

awscli v1 (PyPI): no credentials and service errors both exit 255.
AWS CLI v2: no credentials exits 253, service errors 254 (255 for other failures);
since 2.32 it suggests "aws login"; since 2.34 messages start 'aws: [ERROR]: ' and missing
credentials read 'An error occurred (NoCredentials): Unable to locate credentials ...'.
"""

from __future__ import annotations

import json
from enum import Enum

from labs.core.result import CommandResult

NO_CREDENTIALS_TOKENS = ("Unable to locate credentials", "An error occurred (NoCredentials)")
DENIED_TOKENS = ("AccessDenied", "UnauthorizedOperation", "is not authorized to perform")


class Outcome(str, Enum):
    SUCCESS = "Success"
    NO_CREDENTIALS = "NoCredentials"
    ACCESS_DENIED = "AccessDenied"
    OTHER_ERROR = "OtherError"

    def __str__(self) -> str:
        return self.value


def classify(result: CommandResult) -> Outcome:
    if result.rc == 0:
        try:
            json.loads(result.stdout)
        except ValueError:
            return Outcome.OTHER_ERROR  # exit 0 but not the JSON an API call prints
        return Outcome.SUCCESS
    text = result.stderr
    if result.rc in (253, 255) and any(token in text for token in NO_CREDENTIALS_TOKENS):
        return Outcome.NO_CREDENTIALS
    if result.rc in (254, 255) and any(token in text for token in DENIED_TOKENS):
        return Outcome.ACCESS_DENIED
    return Outcome.OTHER_ERROR
