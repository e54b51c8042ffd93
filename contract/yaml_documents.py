"""YAML documents checked with errors a person can act on: every mistake at once, each naming the
file, the line and the field (`edge.yaml line 7, devices[1].key: BTHome key must be 32 hex
characters`), duplicate keys included, secrets never echoed.

The edge agent's configuration, the hub's configuration and the resident scenarios are all read
through `validate_document`, so every process reports alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
IDENTIFIER_FIELDS: Final = frozenset({"site", "gateway", "id", "gateways"})
_Model = TypeVar("_Model", bound=BaseModel)

# libyaml where it is installed: a 10,000-bed hub configuration loads in seconds, not a minute.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_ca_file(value: str | None) -> str | None:
    """A CA file named in a configuration must be there: better now than at connect time."""
    if value is not None and not Path(value).is_file():
        raise ValueError(f"CA file {value!r} does not exist or is not a file")
    return value


class ConfigError(Exception):
    """A configuration that cannot be used. `problems` holds one line per mistake."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def validate_document(
    text: str,
    source: str,
    model: type[_Model],
    *,
    must_be: str = "a mapping of settings",
    context: Mapping[str, Any] | None = None,
    check: Callable[[_Model], Sequence[tuple[Loc, str]]] | None = None,
) -> _Model:
    """Parse YAML `text` into `model`; ConfigError lists every mistake with its line and field.

    `must_be` says what the top level must be; `context` goes to the model's validators; `check`
    finds the mistakes only the whole document shows (each placed on its line too).
    """
    root = _compose(text, source)
    data = yaml.load(text, Loader=_LOADER)
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError([f"{source} line 1: the file must be {must_be}"])
    problems = list(_duplicate_keys(root, source))
    try:
        document = model.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(_at(source, root, loc, msg) for loc, msg in _pydantic_problems(exc))
        raise ConfigError(_by_line(problems)) from None
    if check is not None:
        problems.extend(_at(source, root, loc, msg) for loc, msg in check(document))
    if problems:
        raise ConfigError(_by_line(problems))
    return document


def _by_line(problems: list[str]) -> list[str]:
    def line(problem: str) -> int:
        match = re.search(r" line (\d+)", problem)
        return int(match.group(1)) if match else 0

    return sorted(problems, key=line)


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{source} line {line}: invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML: {exc}"]) from None


def _pydantic_problems(exc: ValidationError) -> Iterator[tuple[Loc, str]]:
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        yield loc, _friendly(error["type"], str(error["msg"]), error.get("input"), loc)


def _friendly(kind: str, message: str, value: object, loc: Loc = ()) -> str:
    if kind == "string_pattern_mismatch" and loc and loc[-1] not in IDENTIFIER_FIELDS:
        # Never echo the value: it may be a password hash or a token digest.
        return f"does not have the expected form ({message.removeprefix('String ')})"
    if kind == "string_pattern_mismatch":
        return (
            f"{value!r} is not a valid identifier (lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 63 characters)"
        )
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field"
    return message.removeprefix("Value error, ")


def _at(source: str, root: yaml.Node, loc: Loc, message: str) -> str:
    node = _node_at(root, loc)
    return f"{source} line {node.start_mark.line + 1}, {format_loc(loc)}: {message}"


def _node_at(root: yaml.Node, loc: Loc) -> yaml.Node:
    """The deepest node along `loc`: the field's value, or the nearest enclosing one."""
    node = root
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return node


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def _duplicate_keys(node: yaml.Node, source: str, loc: Loc = ()) -> Iterator[str]:
    """YAML silently keeps the last of two equal keys; an installer wants to hear about it."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                line = key.start_mark.line + 1
                yield f"{source} line {line}, {format_loc((*loc, name))}: this key appears twice"
            seen.add(name)
            yield from _duplicate_keys(value, source, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, source, (*loc, index))


def format_loc(loc: Loc) -> str:
    """('devices', 1, 'key') -> 'devices[1].key'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"
