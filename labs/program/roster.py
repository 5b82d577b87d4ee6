"""Students: a count, a list of names, or a roster file, made safe for AWS names."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

from labs.core.errors import ConfigError, UsageError

MAX_STUDENTS = 100
MAX_NAME_LENGTH = 32  # leaves room for "<roleName>-<student>" within IAM's 64
_SAFE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def sanitize(raw: str) -> str:
    """'Ana María O'Neil' -> 'ana-maria-oneil': lowercase ASCII, digits and hyphens."""
    ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['`’]", "", ascii_text.lower())
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def numbered(count: int) -> tuple[str, ...]:
    width = max(2, len(str(count)))
    return tuple(f"student{i:0{width}d}" for i in range(1, count + 1))


def names_from_list(raw_names: list[str], key: str = "students") -> tuple[str, ...]:
    """Sanitize names; reject empty, too long, unsafe and duplicate ones."""
    if len(raw_names) > MAX_STUDENTS:
        raise ConfigError(key, f"{len(raw_names)} names", f"at most {MAX_STUDENTS} students per stack",
                          "split the class over several stacks")
    seen: dict[str, str] = {}
    for raw in raw_names:
        name = sanitize(raw)
        if not raw.strip() or not name:
            raise ConfigError(key, raw, "a student name is empty (or has no letters or digits)",
                              "remove the empty entry or give the student a name")
        if len(name) > MAX_NAME_LENGTH:
            raise ConfigError(key, raw, f"the name is {len(name)} characters once made AWS-safe "
                              f"(at most {MAX_NAME_LENGTH})", "shorten it, e.g. first name and initial")
        if name in seen:
            raise ConfigError(key, raw, f"duplicate student: {seen[name]!r} and {raw!r} both become {name!r}",
                              "make the names distinct (add an initial or a number)")
        seen[name] = raw
    return tuple(seen)


def parse_students(value: str, key: str = "students") -> tuple[str, ...]:
    """'3' -> three numbered students; 'ana,bo' -> those names."""
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        count = int(text)
        if not 1 <= count <= MAX_STUDENTS:
            raise ConfigError(key, value, f"the student count must be 1..{MAX_STUDENTS}",
                              "give a count such as 5 or a list such as ana,bo")
        return numbered(count)
    if not text:
        raise ConfigError(key, value, "no students given", "give a count such as 5 or a list such as ana,bo")
    return names_from_list(text.split(","), key)


def read_roster(path: Path) -> tuple[str, ...]:
    """One name per line, or CSV with a 'name' column; '#' lines are comments."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"--roster {path}: no such file; give the path of a roster (one name per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--roster {path}: cannot read it ({exc.__class__.__name__}); "
                         "save it as UTF-8 text, one name per line") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise UsageError(f"--roster {path}: the roster is empty; put one student name per line")
    header = next(csv.reader([lines[0]]))
    if len(header) > 1 or header[0].strip().lower() == "name":
        columns = [h.strip().lower() for h in header]
        if "name" not in columns:
            raise UsageError(f"--roster {path}: a CSV roster needs a 'name' column (found: {', '.join(columns)})")
        rows = list(csv.DictReader(io.StringIO("\n".join(lines)), fieldnames=columns))[1:]
        raw_names = [row.get("name") or "" for row in rows]
    else:
        raw_names = lines
    try:
        return names_from_list(raw_names, key="roster")
    except ConfigError as exc:
        raise UsageError(f"--roster {path}: {exc.value!r}: {exc.problem}; {exc.fix}") from None
