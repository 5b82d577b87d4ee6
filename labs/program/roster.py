"""Students: a count, a list of names, or a roster file, made safe for AWS names."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

from labs.core.errors import ConfigError, UsageError
from labs.core.grammar import shown
from labs.program.sshkeys import public_key_problem

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
    """'3' -> three numbered students; 'ana,bo' -> those names; '5,' -> the one student named 5."""
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        count = int(text)
        if not 1 <= count <= MAX_STUDENTS:
            raise ConfigError(key, value, f"the student count must be 1..{MAX_STUDENTS}",
                              "give a count such as 5 or a list such as ana,bo")
        return numbered(count)
    if _NUMBER.fullmatch(text):  # 1e3, 3.0, 1_0: a count was meant, but it is not a whole number
        raise ConfigError(key, value, "not a whole number of students",
                          "give a count in digits such as 5, or a list of names such as ana,bo")
    if not text:
        raise ConfigError(key, value, "no students given", "give a count such as 5 or a list such as ana,bo")
    names = text.split(",")
    if len(names) == 2 and not names[1].strip():
        names = names[:1]  # students_value's way of writing a one-name list that looks like a count
    return names_from_list(names, key)


_NUMBER = re.compile(r"[+-]?[\d_.]*\d[\d_.]*(e[+-]?\d+)?", re.IGNORECASE)


def students_value(names: tuple[str, ...]) -> str:
    """The students config value for a list of names, never read back as a count ('5' -> '5,')."""
    text = ",".join(names)
    return text + "," if len(names) == 1 and _NUMBER.fullmatch(text) else text


KNOWN_COLUMNS = ("name", "email", "ssh_public_key")


def read_roster(path: Path, on_ignored: Callable[[str], None] = lambda line: None) -> tuple[str, ...]:
    """Names: one per line, or a table (comma, semicolon or tab separated: Excel's CSV in many
    locales is semicolons) with a 'name' column. '#' lines are comments. Columns other than
    the known ones are ignored, and `on_ignored` gets one line saying which."""
    return read_roster_keys(path, on_ignored)[0]


def read_roster_keys(path: Path, on_ignored: Callable[[str], None] = lambda line: None
                     ) -> tuple[tuple[str, ...], dict[str, str]]:
    """(names, {name: public key}) of a roster: the keys from its optional ssh_public_key column, for the
    students who bring their own (an empty cell: that student uses the instructor's key)."""
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
    try:
        dialect: type[csv.Dialect] | None = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t")
    except csv.Error:
        dialect = None  # no delimiter in common: one name per line
    raw_keys: list[str] = []
    if dialect is None:
        raw_names = lines[1:] if lines[0].strip().lower() == "name" else lines
    else:
        raw_names, raw_keys = _columns(path, list(csv.reader(lines, dialect)), on_ignored)
    if not raw_names:
        raise UsageError(f"--roster {path}: the roster has a header but no students; add one name per row")
    try:
        names = names_from_list(raw_names, key="roster")
    except ConfigError as exc:
        raise UsageError(f"--roster {path}: {shown(exc.value)}: {exc.problem}; {exc.fix}") from None
    keys: dict[str, str] = {}
    for row, (name, raw, key) in enumerate(zip(names, raw_names, raw_keys), start=2):
        if not key.strip():
            continue
        problem = public_key_problem(key.strip())
        if problem:
            value, what, fix = problem
            raise UsageError(f"--roster {path}: row {row} ({raw.strip()}): ssh_public_key = {shown(value)}: "
                             f"{what}; {fix}")
        keys[name] = key.strip()
    return names, keys


def _columns(path: Path, rows: list[list[str]], on_ignored: Callable[[str], None]) -> tuple[list[str], list[str]]:
    columns = [h.strip().lower() for h in rows[0]]
    if "name" not in columns:
        raise UsageError(f"--roster {path}: a roster table needs a 'name' column (found: "
                         f"{shown(', '.join(columns))}); add a header line such as name,email")
    ignored = [c for c in columns if c not in KNOWN_COLUMNS]
    if ignored:
        on_ignored(f"--roster {path}: ignoring the column(s) {', '.join(ignored)} (known: {', '.join(KNOWN_COLUMNS)})")

    def column(name: str) -> list[str]:
        if name not in columns:
            return []
        index = columns.index(name)
        return [row[index] if index < len(row) else "" for row in rows[1:]]

    return column("name"), column("ssh_public_key")
