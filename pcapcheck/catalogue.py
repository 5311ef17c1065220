"""The rule catalogue: rules/*.toml loaded and validated; the one source for help, reports and SARIF.

Contract:

    catalogue = load_catalogue(extra_dirs=[...])   # raises RuleFileError naming file and field
    spec = catalogue["short-time-wait"]            # RuleSpec

One file per rule, ``rules/<id>.toml``::

    id = "short-time-wait"
    title = "TIME-WAIT shorter than 2·MSL"
    severity = "error"                 # error | warning | info
    category = "timing"                # close | handshake | reset | timing | options | capture-quality
    rfc = ["RFC 9293 §3.6.1", "RFC 6191"]
    explanation = "..."
    remedy = "..."
    example = "..."                    # optional: a short ladder of a failing case
    [parameters]                       # optional
    time_wait = { default = "profile", description = "..." }

A parameter default is a number, a boolean, or "profile": the value of the same-named field of the
active stack profile (pcapcheck.profiles.Profile), so ``time_wait`` follows --profile.

User folders (``extra_dirs``, ``--rules DIR``) are read after the built-in ``rules/`` folder.  A user
file whose id is a built-in rule *replaces that rule's metadata* (title, severity, texts, parameter
defaults); the check code stays the same.  A user file with an id that is not built in is an error
naming the file: there is no check code that could run it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import RuleFileError
from .findings import Severity
from .profiles import Profile

CATEGORIES = ("close", "handshake", "reset", "timing", "options", "capture-quality")
PROFILE_DEFAULT = "profile"
# Parameters whose default may be "profile": the numeric fields of a stack profile.
PROFILE_PARAMETERS = frozenset(f.name for f in fields(Profile) if f.type in ("float", float))

_REQUIRED = {"id": str, "title": str, "severity": str, "category": str, "rfc": list, "explanation": str, "remedy": str}
_OPTIONAL = {"example": str, "parameters": dict}
_PARAMETER_KEYS = {"default", "description"}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    title: str
    severity: Severity  # default severity
    category: str  # "close", "handshake", "reset", "timing", "options", "capture-quality"
    rfc: tuple[str, ...]  # e.g. ("RFC 9293 §3.6.1", "RFC 6191")
    explanation: str
    remedy: str
    example: str = ""
    parameters: dict = field(default_factory=dict)  # name -> default value
    path: str = ""  # the file it came from
    parameter_descriptions: dict = field(default_factory=dict)  # name -> one-line description

    @property
    def rfc_text(self) -> str:
        """The primary RFC reference, as findings carry it."""
        return self.rfc[0] if self.rfc else ""


def builtin_rules_dir() -> Path:
    """The repository's rules/ folder, next to the package."""
    import pcapcheck

    return Path(pcapcheck.__file__).resolve().parent.parent / "rules"


def load_catalogue(extra_dirs: Iterable[str | Path] = ()) -> dict[str, RuleSpec]:
    """Built-in rules, then user folders overriding built-in ids; ordered by id."""
    builtin = builtin_rules_dir()
    if not builtin.is_dir():
        raise RuleFileError(str(builtin), "-", "built-in rules folder is missing (broken installation?)")
    catalogue = _load_dir(builtin)
    if not catalogue:
        raise RuleFileError(str(builtin), "-", "built-in rules folder holds no rule files")
    for extra in extra_dirs:
        folder = Path(extra)
        if not folder.is_dir():
            raise RuleFileError(str(folder), "-", "rules folder does not exist")
        for rule_id, spec in _load_dir(folder).items():
            if rule_id not in catalogue:
                problem = f"'{rule_id}' is not a built-in rule; a rule file can only re-describe a check that exists"
                raise RuleFileError(spec.path, "id", problem)
            catalogue[rule_id] = spec
    return dict(sorted(catalogue.items()))


