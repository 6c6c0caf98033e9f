"""Safe, bounded YAML loading that remembers the line of every mapping key and list item.

Only plain YAML is accepted: no tags beyond the core schema, no anchors or aliases (the
"billion laughs" expansion is impossible by construction) and a size limit, so a hostile
file is refused quickly with a line number instead of being expanded.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_BYTES = 1 << 20
_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class YamlProblem(Exception):
    """A file that is not acceptable YAML; `rule` is yaml-syntax or yaml-unsafe."""

    def __init__(self, line: int, rule: str, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.rule = rule
        self.message = message


class YMap(dict[str, Any]):
    """A mapping that knows its own line and the line of each key."""

    line: int
    key_lines: dict[str, int]


class YList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]


def load_yaml(text: str) -> Any:
    """Parse `text` into YMap/YList/scalars; raise YamlProblem on anything unsafe or broken."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise YamlProblem(1, "yaml-unsafe", f"file is larger than {MAX_YAML_BYTES} bytes")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = int(getattr(event.start_mark, "line", 0)) + 1
                raise YamlProblem(line, "yaml-unsafe", "anchors and aliases are not allowed")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(getattr(mark, "line", 0)) + 1
        raise YamlProblem(line, "yaml-syntax", f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, "yaml-syntax", f"not valid YAML: {exc}") from None
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
            out[key] = _convert(value_node, loader)
            out.key_lines[key] = key_line
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = YList()
        seq.line = line
        seq.item_lines = []
        for item in node.value:
            seq.append(_convert(item, loader))
            seq.item_lines.append(item.start_mark.line + 1)
        return seq
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:
        raise YamlProblem(line, "yaml-syntax", f"bad scalar: {exc}") from None
