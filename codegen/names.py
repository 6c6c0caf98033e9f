"""The names generated code defines, and the rules that keep spec names clear of them.

Spec names become Python and C identifiers. A name can pass the identifier rules and still break
the output: a field called `encode` replaces the method, registers REG_1 and REG1 both become
class Reg1, a block called `registry` overwrites the name index, an enum called `Final` hides
the typing import. Every identifier the templates write is listed or derived here, so such
names are refused before anything renders (rules `reserved-name` and `name-collision`).
tests/test_spec_names.py parses freshly generated code and fails when a template defines or
reads a name this module does not know, so these lists cannot drift from the templates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from codegen.errors import Diagnostic
from codegen.model import Block, Register

# --- what the templates write ------------------------------------------------------------

TYPING_IMPORTS = ("ClassVar", "Final", "final")
BASE_FOR_REGISTERS = ("FieldInfo", "FieldValues", "RegisterValue", "Words", "as_words",
                      "check_bool", "check_int", "check_raw", "checked_words", "jitable",
                      "or_all")
BASE_FOR_ENUMS = ("OpenIntEnum",)
ARRAY_TYPES = ("BoolArray", "U8Array", "U16Array", "U32Array", "U64Array")
"""Array aliases a module imports for the dtypes its registers use."""
MODULE_IMPORTS = frozenset({"annotations", "dataclass", "np", *ARRAY_TYPES, *TYPING_IMPORTS,
                            *BASE_FOR_REGISTERS, *BASE_FOR_ENUMS})
"""Every name a block's module may import (render writes the import block from these)."""

REGISTRY_NAMES = frozenset({"annotations", "Final", "OpenIntEnum", "RegisterValue",
                            "REGISTERS", "MSRS", "CPUID_OUTPUTS", "ENUMS", "CONSTANTS"})
"""What registry.py binds besides the classes it imports from the block modules."""

OUTPUT_MODULES = {
    "registry": "the generated name index registry.py",
    "_base": "the generated support module _base.py",
    "__init__": "the generated package's __init__.py",
}
"""Generated modules that are not blocks: a block of that name would overwrite them."""

CLASS_ATTRIBUTES = ("NAME", "KIND", "ADDRESS", "LEAF", "SUBLEAF", "OUTPUT", "WIDTH", "RESET",
                    "RESERVED_MASK", "RESERVED_POLICY", "LOCATION", "FIELDS")
REGISTER_METHODS = ("__post_init__", "decode", "encode", "replace", "encode_array",
                    "field_values")
FIELD_METHOD_PREFIXES = ("extract_", "get_", "set_", "_insert_")
"""Each field x also gives the static methods extract_x, get_x, set_x and _insert_x."""

_METHOD = "a method of every register class"
_TYPE = "a type the class body's annotations name"
FIELD_RESERVED = {
    "self": "the instance parameter of replace() and __post_init__()",
    "reserved_bits": "the attribute that keeps a register's reserved bits",
    **{name: _METHOD for name in REGISTER_METHODS},
    "int": _TYPE, "bool": _TYPE, "str": _TYPE, "tuple": _TYPE,
    "or_all": "the helper encode_array() calls, which a parameter of that name would hide",
    "staticmethod": "a decorator the class body applies after the fields",
    "classmethod": "a decorator the class body applies after the fields",
}
"""Field names a register class cannot take: a field of that name would replace a method, or
hide a name that the class body or a method taking the fields as parameters reads."""

UNKNOWN_MEMBER = re.compile(r"UNKNOWN_\d+")
"""Pseudo-members of an open enum; a listed value of that form would be ambiguous."""

C_INCLUDE_GUARD = "IBS_MPROF_GENERATED_REGS_H"


def register_module_constants(reg: Register) -> list[tuple[str, str, int]]:
    """The module constants a register gives: (name, what makes it, line)."""
    what = f"register {reg.name}"
    suffixes = ["WIDTH", "DTYPE"]
    suffixes += {"msr": ["ADDRESS"], "cpuid": ["LEAF", "SUBLEAF", "OUTPUT"]}.get(reg.kind, [])
    suffixes += ["RESET", "RESERVED_MASK"]
    out = [(f"{reg.name}_{suffix}", what, reg.line) for suffix in suffixes]
    for f in reg.fields:
        what_f = f"field {reg.name}.{f.name}"
        base = f"{reg.name}_{f.name.upper()}"
        out += [(f"{base}_MASK", what_f, f.line), (f"{base}_WIDTH", what_f, f.line)]
        if not f.split:
            out.append((f"{base}_SHIFT", what_f, f.line))
            continue
        for i in range(len(f.parts)):
            out += [(f"{base}_PART{i}_{suffix}", what_f, f.line)
                    for suffix in ("MASK", "SHIFT", "WIDTH", "VALUE_SHIFT")]
    return out


def register_module_functions(reg: Register) -> list[tuple[str, str, int]]:
    """The scalar functions a register gives at module level: (name, what makes it, line)."""
    out = [(f"{reg.func_prefix}_{verb}", f"register {reg.name}", reg.line)
           for verb in ("encode", "pack")]
    for f in reg.fields:
        out += [(f"{reg.func_prefix}_{verb}_{f.name}", f"field {reg.name}.{f.name}", f.line)
                for verb in ("get", "set")]
    return out


def class_members(reg: Register) -> list[str]:
    """Every name a register's value class defines in its body (fields included)."""
    members = [a for a in CLASS_ATTRIBUTES if _has_attribute(reg, a)]
    members += [m for m in REGISTER_METHODS if m != "field_values"]  # that one is inherited
    members += [f.name for f in reg.fields]
    if reg.keeps_reserved:
        members.append("reserved_bits")
    members += [prefix + f.name for f in reg.fields for prefix in FIELD_METHOD_PREFIXES]
    return members


