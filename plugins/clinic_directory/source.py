"""Read a YAML file into located nodes, refusing what would silently lose data.

We compose (not construct) with libyaml's C parser: every node keeps its start
mark, so later checks can say on which line a value is, and the schema, not
YAML 1.1's implicit typing, decides what a value means.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .problems import Problem

MAPPING_TAG = "tag:yaml.org,2002:map"
SEQUENCE_TAG = "tag:yaml.org,2002:seq"
STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Source:
    """A parsed YAML document: its root node (None when unreadable) and the problems found."""

    label: str
    root: yaml.Node | None
    problems: tuple[Problem, ...]


def problem_at(label: str, node: yaml.Node, path: str, message: str) -> Problem:
    """A problem located at the start of ``node`` (PyYAML marks are 0-based)."""
    mark = node.start_mark
    return Problem(label, mark.line + 1, mark.column + 1, path, message)


def read_yaml(path: Path, label: str, max_bytes: int, what: str = "document") -> Source:
    """Read and compose ``path``; never raises for bad content, only for an unreadable file."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return Source(label, None, (Problem(label, 1, 1, "(file)", f"cannot read the file: {error.strerror}"),))
    if size > max_bytes:
        return Source(label, None, (Problem(
            label, 1, 1, "(file)",
            f"the file is {size:,} bytes, over the limit of {max_bytes:,}; "
            "split it or raise the size limit setting if it really is this large",
        ),))
    data = path.read_bytes()
    return parse_yaml(data, label, what)


def parse_yaml(data: bytes, label: str, what: str = "document") -> Source:
    """Compose YAML bytes into a node tree and check the things the schema cannot see."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return Source(label, None, (Problem(label, line, 1, "(file)", "the file is not UTF-8 text; save it as UTF-8"),))
    if not text.strip():
        return Source(label, None, (Problem(label, 1, 1, "(file)", f"the file is empty; expected a YAML {what}"),))
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(part for part in (error.context, error.problem) if part)
        return Source(label, None, (Problem(label, line, column, "(file)", f"not valid YAML: {reason}"),))
    except yaml.YAMLError as error:
        return Source(label, None, (Problem(label, 1, 1, "(file)", f"not valid YAML: {error}"),))
    if root is None:
        return Source(label, None, (Problem(label, 1, 1, "(file)", f"the file holds no data; expected a YAML {what}"),))
    # Anchors need "&" and aliases "*": only then pay for a second pass over the events.
    if "&" in text and "*" in text:
        aliases = _alias_problems(label, text)
        if aliases:
            return Source(label, None, tuple(aliases))
    return Source(label, root, tuple(_structural_problems(label, root)))


MAX_ALIAS_PROBLEMS = 20


def _alias_problems(label: str, text: str) -> list[Problem]:
    """Each alias (``*name``) where it is written. The file is then not read further, so an
    alias bomb ("billion laughs") is refused without ever being expanded."""
    problems: list[Problem] = []
    aliases = (event for event in yaml.parse(text, Loader=yaml.CSafeLoader) if isinstance(event, yaml.AliasEvent))
    for count, event in enumerate(aliases):
        if count == MAX_ALIAS_PROBLEMS:
            problems.append(Problem(label, event.start_mark.line + 1, event.start_mark.column + 1, "(file)",
                                    "more aliases follow; remove every alias"))
            break
        problems.append(Problem(label, event.start_mark.line + 1, event.start_mark.column + 1, "(file)",
                                f"YAML aliases (*{event.anchor}) are not supported; write the value out in full"))
    return problems


def _structural_problems(label: str, root: yaml.Node) -> list[Problem]:
    """Duplicate keys (at any depth), merge keys and custom tags. Iterative: deep nesting is fine."""
    problems: list[Problem] = []
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            keys: dict[str, yaml.Node] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                child = f"{path}.{key}" if path else key
                if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                    problems.append(problem_at(label, key_node, child,
                                               "YAML merge keys (<<) are not supported; write the keys out in full"))
                elif key in keys:
                    first = keys[key].start_mark.line + 1
                    problems.append(problem_at(label, key_node, child,
                                               f"duplicate key '{key}' (first defined on line {first}); "
                                               "keep one, since YAML would silently drop the other"))
                else:
                    keys[key] = key_node
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(node.value))
        if node.tag.startswith("!") or node.tag.startswith("tag:yaml.org,2002:python"):
            problems.append(problem_at(label, node, path or "(root)",
                                       f"custom YAML tags ({node.tag}) are not supported; remove the tag"))
    return problems
