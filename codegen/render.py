"""Back ends: render the validated model through Jinja2 templates into file contents.

Rendering is pure (model in, {relative path: bytes} out) so `gen` and `gen --check` share it and
output is byte-identical on every run. Text from the spec (docs, sources, file names) reaches
generated files only through the escaping filters below, one per target context; names are
validated identifiers, clear of everything the templates define (codegen.names), by the time
they get here.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import jinja2

from codegen.model import Block, Field, Register, Spec
from codegen.names import BASE_FOR_ENUMS, BASE_FOR_REGISTERS, C_INCLUDE_GUARD

TEMPLATES = Path(__file__).parent / "templates"
C_HEADER = "ibs_mprof_regs.h"
MARKDOWN = "REGISTERS.md"
GENERATOR = "ibs-mprof codegen 1"
_MD_SPECIAL = re.compile(r"([\\`\[\]|])")
_MD_BLOCK_START = re.compile(r"^([#+\-*=_~])|^(\d{1,9})([.)])(?= |$)")


def _clean(text: str) -> str:
    """One line of printable text: white space (newlines included) folded to single spaces, any
    other non-printable character written as its escape (\\x07, \\u202e), so no target ever
    sees a line break, a control character or an invisible one. Validation refuses those in
    spec text; this also covers text it does not check, such as file names in the headers."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c.isspace() else ascii(c)[1:-1] for c in text)
    return " ".join(text.split())


def py_doc(text: str, indent: int = 4, width: int = 96) -> str:
    """Body of a triple-quoted docstring: escaped so it cannot close the string early."""
    body = _clean(text).replace("\\", "\\\\").replace('"', '\\"') or "(no description)"
    lines = textwrap.wrap(body, width=width - indent, break_long_words=True,
                          break_on_hyphens=False)
    # Never end a line on a lone backslash: wrapping may split an escape pair.
    fixed: list[str] = []
    carry = ""
    for line in lines:
        line = carry + line
        carry = ""
        while line.endswith("\\") and (len(line) - len(line.rstrip("\\"))) % 2 == 1:
            carry = "\\" + carry
            line = line[:-1]
        fixed.append(line)
    if carry:
        fixed.append(carry)
    return ("\n" + " " * indent).join(fixed)


def py_str(text: str) -> str:
    """A Python string literal (repr is always a safe literal)."""
    return repr(_clean(text))


def py_comment(text: str) -> str:
    """Text safe after `#`: one line, so nothing after it is read as code."""
    return _clean(text)