def _has_attribute(reg: Register, attribute: str) -> bool:
    per_kind = {"ADDRESS": "msr", "LEAF": "cpuid", "SUBLEAF": "cpuid", "OUTPUT": "cpuid"}
    return per_kind.get(attribute, reg.kind) == reg.kind


def c_macros(reg: Register) -> list[tuple[str, int]]:
    """Every C macro name a register produces, with the line that causes it."""
    out: list[tuple[str, int]] = []
    if reg.c_name:
        out.append((reg.c_name, reg.line))
    for f in reg.fields:
        if f.split:
            for i, p in enumerate(f.parts):
                out.append((p.c_mask or f"{f.c_name}_PART{i}_MASK", f.line))
                if p.c_shift:
                    out.append((p.c_shift, f.line))
        elif f.width == 1:
            out.append((f.c_name, f.line))
        else:
            out.append((f.c_mask or f"{f.c_name}_MASK", f.line))
            out.append((f"{f.c_name}_SHIFT", f.line))
    return out


# --- the rules ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Origin:
    """Where a generated name comes from. `owner` is the spec item; two origins with one owner
    are one item defined twice, which duplicate-name reports already."""

    desc: str
    file: str
    line: int
    owner: str


class _Namespace:
    """One scope of generated names: reports names that are reserved or taken twice."""

    def __init__(self, reserved: dict[str, str], out: list[Diagnostic]) -> None:
        self.reserved = reserved
        self.out = out
        self.seen: dict[str, _Origin] = {}
        self.clashes: set[tuple[str, str]] = set()  # one report per pair of spec items

    def add(self, name: str, origin: _Origin) -> None:
        if name in self.reserved:
            self.out.append(Diagnostic(origin.file, origin.line, "reserved-name",
                                       f"{origin.desc}: {name} is {self.reserved[name]}; "
                                       "rename it"))
            return
        other = self.seen.setdefault(name, origin)
        pair = (origin.owner, other.owner)
        if other is not origin and other.owner != origin.owner and pair not in self.clashes:
            self.clashes.add(pair)
            self.out.append(Diagnostic(origin.file, origin.line, "name-collision",
                                       f"{origin.desc} clashes with {other.desc} "
                                       f"({other.file}:{other.line}); rename one"))


def check_names(blocks: Sequence[Block]) -> list[Diagnostic]:
    """reserved-name and name-collision over every name the templates would generate."""
    out: list[Diagnostic] = []
    python = _Namespace({**dict.fromkeys(REGISTRY_NAMES, "a name registry.py defines"),
                         **dict.fromkeys(MODULE_IMPORTS, "imported by every generated module")},
                        out)
    modules = _Namespace(OUTPUT_MODULES, out)
    # C macros taken twice are duplicate-name's (one owner per macro name): only reserved here.
    c_names = _Namespace({C_INCLUDE_GUARD: "the header's include guard"}, out)
    for b in blocks:
        modules.add(b.name, _Origin(f"block {b.name}", b.file, b.line, f"block {b.name}"))
        for c in b.constants:
            python.add(c.name, _Origin(f"constant {c.name}", b.file, c.line, f"const {c.name}"))
            c_names.add(c.c_name, _Origin(f"C macro {c.c_name} of constant {c.name}", b.file,
                                          c.line, f"C {c.c_name}"))
        for e in b.enums:
            owner = f"enum {e.name}"
            python.add(e.name, _Origin(f"enum {e.name}", b.file, e.line, owner))
            python.add(e.width_name, _Origin(f"constant {e.width_name} of enum {e.name}",
                                             b.file, e.line, owner))
            for v in e.values:
                if UNKNOWN_MEMBER.fullmatch(v.name):
                    out.append(Diagnostic(
                        b.file, v.line, "reserved-name",
                        f"value {v.name} of enum {e.name}: UNKNOWN_<n> is how unlisted "
                        "encodings decode; rename it"))
                if e.c_prefix:
                    c_names.add(e.c_prefix + v.name, _Origin(
                        f"C macro {e.c_prefix}{v.name} of enum {e.name}", b.file, v.line,
                        f"C {e.c_prefix}{v.name}"))
        for r in b.registers:
            owner = f"register {r.name}"
            python.add(r.class_name, _Origin(f"class {r.class_name} of register {r.name}",
                                             b.file, r.line, owner))
            for name, what, line in register_module_constants(r):
                python.add(name, _Origin(f"constant {name} of {what}", b.file, line, what))
            for name, what, line in register_module_functions(r):
                python.add(name, _Origin(f"function {name} of {what}", b.file, line, what))
            for name, line in c_macros(r):
                c_names.add(name, _Origin(f"C macro {name} of register {r.name}", b.file, line,
                                          f"C {name}"))
            _check_members(b, r, out)
    return out


def _check_members(block: Block, reg: Register, out: list[Diagnostic]) -> None:
    """Fields against the class's own methods and against each other's derived methods."""
    members = _Namespace(FIELD_RESERVED, out)
    for f in reg.fields:
        members.add(f.name, _Origin(f"field {reg.name}.{f.name}", block.file, f.line,
                                    f"field {f.name}"))
    for name, what, line in register_module_functions(reg):  # encode() takes the fields
        members.add(name, _Origin(f"function {name} of {what}", block.file, line,
                                  f"function {name}"))
    for f in reg.fields:
        for prefix in FIELD_METHOD_PREFIXES:
            members.add(prefix + f.name, _Origin(
                f"method {prefix}{f.name} of field {reg.name}.{f.name}", block.file, f.line,
                f"field {f.name}"))
