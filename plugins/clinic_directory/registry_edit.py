"""Edit the registry's YAML text in place, keeping its layout: the writing half of profile updates.

``updates.py`` decides what a clinic's entry becomes; this module changes only the lines that hold
changed values, working from the composed nodes' marks. A changed value keeps its place and, where
it can, its style: a folded text (``>-``) is folded again, a block list stays a block list, a quoted
value stays quoted; other text is written plain when YAML reads it back unchanged, else
double-quoted with JSON's escapes. A deleted field loses its line (or its ``key: value`` in a flow
mapping); a new field goes where the schema's order puts it among its neighbours, new locations and
physicians last. What cannot be edited safely raises ``LayoutError``; the caller reads the result
back and compares it with the data it meant to write, so a mistake here refuses an update rather
than writing it wrong.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from . import schema as s
from .source import STR_TAG
from .validate import describe, join

# Text written without quotes when YAML reads it back as the same text (checked with its resolver
# too): letters, digits and punctuation that is never an indicator in block or flow context.
PLAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._()'/@+-]*[A-Za-z0-9._()'/@+-])?$")
KEY_RE = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")
# Characters YAML does not take raw inside a double-quoted scalar, or reads as line breaks.
YAML_ESCAPE_RE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
FOLD_WIDTH = 80  # where the registry's folded texts wrap
FLOW_WIDTH = 100  # a new mapping longer than this on one line is written as indented lines instead


HOURS = s.Scalar("hours")


def child_spec(spec: s.Spec, key: str) -> s.Spec:
    if isinstance(spec, s.Record):
        return spec.fields[key].spec
    if isinstance(spec, s.SlugMap):
        return spec.value
    if isinstance(spec, s.DayHours):
        return HOURS
    if isinstance(spec, s.ListOf):
        return spec.item
    raise TypeError(spec)


# -- writing values as YAML --------------------------------------------------------------------

_RESOLVER = yaml.resolver.Resolver()


def quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes (which YAML shares), plus those YAML needs beyond them."""
    return YAML_ESCAPE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def plain_ok(text: str) -> bool:
    """Whether ``text`` reads back as itself without quotes, in block and in flow context."""
    return bool(PLAIN_RE.match(text)) and "  " not in text and text.lower() not in ("y", "n") \
        and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == STR_TAG


def key_text(key: str) -> str:
    plain = KEY_RE.match(key) and _RESOLVER.resolve(yaml.ScalarNode, key, (True, False)) == STR_TAG
    return key if plain else quoted(key)


def number_text(value: float) -> str:
    """A coordinate YAML reads back as the same float (it wants a dot, and no exponent without one)."""
    text = format(Decimal(repr(float(value))), "f")
    return text if "." in text else text + ".0"


