"""Text for people: tables of hosts (and, later, of check results)."""

from __future__ import annotations

from labs.core.outputs import LabOutputs


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def hosts_table(outputs: LabOutputs) -> str:
    rows = [[h.student, h.name, h.instance_id, f"{h.address}:{h.port}", h.user, h.role or "-", h.http_tokens]
            for h in outputs.hosts]
    return table(rows, ["student", "host", "instance", "ssh", "user", "role", "imds tokens"])
