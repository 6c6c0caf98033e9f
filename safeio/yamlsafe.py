"""Safe, bounded YAML loading that remembers the line of every mapping key and list item.

Only plain YAML is accepted: no tags beyond the core schema, no anchors or aliases (the
"billion laughs" expansion is impossible by construction), nesting at most MAX_YAML_DEPTH deep
(PyYAML's composer recurses per level) and a size limit, checked before a file is read whole
(`read_yaml_file`, which opens regular files only), so a hostile file is refused quickly with
a line number instead of being expanded. The document is parsed once: the checks run in the
composer, as each node starts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from safeio.inputs import NotRegularFile, open_input

MAX_YAML_BYTES = 1 << 18
MAX_YAML_DEPTH = 64
_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


MAX_KEY_CHARS = 1024
"""PyYAML's limit on a plain (simple) mapping key: a longer one is not read as a key."""


class YamlProblem(Exception):
    """A file that is not acceptable YAML; `rule` is yaml-syntax or yaml-unsafe. `path` is
    where in the document a bad value sits (mapping keys and list indices from the top),
    empty when the problem is not inside a value."""

    def __init__(self, line: int, rule: str, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.rule = rule
        self.message = message
        self.path: tuple[str | int, ...] = ()


class YMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each key."""

    line: int
    key_lines: dict[str, int]


class YList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]


def _too_big() -> YamlProblem:
    return YamlProblem(1, "yaml-unsafe", f"file is larger than the {MAX_YAML_BYTES}-byte "
                       f"({MAX_YAML_BYTES >> 10} KiB) limit for YAML files")


def read_yaml_file(path: Path) -> bytes:
    """The bytes of a YAML file, reading at most MAX_YAML_BYTES + 1 of them: a larger file is a
    YamlProblem without being read whole, and so is anything but a regular file (a FIFO would
    block, a device such as /dev/zero never ends): safeio.inputs checks before opening. OSError
    as opening or reading raises it."""
    try:
        handle = open_input(path)
    except NotRegularFile as exc:
        raise YamlProblem(1, "yaml-unsafe", f"{exc.strerror}; only regular files are read") \
            from None
    with handle:
        data = handle.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise _too_big()
    return data


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader's composer, refusing anchors, aliases and deep nesting as each node starts."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise YamlProblem(line, "yaml-unsafe", "anchors and aliases are not allowed")
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            raise YamlProblem(line, "yaml-unsafe",
                              f"nested more than {MAX_YAML_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(text: str) -> Any:
    """Parse `text` into YMap/YList/scalars; raise YamlProblem on anything unsafe or broken."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise _too_big()
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # checks that every character is printable
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(getattr(mark, "line", 0)) + 1
        column = int(getattr(mark, "column", 0))
        if column > MAX_KEY_CHARS and exc.problem == "mapping values are not allowed here":
            raise YamlProblem(line, "yaml-syntax", f"a key of about {column} characters: YAML "
                              f"reads a plain key of at most {MAX_KEY_CHARS}") from None
        raise YamlProblem(line, "yaml-syntax", f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:  # e.g. ReaderError: a character YAML does not allow
        line = text.count("\n", 0, getattr(exc, "position", 0)) + 1
        raise YamlProblem(line, "yaml-syntax", f"not valid YAML: {' '.join(str(exc).split())}") \
            from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return None
    return _convert(node, yaml.SafeLoader(""))


def _convert(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    line = node.start_mark.line + 1
    if node.tag not in _CORE_TAGS:
        raise YamlProblem(line, "yaml-unsafe", f"tag {node.tag!r} is not allowed")
    if isinstance(node, yaml.MappingNode):
        out = YMap()
        out.line = line
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, loader)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise YamlProblem(key_line, "yaml-syntax", f"mapping key {key!r} is not a string")
            if key in out:
                raise YamlProblem(key_line, "yaml-syntax", f"duplicate key {key!r}")
            out[key] = _inside(key, value_node, loader)
            out.key_lines[key] = key_line
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = YList()
        seq.line = line
        seq.item_lines = []
        for index, item in enumerate(node.value):
            seq.append(_inside(index, item, loader))
            seq.item_lines.append(item.start_mark.line + 1)
        return seq
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:
        if node.tag == "tag:yaml.org,2002:int":  # past Python's int_max_str_digits
            digits = sum(c.isdigit() for c in str(node.value))
            raise YamlProblem(line, "yaml-syntax", f"a {digits}-digit number is too long to "
                              f"read (at most {sys.get_int_max_str_digits()} digits)") from None
        raise YamlProblem(line, "yaml-syntax", f"bad scalar: {exc}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(line, "yaml-syntax", f"bad scalar: {exc}") from None


def _inside(step: str | int, node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    """_convert of a mapping value or list item; a problem inside it learns where it is."""
    try:
        return _convert(node, loader)
    except YamlProblem as exc:
        exc.path = (step, *exc.path)
        raise
