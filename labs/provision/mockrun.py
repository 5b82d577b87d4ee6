"""Run the project's own __main__.py in-process under Pulumi's mock runtime.

This is how `rolelab plan`, the unit tests and local mode execute the very program
that `pulumi up` runs, with no Pulumi CLI: the mocks decide what "creating" means.
"""

from __future__ import annotations

import gc
import importlib
import runpy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from labs.core.errors import ConfigError, RolelabError, UsageError
from labs.program.config import NAMESPACE

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROGRAM = PROJECT_DIR / "__main__.py"
PROJECT_NAME = "rolelab"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str  # the parent's URN ("" for the stack's direct children)
    custom: bool
    inputs: dict[str, Any]
    id: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    ignore_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, plus the parent of each resource (which mocks are not told)."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.invokes: list[tuple[str, dict]] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registered = self.resources.get(response.urn)
            self.registrations.append(Registration(
                urn=response.urn, type=request.type, name=request.name, parent=request.parent,
                custom=bool(request.custom),
                inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                id=registered.id if registered else "", state=dict(registered.state) if registered else {},
                ignore_changes=tuple(request.ignoreChanges), delete_before_replace=bool(request.deleteBeforeReplace),
            ))
        return response

    def Invoke(self, request):  # noqa: N802
        self.invokes.append((request.tok, pulumi.runtime.rpc.deserialize_properties(request.args)))
        return super().Invoke(request)


@dataclass
class ProgramRun:
    outputs: dict[str, Any]
    registrations: list[Registration]
    invokes: list[tuple[str, dict]]

    def of_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_token]


def _unwrap(error: BaseException) -> BaseException:
    """Pulumi wraps program errors; find ours (or a RunError's text) inside."""
    seen = error
    while seen is not None:
        if isinstance(seen, RolelabError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return error


# What the program imports; pulumi_aws loads each submodule on first use (ec2 alone takes ~0.4 s).
PROGRAM_MODULES = ("labs.program.lab", "pulumi_aws.ec2", "pulumi_aws.iam", "pulumi_aws.ssm")


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector off for a burst of allocation that keeps what it makes (imports; a run's resources,
    Outputs and futures, which live until the run ends): otherwise it rescans them over and over, about a
    quarter of a run's CPU. Each run is short and the collector is back on after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def preload() -> None:
    """Import the program's modules now, so a caller can do it while it waits on something else."""
    with collector_paused():
        for name in PROGRAM_MODULES:
            module = importlib.import_module(name)
            getattr(module, "__all__", None)  # any non-introspection attribute makes a lazy module load


def run_program(
    mocks: pulumi_mocks.Mocks,
    config: Mapping[str, str],
    stack: str,
    region: str,
    preview: bool = False,
) -> ProgramRun:
    """Execute __main__.py once under `mocks`; return its resolved exports and what it registered."""
    pulumi.runtime.set_all_config({
        **{f"{NAMESPACE}:{k}": str(v) for k, v in config.items()},
        "aws:region": region,
    })
    monitor = RecordingMonitor(mocks)
    pulumi_mocks.set_mocks(mocks, project=PROJECT_NAME, stack=stack, preview=preview, monitor=monitor)
    # set_mocks keeps the Outputs an earlier run left pending (a refused run's, on its own closed event loop);
    # this run would wait on them and fail. Each run starts with none.
    pulumi_settings.SETTINGS.outputs = set()
    root = get_root_resource()
    try:
        with collector_paused():
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))
            outputs = _sync_await(pulumi.Output.from_input(root.outputs).future())
    except pulumi.RunError as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # noqa: BLE001 surfaced as our own error when it is one
        inner = _unwrap(error)
        if isinstance(inner, RolelabError):
            raise inner from None
        raise
    return ProgramRun(outputs=outputs or {}, registrations=monitor.registrations, invokes=monitor.invokes)


__all__ = ["ConfigError", "ProgramRun", "Registration", "run_program", "PROGRAM", "PROJECT_DIR"]
