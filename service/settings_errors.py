"""Bad settings as one line that names the CUTOUT_ variable (or the flag that set it), the value
and the rule, e.g. `CUTOUT_WORKERS=0: must be >= 1`, instead of pydantic's multi-line dump."""
from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_settings import SettingsError

from .config import Settings

ENV_PREFIX = "CUTOUT_"
_FIELD_IN_SETTINGS_ERROR = re.compile(r'field "(\w+)"')


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and "Secret" in str(info.annotation)


def _where(field: str, value: object, flags: dict[str, str]) -> str:
    """`--flag VALUE` when a flag set it, else `CUTOUT_NAME=VALUE` (never a secret's value)."""
    shown = "" if value is None or _is_secret(field) else str(value)
    if field in flags:
        return f"{flags[field]} {shown}".rstrip()
    return f"{env_name(field)}={shown}" if shown else env_name(field)


def _named(message: str, flags: dict[str, str]) -> str:
    """A rule across settings ('tile_size must be ...') with its settings' public names."""
    for field in sorted(Settings.model_fields, key=len, reverse=True):
        public = flags.get(field, env_name(field))
        message = re.sub(rf"(?<![\w-]){field}(?!\w)", public, message)
    return message


def explain(exc: ValidationError | SettingsError, flags: dict[str, str] | None = None) -> str:
    """One line for every problem in `exc`; `flags` maps the settings given as flags to them."""
    flags = flags or {}
    if isinstance(exc, SettingsError):  # a value the environment source could not parse
        match = _FIELD_IN_SETTINGS_ERROR.search(str(exc))
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        where = env_name(match.group(1)) if match else "a CUTOUT_ variable"
        return f"invalid setting {where}: cannot parse its value{cause}"
    problems = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        rule = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if loc and loc[0] in Settings.model_fields:
            problems.append(f"{_where(loc[0], error.get('input'), flags)}: {rule}")
        else:
            problems.append(_named(rule, flags))
    return "invalid settings: " + "; ".join(problems)
