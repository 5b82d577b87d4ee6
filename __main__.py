"""Wiring only: read the config, build the class's labs, export the outputs contract."""

import pulumi

from labs.core.errors import ConfigError
from labs.program.config import load_from_pulumi
from labs.program.lab import Classroom
from labs.program.quiet import quiet_repeated_errors

quiet_repeated_errors()

try:
    config = load_from_pulumi()
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None  # one line, no traceback, before any resource

classroom = Classroom("rolelab", config)

# The program describes AWS; the local engine rewrites mode and addresses for the lab cloud.
pulumi.export("mode", "aws")
pulumi.export("region", config.region)
pulumi.export("stack", config.stack)
pulumi.export("hosts", classroom.host_records())
# What the lesson aims at per student; in exercise mode the students build it, and `rolelab check` grades it.
pulumi.export("exercise", config.exercise)
pulumi.export("targets", config.targets())
