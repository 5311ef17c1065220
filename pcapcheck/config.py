"""Configuration: a config file, then command-line values on top (the command line wins).

    config = load_config(config_file=None, profile="windows", params=["short-time-wait.time_wait=30"])
    config.validate(catalogue)              # ConfigError for unknown ids, parameters or bad values
    profile = config.profile_for_run()
    config.parameters(spec)                 # effective values, "profile" defaults resolved

The file is ``pcapcheck.toml`` (keys at top level) or ``pyproject.toml`` (keys under
``[tool.pcapcheck]``): the one given, else the one found in the current directory, pcapcheck.toml
first.  Keys::

    profile = "linux"                      # rfc9293 | linux | windows
    fail-on = "error"                      # error | warning | info | never
    rules = ["my-rules"]                   # extra rule folders, relative to the file
    disable = ["capture-gap"]
    [severity]                             # [tool.pcapcheck.severity] in pyproject.toml
    abortive-close = "error"
    [parameters.short-time-wait]           # [tool.pcapcheck.parameters.short-time-wait]
    time_wait = 30
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import PROFILE_DEFAULT, RuleSpec
from .errors import ConfigError
from .findings import Severity
from .profiles import DEFAULT_PROFILE, PROFILES, Profile, get_profile

FAIL_ON = ("error", "warning", "info", "never")
FILE_KEYS = ("profile", "fail-on", "rules", "disable", "severity", "parameters")

# Values a stack accepts for a profile parameter; an override outside is a configuration error.
# Windows: TcpTimedWaitDelay is valid from 30 to 300 seconds.
PROFILE_PARAMETER_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("windows", "time_wait"): (30.0, 300.0),
}


@dataclass(slots=True)
class Config:
    profile: str = DEFAULT_PROFILE
    fail_on: str = "error"
    extra_rule_dirs: list[str] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    severities: dict[str, Severity] = field(default_factory=dict)  # rule id -> override
    params: dict[str, dict[str, float | bool]] = field(default_factory=dict)  # rule id -> name -> value
    source: str | None = None  # the config file read, if any

    def profile_for_run(self) -> Profile:
        return get_profile(self.profile)

    def enabled(self, rule_id: str) -> bool:
        return rule_id not in self.disabled

    def severity_of(self, spec: RuleSpec) -> Severity:
        return self.severities.get(spec.id, spec.severity)

    def parameters(self, spec: RuleSpec, profile: Profile | None = None) -> dict[str, float | bool]:
        """Effective parameter values of one rule: overrides, else defaults with "profile" resolved."""
        profile = profile or self.profile_for_run()
        values: dict[str, float | bool] = {}
        for name, default in spec.parameters.items():
            value = self.params.get(spec.id, {}).get(name, default)
            values[name] = getattr(profile, name) if value == PROFILE_DEFAULT else value
        return values

    def validate(self, catalogue: Mapping[str, RuleSpec]) -> None:
        """Every id, parameter and value named by the configuration must make sense for this catalogue."""
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile '{self.profile}' (known: {', '.join(sorted(PROFILES))})")
        if self.fail_on not in FAIL_ON:
            raise ConfigError(f"--fail-on must be one of {', '.join(FAIL_ON)}, not '{self.fail_on}'")
        for rule_id in sorted(self.disabled | set(self.severities) | set(self.params)):
            if rule_id not in catalogue:
                raise ConfigError(f"unknown rule '{rule_id}' (see 'pcapcheck rules')")
        for rule_id, values in self.params.items():
            spec = catalogue[rule_id]
            for name, value in values.items():
                if name not in spec.parameters:
                    known = ", ".join(sorted(spec.parameters)) or "none"
                    raise ConfigError(f"rule '{rule_id}' has no parameter '{name}' (its parameters: {known})")
                _check_value(rule_id, name, value, spec.parameters[name], self.profile)


def _check_value(rule_id: str, name: str, value: object, default: object, profile: str) -> None:
    label = f"{rule_id}.{name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"parameter {label} must be true or false, not '{value}'")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"parameter {label} must be a number, not '{value}'")
    if not math.isfinite(value):
        # NaN compares false with everything: a threshold of nan would make a rule fire on all input.
        raise ConfigError(f"parameter {label} must be a finite number, not {value}")
    if value < 0:
        raise ConfigError(f"parameter {label} must not be negative, not {value}")
    bounds = PROFILE_PARAMETER_RANGES.get((profile, name)) if default == PROFILE_DEFAULT else None
    if bounds and not bounds[0] <= value <= bounds[1]:
        raise ConfigError(
            f"parameter {label}={_number(value)} is outside what the {profile} profile allows "
            f"({_number(bounds[0])}-{_number(bounds[1])} s)"
        )


def load_config(
    config_file: str | Path | None = None,
    *,
    profile: str | None = None,
    extra_rule_dirs: Iterable[str] = (),
    disable: Iterable[str] = (),
    severity: Iterable[str] = (),
    params: Iterable[str] = (),
    fail_on: str | None = None,
) -> Config:
    """Read the config file (explicit, or found in the current directory), then apply the CLI values."""
    config = _from_file(Path(config_file)) if config_file is not None else _discover()
    if profile is not None:
        config.profile = profile
    if fail_on is not None:
        config.fail_on = fail_on
    config.extra_rule_dirs.extend(str(d) for d in extra_rule_dirs)
    config.disabled.update(disable)
    for item in severity:
        rule_id, value = _split(item, "=", "--severity", "RULE=error|warning|info")
        config.severities[rule_id] = _severity(value, f"--severity {item}")
    for item in params:
        target, value = _split(item, "=", "--param", "RULE.NAME=VALUE")
        rule_id, name = _split(target, ".", "--param", "RULE.NAME=VALUE")
        config.params.setdefault(rule_id, {})[name] = parse_value(value)
    # Fail early on the simple ones; ids and parameters need the catalogue (validate()).
    if config.profile not in PROFILES:
        raise ConfigError(f"unknown profile '{config.profile}' (known: {', '.join(sorted(PROFILES))})")
    if config.fail_on not in FAIL_ON:
        raise ConfigError(f"--fail-on must be one of {', '.join(FAIL_ON)}, not '{config.fail_on}'")
    return config


def parse_value(text: str) -> float | bool | str:
    """A command-line parameter value: a number or true/false; anything else is kept for validate()."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _discover() -> Config:
    for name in ("pcapcheck.toml", "pyproject.toml"):
        path = Path.cwd() / name
        if path.is_file():
            config = _from_file(path)
            if config.source is not None:
                return config
    return Config()


