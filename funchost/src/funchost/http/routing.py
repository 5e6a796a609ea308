"""Azure Functions route templates: ``{param}``, ``{param?}``, ``{*rest}`` and typed constraints.

Templates compile to one regular expression each; constraints follow ASP.NET Core's route
constraints that Functions supports (``int``, ``long``, ``bool``, ``guid``, ``alpha``,
``double``/``float``/``decimal``, ``datetime``, ``minlength(n)``, ``maxlength(n)``,
``length(n)``/``length(a,b)``, ``min(n)``, ``max(n)``, ``range(a,b)``, ``regex(...)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from funchost.errors import AppLoadError

_PARAM = re.compile(r"\{([^{}]+)\}")


def _is_int(v: str) -> bool:
    return re.fullmatch(r"-?\d+", v) is not None


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _is_datetime(v: str) -> bool:
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_SIMPLE: dict[str, Callable[[str], bool]] = {
    "int": _is_int,
    "long": _is_int,
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": lambda v: re.fullmatch(r"\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                                   r"[0-9a-fA-F]{12}\}?", v) is not None,
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "double": _is_number,
    "float": _is_number,
    "decimal": _is_number,
    "datetime": _is_datetime,
}


def _constraint(spec: str, template: str) -> Callable[[str], bool]:
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", spec)
    if not match:
        raise AppLoadError(f"Route {template!r}: cannot read constraint {spec!r}")
    name, arg = match.group(1).lower(), match.group(2)
    if arg is None and name in _SIMPLE:
        return _SIMPLE[name]
    if arg is None:
        raise AppLoadError(f"Route {template!r}: unknown constraint {spec!r}")
    if name == "regex":
        pattern = re.compile(arg)
        return lambda v: pattern.search(v) is not None
    numbers = [float(a) for a in arg.split(",")] if arg else []
    checks: dict[str, Callable[[str], bool]] = {
        "minlength": lambda v: len(v) >= numbers[0],
        "maxlength": lambda v: len(v) <= numbers[0],
        "length": lambda v: (len(v) == numbers[0]) if len(numbers) == 1 else numbers[0] <= len(v) <= numbers[1],
        "min": lambda v: _is_number(v) and float(v) >= numbers[0],
        "max": lambda v: _is_number(v) and float(v) <= numbers[0],
        "range": lambda v: _is_number(v) and numbers[0] <= float(v) <= numbers[1],
    }
    if name not in checks:
        raise AppLoadError(f"Route {template!r}: unknown constraint {spec!r}")
    return checks[name]


@dataclass(frozen=True)
class _Param:
    name: str
    checks: tuple[Callable[[str], bool], ...]
    optional: bool
    default: str | None


class RouteTemplate:
    """One compiled template; ``match(path)`` gives the route params or None."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.params: dict[str, _Param] = {}
        pattern = ""
        segments = self.template.split("/") if self.template else []
        for position, segment in enumerate(segments):
            prefix = "/" if position else ""
            whole = _PARAM.fullmatch(segment)
            if whole and self._is_optional(whole.group(1)):
                param = self._param(whole.group(1))
                pattern += f"(?:{prefix}(?P<{param}>[^/]+))?"
                continue
            if whole and whole.group(1).startswith("*"):
                param = self._param(whole.group(1)[1:].lstrip("*"))
                pattern += f"(?:{prefix}(?P<{param}>.*))?"
                continue
            pattern += prefix
            cursor = 0
            for found in _PARAM.finditer(segment):
                pattern += re.escape(segment[cursor:found.start()])
                param = self._param(found.group(1))
                pattern += f"(?P<{param}>[^/]+?)" if found.end() < len(segment) else f"(?P<{param}>[^/]+)"
                cursor = found.end()
            pattern += re.escape(segment[cursor:])
        self.regex = re.compile(f"^{pattern}/?$", re.IGNORECASE)
        # Literal segments beat parameters when two routes match the same path, as in ASP.NET routing.
        self.specificity = (sum(1 for s in segments if "{" not in s), len(segments))

    @staticmethod
    def _is_optional(body: str) -> bool:
        return body.endswith("?") or "=" in body

    def _param(self, body: str) -> str:
        optional = body.endswith("?")
        body = body.rstrip("?")
        body, _, default = body.partition("=")
        name, *constraints = body.split(":")
        name = name.strip()
        if not name.isidentifier():
            raise AppLoadError(f"Route {self.template!r}: parameter name {name!r} is not supported")
        checks = tuple(_constraint(c, self.template) for c in constraints)
        self.params[name] = _Param(name, checks, optional or bool(default), default or None)
        return name

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.match(path.strip("/"))
        if not found:
            return None
        values: dict[str, str] = {}
        for name, param in self.params.items():
            value = found.group(name)
            if value is None:
                if param.default is not None:
                    values[name] = param.default
                continue
            if not all(check(value) for check in param.checks):
                return None
            values[name] = value
        return values
