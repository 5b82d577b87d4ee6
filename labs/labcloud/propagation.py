"""IAM's eventual consistency, on demand: changes become visible D seconds late.

On AWS a detached policy or a new role association takes seconds to reach every
endpoint; moto applies them at once. With a delay set, the lab cloud accepts the API
call at once (with AWS's validation) but applies policy attachments D seconds later,
and each instance's IMDS keeps serving the role it had D seconds ago.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from labs.labcloud.metadata import InstanceFacts

log = logging.getLogger("rolelab.cloud.propagation")
ROLE_FIELDS = ("profile_arn", "profile_id", "role_name", "role_arn")


class Propagation:
    def __init__(self, account_id: str, clock: Callable[[], float] = time.monotonic):
        from moto.iam.models import iam_backends

        self.delay = 0.0
        self.clock = clock
        self._iam = iam_backends[account_id]["global"]
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._history: dict[str, list[tuple[float, tuple]]] = {}
        self._stopped = False
        self._thread = threading.Thread(target=self._apply_due, name="iam-propagation", daemon=True)
        self._thread.start()
        self._wrap_policy_changes()

    def set_delay(self, seconds: float) -> None:
        self.delay = max(0.0, float(seconds))
        log.info("IAM propagation delay is now %.1f s", self.delay)

    # -- policy attachments: validated now, applied later ----------------------------------

    def _wrap_policy_changes(self) -> None:
        iam = self._iam
        attach, detach = iam.attach_role_policy, iam.detach_role_policy

        def policy_and_role(policy_arn: str, role_name: str):
            from moto.iam.exceptions import NotFoundException

            policy = next((p for p in iam.managed_policies.values() if p.arn == policy_arn), None)
            role = iam.get_role(role_name)  # raises NoSuchEntity as AWS does
            if policy is None:
                raise NotFoundException(f"Policy {policy_arn} does not exist or is not attachable.")
            return policy, role

        def delayed_attach(policy_arn: str, role_name: str) -> None:
            if not self.delay:
                return attach(policy_arn, role_name)
            policy, role = policy_and_role(policy_arn, role_name)
            self._later(lambda: policy.attach_to(role), f"attach {policy_arn} to {role_name}")

        def delayed_detach(policy_arn: str, role_name: str) -> None:
            if not self.delay:
                return detach(policy_arn, role_name)
            from moto.iam.exceptions import NotFoundException

            policy, role = policy_and_role(policy_arn, role_name)
            if policy.arn not in role.managed_policies:
                raise NotFoundException(f"Policy {policy_arn} was not found.")
            self._later(lambda: policy.detach_from(role), f"detach {policy_arn} from {role_name}")

        iam.attach_role_policy = delayed_attach
        iam.detach_role_policy = delayed_detach

    def _later(self, change: Callable[[], None], what: str) -> None:
        with self._wake:
            heapq.heappush(self._queue, (self.clock() + self.delay, next(self._order), change))
            self._wake.notify()
        log.info("IAM change in %.1f s: %s", self.delay, what)

    def _apply_due(self) -> None:
        with self._wake:
            while not self._stopped:
                if not self._queue:
                    self._wake.wait()
                    continue
                due = self._queue[0][0] - self.clock()
                if due > 0:
                    self._wake.wait(due)
                    continue
                _, _, change = heapq.heappop(self._queue)
                try:
                    change()
                except Exception:  # noqa: BLE001 e.g. detached twice: AWS would have refused the second
                    log.exception("delayed IAM change failed")

    # -- role associations, as each instance's IMDS sees them -------------------------------

    def view(self, facts: InstanceFacts) -> InstanceFacts:
        """Record the instance's current role; return the one in effect `delay` seconds ago."""
        current = tuple(getattr(facts, f) for f in ROLE_FIELDS)
        now = self.clock()
        with self._wake:
            history = self._history.setdefault(facts.instance_id, [])
            if not history or history[-1][1] != current:
                history.append((now, current))
            if not self.delay:
                return facts
            visible = history[0][1]
            for changed_at, role in history:
                if changed_at <= now - self.delay:
                    visible = role
        return facts if visible == current else replace(facts, **dict(zip(ROLE_FIELDS, visible)))

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