def flow_text(value: Any, spec: s.Spec, style: str | None = None) -> str:
    """``value`` on one line; ``style`` is that of the scalar it replaces ('"' keeps quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, str):
        if isinstance(spec, s.Scalar) and spec.kind == "date":
            return value  # as the registry writes dates: YYYY-MM-DD, unquoted
        return value if not style and plain_ok(value) else quoted(value)
    if isinstance(value, list):
        return "[" + ", ".join(flow_text(item, child_spec(spec, "")) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key_text(k)}: {flow_text(v, child_spec(spec, k))}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__}")


def folded(text: str, indent: int) -> str | None:
    """``text`` as a folded block scalar (``>-``) at ``indent``, as the registry writes long texts;
    None when folding would not read back as exactly ``text``."""
    if not plain_text_for_block(text):
        return None
    lines = textwrap.wrap(text, width=max(40, FOLD_WIDTH - indent), break_long_words=False,
                          break_on_hyphens=False, expand_tabs=False, replace_whitespace=False)
    if " ".join(lines) != text:
        return None
    return ">-" + "".join("\n" + " " * indent + line for line in lines)


def plain_text_for_block(text: str) -> bool:
    """Folding joins lines with one space: the text must be single-spaced, on one line, printable."""
    return bool(text) and text == text.strip() and "  " not in text \
        and not re.search(r"[\x00-\x1f]", text) and not YAML_ESCAPE_RE.search(text)


def block_value(key: str, value: Any, spec: s.Spec, indent: int) -> str:
    """What follows ``key:`` for a new entry in a block mapping whose keys are at ``indent``."""
    if isinstance(value, dict):
        one_line = flow_text(value, spec)
        nested = any(isinstance(v, dict) for v in value.values())
        if not nested and indent + len(key) + 2 + len(one_line) <= FLOW_WIDTH:
            return " " + one_line
        return "".join(f"\n{' ' * (indent + 2)}{key_text(k)}:{block_value(k, v, child_spec(spec, k), indent + 2)}"
                       for k, v in value.items())
    if isinstance(spec, s.Scalar) and spec.kind == "text" and isinstance(value, str) \
            and indent + len(key) + 2 + len(flow_text(value, spec)) > FOLD_WIDTH:
        block = folded(value, indent + 2)
        if block:
            return " " + block
    return " " + flow_text(value, spec)


# -- editing the registry's text ---------------------------------------------------------------

class LayoutError(Exception):
    """The registry is laid out in a way this stage does not edit; the update is then refused."""


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]``. Edits at one place apply in the order they were made."""

    start: int
    end: int
    text: str


