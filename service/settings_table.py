"""The README's settings table, made from `Settings` and the `cutout` command line so that it
cannot drift from the code (a test compares it with the README).

    python -m service.settings_table      # prints the Markdown table
"""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from pydantic.fields import FieldInfo

from .cli import build_parser, flag_names
from .config import Settings

ENV_PREFIX = "CUTOUT_"
BEGIN, END = (
    "<!-- settings table: python -m service.settings_table -->",
    "<!-- end of settings table -->",
)


def serve_flags() -> dict[str, str]:
    """Setting name -> its `cutout serve` flag."""
    return flag_names(build_parser(), "serve")


def default_text(field: FieldInfo) -> str:
    value = field.default
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, tuple):
        return f"`{json.dumps(list(value))}`"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    return f"`{value}`"


def markdown_table() -> str:
    flags = serve_flags()
    rows = [
        "| variable | `cutout serve` flag | default | what it does |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        flag = f"`{flags[name]}`" if name in flags else ""
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {flag} | {default_text(field)} | "
                    f"{description} |")
    return "\n".join(rows)


def main() -> None:
    print(BEGIN)
    print(markdown_table())
    print(END)


if __name__ == "__main__":
    main()