def _from_file(path: Path) -> Config:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: not valid TOML: {err}") from None
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("pcapcheck")
        if table is None:
            return Config()  # a pyproject.toml without our section configures nothing
        prefix = "tool.pcapcheck."
    else:
        table, prefix = data, ""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or 'file'}' must be a table")
    config = Config(source=where)
    for key, value in table.items():
        label = f"{where}: key '{prefix}{key}'"
        key = "fail-on" if key == "fail_on" else key  # TOML users write either
        if key not in FILE_KEYS:
            raise ConfigError(f"{label}: unknown key (known: {', '.join(FILE_KEYS)})")
        if key == "profile":
            config.profile = _string(value, label)
        elif key == "fail-on":
            config.fail_on = _string(value, label)
        elif key == "rules":
            base = path.resolve().parent
            config.extra_rule_dirs = [str(base / d) for d in _strings(value, label)]
        elif key == "disable":
            config.disabled = set(_strings(value, label))
        elif key == "severity":
            if not isinstance(value, dict):
                raise ConfigError(f"{label}: must be a table of RULE = \"error|warning|info\"")
            config.severities = {rid: _severity(sev, f"{label}.{rid}") for rid, sev in value.items()}
        elif key == "parameters":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise ConfigError(f"{label}: must hold one table per rule, e.g. [parameters.short-time-wait]")
            config.params = {rid: dict(values) for rid, values in value.items()}
    return config


def _split(item: str, sep: str, option: str, form: str) -> tuple[str, str]:
    left, found, right = item.partition(sep)
    if not found or not left.strip() or not right.strip():
        raise ConfigError(f"{option} '{item}': expected {form}")
    return left.strip(), right.strip()


def _severity(value: object, label: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise ConfigError(f"{label}: severity must be error, warning or info, not '{value}'") from None


def _string(value: object, label: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{label}: must be a string")
    return value


def _strings(value: object, label: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{label}: must be a list of strings")
    return list(value)


def _number(value: float) -> str:
    return f"{value:g}"