@dataclass
class Planner:
    """Turns (old entry, new entry) into edits of the registry's text, at the nodes' marks.

    Marks are character offsets in the text without a leading byte order mark (libyaml skips it).
    """

    text: str
    edits: list[Edit] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    newline: str = "\n"

    def __post_init__(self) -> None:
        self.newline = "\r\n" if "\r\n" in self.text else "\n"

    def line_start(self, pos: int) -> int:
        return self.text.rfind("\n", 0, pos) + 1

    def line_end(self, pos: int) -> int:
        """Where the line holding ``pos`` ends, before its line break."""
        end = self.text.find("\n", pos)
        if end < 0:
            return len(self.text)
        return end - 1 if end > 0 and self.text[end - 1] == "\r" else end

    def next_line(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        return len(self.text) if end < 0 else end + 1

    def content_end(self, node: yaml.Node) -> int:
        """Where a node's own text ends. libyaml's end mark of a block collection or block scalar
        lies past the blank and comment lines that follow it."""
        if isinstance(node, yaml.ScalarNode):
            if node.style in ("|", ">"):
                header = self.text[node.start_mark.index:self.line_end(node.start_mark.index)]
                if "+" in header.split("#")[0]:
                    raise LayoutError("a block scalar that keeps its trailing lines (|+ or >+)")
                body = self.text[node.start_mark.index:node.end_mark.index]
                return node.start_mark.index + len(body.rstrip())
            return node.end_mark.index
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style and node.value:
            last = node.value[-1]
            return self.content_end(last[1] if isinstance(last, tuple) else last)
        return node.end_mark.index

    def entry_line_end(self, value: yaml.Node) -> int:
        """The end of the last line of an entry: after its value, and a comment if there is one."""
        end = self.content_end(value)
        rest = self.text[end:self.line_end(end)].strip()
        if rest and not rest.startswith("#"):
            raise LayoutError("another entry on the same line")
        return self.line_end(end)

    # -- the walk ----------------------------------------------------------------------------

    def mapping(self, node: yaml.MappingNode, old: dict, new: dict, spec: s.Spec, path: str) -> None:
        deleted: list[int] = []
        for index, (key_node, value_node) in enumerate(node.value):
            key = key_node.value
            child = join(path, key)
            if key not in old:  # a key written with no value: absent from the data
                if key in new:
                    deleted.append(index)  # written again with the new keys
                continue
            if key not in new:
                deleted.append(index)
                self.changed.append(child)
            elif old[key] != new[key]:
                cspec = child_spec(spec, key)
                if isinstance(old[key], dict) and isinstance(new[key], dict) \
                        and isinstance(value_node, yaml.MappingNode):
                    self.mapping(value_node, old[key], new[key], cspec, child)
                else:
                    self.replace(key_node, value_node, new[key], cspec)
                    self.changed.append(child)
        added = [key for key in new if key not in old]
        self.changed.extend(join(path, key) for key in added)
        if node.flow_style:
            self.flow_entries(node, deleted, added, new, spec)
        else:
            self.block_entries(node, deleted, added, new, spec)

    def placements(self, node: yaml.MappingNode, gone: set[int], added: list[str],
                   spec: s.Spec) -> list[tuple[int | None, list[str]]]:
        """Where new keys go: (index of the kept entry they follow, or None for the top; keys).

        A clinic's fields and a week's days go where the schema's order puts them among the kept
        entries (a new website after the name, a new Saturday between Friday and Sunday); new
        locations and physicians go last, as they are listed on the site in the file's order.
        """
        kept = [index for index in range(len(node.value)) if index not in gone]
        order = list(spec.fields) if isinstance(spec, s.Record) else list(s.WEEKDAYS) \
            if isinstance(spec, s.DayHours) else None
        if order is None or not kept:
            return [(kept[-1] if kept else None, added)]

        def rank(key: str) -> int:
            return order.index(key) if key in order else len(order)

        groups: dict[int | None, list[str]] = {}
        for key in sorted(added, key=rank):
            later = [i for i in kept if rank(node.value[i][0].value) > rank(key)]
            if not later:
                anchor: int | None = kept[-1]
            else:
                before = [i for i in kept if i < later[0]]
                anchor = before[-1] if before else None
            groups.setdefault(anchor, []).append(key)
        return sorted(groups.items(), key=lambda item: -1 if item[0] is None else item[0])

    def block_entries(self, node: yaml.MappingNode, deleted: list[int], added: list[str], new: dict,
                      spec: s.Spec) -> None:
        indent = node.start_mark.column
        for index in deleted:
            key_node, value_node = node.value[index]
            start = self.line_start(key_node.start_mark.index)
            if self.text[start:key_node.start_mark.index].strip():
                raise LayoutError("a key that does not start its line")
            self.edits.append(Edit(start, self.next_line(self.entry_line_end(value_node)), ""))
        if not added:
            return
        nl = self.newline
        for anchor, keys in self.placements(node, set(deleted), added, spec):
            lines = [(" " * indent + key_text(key) + ":"
                      + block_value(key, new[key], child_spec(spec, key), indent)).replace("\n", nl) for key in keys]
            # New lines start the line after the entry they follow: where that entry's own new
            # keys (made before these, so written before them) and deleted lines also meet.
            if anchor is None:
                at = self.line_start(node.value[0][0].start_mark.index)
            else:
                at = self.next_line(self.entry_line_end(node.value[anchor][1]))
            if at == len(self.text) and not self.text.endswith("\n"):
                self.edits.append(Edit(at, at, "".join(nl + line for line in lines)))
            else:
                self.edits.append(Edit(at, at, "".join(line + nl for line in lines)))

    def flow_entries(self, node: yaml.MappingNode, deleted: list[int], added: list[str], new: dict,
                     spec: s.Spec) -> None:
        entries = node.value
        gone = set(deleted)
        index = 0
        while index < len(entries):  # each run of deleted entries goes with the separators around it
            if index not in gone:
                index += 1
                continue
            last = index
            while last + 1 in gone:
                last += 1
            if last + 1 < len(entries):  # "a: 1, " up to the next kept key
                self.edits.append(Edit(entries[index][0].start_mark.index, entries[last + 1][0].start_mark.index, ""))
            elif index > 0:  # ", z: 26" after the last kept value
                self.edits.append(Edit(self.content_end(entries[index - 1][1]), self.content_end(entries[last][1]), ""))
            else:  # every entry
                self.edits.append(Edit(entries[0][0].start_mark.index, self.content_end(entries[last][1]), ""))
            index = last + 1
        if not added:
            return
        everything_gone = len(gone) == len(entries)
        for anchor, keys in self.placements(node, gone, added, spec):
            items = [f"{key_text(key)}: {flow_text(new[key], child_spec(spec, key))}" for key in keys]
            if anchor is not None:
                at = self.content_end(entries[anchor][1])
                self.edits.append(Edit(at, at, "".join(", " + item for item in items)))
            elif not entries:  # {}
                at = node.start_mark.index + 1
                self.edits.append(Edit(at, at, ", ".join(items)))
            else:
                at = entries[0][0].start_mark.index
                self.edits.append(Edit(at, at, ", ".join(items) + ("" if everything_gone else ", ")))

    def replace(self, key_node: yaml.Node, node: yaml.Node, value: Any, spec: s.Spec) -> None:
        start = node.start_mark.index
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            end = self.content_end(node)
            block = folded(value, self.block_indent(node, key_node)) if isinstance(value, str) else None
            self.edits.append(Edit(start, end, block.replace("\n", self.newline) if block
                                   else flow_text(value, spec, style='"')))
        elif isinstance(node, yaml.ScalarNode):
            self.edits.append(Edit(start, node.end_mark.index, flow_text(value, spec, style=node.style)))
        elif isinstance(node, yaml.SequenceNode) and isinstance(value, list) and not node.flow_style:
            end = self.content_end(node)
            if value:  # a block list stays one: "- item" lines at the same column
                items = [flow_text(item, child_spec(spec, "")) for item in value]
                self.edits.append(Edit(start, end, (self.newline + " " * node.start_mark.column).join(
                    "- " + item for item in items)))
            elif re.fullmatch(r"[ \t]*:[ \t]*\r?\n\s*", self.text[key_node.end_mark.index:start]):
                self.edits.append(Edit(key_node.end_mark.index, end, ": []"))
            else:
                raise LayoutError("a comment between a list's key and its items")
        elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
            self.edits.append(Edit(start, node.end_mark.index, flow_text(value, spec)))
        else:
            raise LayoutError(f"a {describe(node)} replaced by a {type(value).__name__}")

    def block_indent(self, node: yaml.ScalarNode, key_node: yaml.Node) -> int:
        """The indentation of a block scalar's lines (of its first one)."""
        first = self.text[self.next_line(node.start_mark.index):self.content_end(node)]
        spaces = len(first) - len(first.lstrip(" "))
        return spaces if spaces > key_node.start_mark.column else key_node.start_mark.column + 2


def apply_edits(text: str, edits: list[Edit]) -> str:
    out: list[str] = []
    at = 0
    for edit in sorted(edits, key=lambda edit: (edit.start, edit.end)):  # stable: see Edit
        if edit.start < at:
            raise LayoutError("two changes to overlapping text")
        out.append(text[at:edit.start])
        out.append(edit.text)
        at = edit.end
    out.append(text[at:])
    return "".join(out)


def same(a: Any, b: Any, spec: s.Spec) -> bool:
    """Equal data; the order of keys counts where it is the order the site lists things in
    (locations, physicians, clinics), not among a record's fields."""
    if isinstance(a, dict) and isinstance(b, dict) and isinstance(spec, s.Record | s.SlugMap):
        if (list(a) != list(b)) if isinstance(spec, s.SlugMap) else (a.keys() != b.keys()):
            return False
        return all(same(a[key], b[key], child_spec(spec, key)) for key in a)
    return type(a) is type(b) and a == b


def first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            if key not in a or key not in b:
                return join(path, key)
            if a[key] != b[key]:
                return first_difference(a[key], b[key], join(path, key))
        if list(a) != list(b):
            return f"{path} (order of keys)"
    return path or "(root)"