def c_comment(text: str) -> str:
    """Text safe inside a C block comment: one line that cannot close (or nest) the comment."""
    return _clean(text).replace("*/", "* /").replace("/*", "/ *")


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: no HTML, no link or image, no code span, no
    cell break. The backslash is escaped first, so a spec's `\\|` cannot turn the escaped pipe
    back into a cell break."""
    out = _MD_SPECIAL.sub(r"\\\1", _clean(text))
    for char, esc in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        out = out.replace(char, esc)
    return out


def md_text(text: str) -> str:
    """md_cell for a paragraph of its own, which also must not open a heading, a list, a rule or
    a fence: the character that would is escaped."""
    return _MD_BLOCK_START.sub(
        lambda m: "\\" + m.group(1) if m.group(1) else f"{m.group(2)}\\{m.group(3)}",
        md_cell(text), count=1)


def hexn(value: int, digits: int = 0) -> str:
    return f"0x{value:0{digits}X}" if digits else f"0x{value:X}"


def i64(value: int) -> str:
    """A 64-bit pattern as a signed int64 literal: what the scalar functions use, so that
    numba types every constant as int64 (a uint64 constant would make int64 arithmetic
    float). Python ints give the same bits: `raw & -25` clears what `raw & 0x...E7` would."""
    value &= (1 << 64) - 1
    return hexn(value) if value < 1 << 63 else f"-{hexn((1 << 64) - value)}"


def py_type(field: Field) -> str:
    if field.enum:
        return field.enum
    return "bool" if field.is_bool else "int"


def field_default(reg: Register, field: Field) -> str:
    """Python expression of the field's value in the register's reset value."""
    value = decode_field(field, reg.reset)
    if field.enum:
        return f"{field.enum}({value})"
    return "True" if field.is_bool and value else "False" if field.is_bool else hexn(value)


def decode_field(field: Field, raw: int) -> int:
    value = 0
    for p in field.parts:
        value |= ((raw >> p.reg_lo) & ((1 << p.width) - 1)) << p.val_lo
    return value


def c_suffix(width: int) -> str:
    return "ULL" if width > 32 else "U"


def c_value(value: int, width: int) -> str:
    return f"{hexn(value)}{c_suffix(width)}"


def c_int(value: int) -> str:
    """A constant as a C expression of its exact value (validation keeps it within INT64_MIN ..
    UINT64_MAX): negative ones parenthesised, so `x-C` never reads as `x--1`; INT64_MIN as a
    difference, since its magnitude fits no signed literal; above INT64_MAX as unsigned long
    long, the one type that holds it."""
    if value == -(1 << 63):
        return "(-9223372036854775807LL - 1)"
    if value < 0:
        return f"({value})"
    return f"{value}ULL" if value >= 1 << 63 else str(value)


def enum_block(spec: Spec, name: str) -> str:
    return spec.enums[name].block


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(py_doc=py_doc, py_str=py_str, c_comment=c_comment, md_cell=md_cell,
                       md_text=md_text, hexn=hexn, c_int=c_int, i64=i64)
    env.globals.update(py_type=py_type, field_default=field_default, c_value=c_value,
                       c_suffix=c_suffix)
    return env


def header_lines(spec: Spec, escape: Callable[[str], str]) -> list[str]:
    """Provenance: the generator and every spec file with its SHA-256; the file names (the one
    part from outside) escaped for the target."""
    lines = [f"Generated by {GENERATOR} from spec/ -- do not edit; run `ibs-mprof gen`."]
    lines += [f"spec/{escape(b.file)} sha256 {b.sha256}"
              for b in sorted(spec.blocks, key=lambda b: b.file)]
    return lines


def render_all(spec: Spec) -> dict[str, bytes]:
    """Every generated file, keyed by path relative to the output folder."""
    env = make_env()
    py_head = "\n".join("# " + line for line in header_lines(spec, py_comment))
    out: dict[str, str] = {}
    out["__init__.py"] = env.get_template("python/init.py.j2").render(header=py_head, spec=spec)
    out["_base.py"] = env.get_template("python/base.py.j2").render(header=py_head)
    out["py.typed"] = ""
    module = env.get_template("python/module.py.j2")
    for block in spec.blocks:
        imports: dict[str, set[str]] = {}
        for reg in block.registers:
            for f in reg.fields:
                if f.enum and f.enum not in {e.name for e in block.enums}:
                    imports.setdefault(enum_block(spec, f.enum), set()).add(f.enum)
        out[f"{block.name}.py"] = module.render(
            header=py_head, block=block, imports=_module_imports(block, imports))
    out["registry.py"] = env.get_template("python/registry.py.j2").render(header=py_head,
                                                                         spec=spec)
    out[C_HEADER] = env.get_template("c/header.h.j2").render(
        header=header_lines(spec, c_comment), guard=C_INCLUDE_GUARD, spec=spec)
    out[MARKDOWN] = env.get_template("markdown/reference.md.j2").render(
        header=header_lines(spec, md_cell), spec=spec)
    return {path: text.encode("utf-8") for path, text in sorted(out.items())}


def _natural(name: str) -> list[str | int]:
    """Sort key comparing digit runs as numbers (U8Array before U16Array), as ruff's isort."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _module_imports(block: Block, enum_imports: dict[str, set[str]]) -> str:
    """The import block of a register module, in ruff/isort order, importing only what the
    module uses (an empty `from generated._base import ()` would not even parse)."""
    has_regs = bool(block.registers)
    stdlib = (["from dataclasses import dataclass", "from typing import ClassVar, Final, final"]
              if has_regs else ["from typing import Final"] if block.constants or block.enums
              else [])
    third_party = ["import numpy as np"] if has_regs else []
    arrays = {r.array_type for r in block.registers}
    if any(f.is_bool for r in block.registers for f in r.fields):
        arrays.add("BoolArray")
    base = sorted((BASE_FOR_REGISTERS if has_regs else ()) + (BASE_FOR_ENUMS if block.enums
                                                               else ()) + tuple(arrays),
                  key=_natural)
    ours = ["from generated._base import (", *(f"    {name}," for name in base), ")"] if base \
        else []
    ours += [f"from generated.{mod} import {', '.join(sorted(names))}"
             for mod, names in sorted(enum_imports.items())]
    groups = [["from __future__ import annotations"], stdlib, third_party, ours]
    return "\n\n".join("\n".join(group) for group in groups if group)