def _load_dir(folder: Path) -> dict[str, RuleSpec]:
    specs: dict[str, RuleSpec] = {}
    for path in sorted(folder.glob("*.toml")):
        spec = load_rule_file(path)
        if spec.id in specs:
            raise RuleFileError(str(path), "id", f"duplicate id '{spec.id}' (also in {specs[spec.id].path})")
        specs[spec.id] = spec
    return specs


def load_rule_file(path: str | Path) -> RuleSpec:
    """Parse and validate one rule file; every problem names the file and the field."""
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RuleFileError(where, "-", f"cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise RuleFileError(where, "-", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise RuleFileError(where, "-", f"not valid TOML: {err}") from None

    for key in data:
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise RuleFileError(where, key, "unknown key")
    for key, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if key not in data:
            if key in _REQUIRED:
                raise RuleFileError(where, key, "missing")
            continue
        if not isinstance(data[key], kind):
            raise RuleFileError(where, key, f"must be a {_kind_name(kind)}, not {_kind_name(type(data[key]))}")
    for key in ("id", "title", "explanation", "remedy"):
        if not data[key].strip():
            raise RuleFileError(where, key, "must not be empty")

    rule_id = data["id"]
    if rule_id != path.stem:
        raise RuleFileError(where, "id", f"'{rule_id}' does not match the file name '{path.stem}'")
    try:
        severity = Severity(data["severity"])
    except ValueError:
        raise RuleFileError(where, "severity", f"'{data['severity']}' is not one of error, warning, info") from None
    if data["category"] not in CATEGORIES:
        raise RuleFileError(where, "category", f"'{data['category']}' is not one of {', '.join(CATEGORIES)}")
    if not data["rfc"] or not all(isinstance(r, str) and r.strip() for r in data["rfc"]):
        raise RuleFileError(where, "rfc", "must be a non-empty list of references like \"RFC 9293 §3.6.1\"")

    defaults, descriptions = _parameters(where, data.get("parameters", {}))
    return RuleSpec(
        id=rule_id,
        title=data["title"].strip(),
        severity=severity,
        category=data["category"],
        rfc=tuple(data["rfc"]),
        explanation=data["explanation"].strip(),
        remedy=data["remedy"].strip(),
        example=data.get("example", "").strip("\n"),
        parameters=defaults,
        path=where,
        parameter_descriptions=descriptions,
    )


def _parameters(where: str, table: dict) -> tuple[dict, dict]:
    defaults: dict = {}
    descriptions: dict = {}
    for name, entry in table.items():
        field_name = f"parameters.{name}"
        if not isinstance(entry, dict):
            raise RuleFileError(where, field_name, "must be a table { default = ..., description = \"...\" }")
        for key in entry:
            if key not in _PARAMETER_KEYS:
                raise RuleFileError(where, f"{field_name}.{key}", "unknown key")
        if "default" not in entry:
            raise RuleFileError(where, f"{field_name}.default", "missing")
        if not isinstance(entry.get("description"), str) or not entry["description"].strip():
            raise RuleFileError(where, f"{field_name}.description", "missing or empty")
        default = entry["default"]
        if default == PROFILE_DEFAULT:
            if name not in PROFILE_PARAMETERS:
                raise RuleFileError(
                    where,
                    f"{field_name}.default",
                    f"\"profile\" only works for a profile value ({', '.join(sorted(PROFILE_PARAMETERS))})",
                )
        elif isinstance(default, bool):
            pass
        elif isinstance(default, (int, float)):
            if default < 0:
                raise RuleFileError(where, f"{field_name}.default", "must not be negative")
        else:
            raise RuleFileError(where, f"{field_name}.default", "must be a number, true/false or \"profile\"")
        defaults[name] = default
        descriptions[name] = entry["description"].strip()
    return defaults, descriptions


def _kind_name(kind: type) -> str:
    return {str: "string", list: "list", dict: "table", int: "integer", float: "number", bool: "boolean"}.get(
        kind, kind.__name__
    )
