"""`ganlab <command> --help`: the command's own description (its module's docstring) and its options, each with
its default and the comment beside its field in the command's options dataclass."""

from __future__ import annotations

import inspect
import re
from dataclasses import MISSING, fields
from types import ModuleType

from omegaconf import MISSING as REQUIRED

FIELD_COMMENT = re.compile(r"^\s+(\w+)\s*:.*?#\s*(.+)$")


def command_help(module: ModuleType, schema: type) -> str:
    comments = {}
    for line in inspect.getsource(schema).splitlines():  # ganlab/commands/schemas.py
        found = FIELD_COMMENT.match(line)
        if found:
            comments[found.group(1)] = found.group(2).strip()
    rows = []
    for f in fields(schema):
        default = f.default if f.default is not MISSING else None
        shown = "required" if default == REQUIRED else "optional" if default is None else f"default {default}"
        name = f.name.rstrip("_")  # class_ is class=
        rows.append((f"{name}=", f"{shown}" + (f"; {comments[f.name]}" if f.name in comments else "")))
    width = max(len(name) for name, _ in rows)
    options = "\n".join(f"  {name:<{width}}  {text}" for name, text in rows)
    return f"{inspect.cleandoc(module.__doc__ or '')}\n\noptions:\n{options}"
