"""Spec front end: read every spec/*.yaml, check every rule, build the typed model.

All problems of a run are collected and raised together as one SpecError, each pointing at the
line of the offending key. Names only reach the model after they pass the identifier rules, so
templates never see text that could break out of an identifier position.
"""

from __future__ import annotations

import hashlib
import keyword
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from codegen.derive import DeriveError, evaluate
from codegen.errors import Diagnostic, SpecError
from codegen.model import Block, Constant, Enum, EnumValue, Field, Part, Register, Spec, bit_mask
from codegen.names import c_macros, check_names
from safeio.yamlsafe import YamlProblem, YList, YMap, load_yaml, read_yaml_file

FORMAT_VERSION = 1
_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")
_LOWER = re.compile(r"^[a-z][a-z0-9_]*$")
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_C_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]*_?$")
_BITS = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+)\s*)?$")
_MAX_TEXT = 2000
SPEC_FILE_NAME = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,63}\.yaml")
"""What a spec file may be called: its name goes into the header of every generated file."""
_TEXT_SPACE = {"Zs", "Zl", "Zp"}  # white space the renderers fold to one space
C_INT_MIN = -(1 << 63)
C_INT_MAX = (1 << 64) - 1
"""A constant must fit int64_t or uint64_t: no C integer literal type holds more."""

_FILE_KEYS = {"format", "block", "doc", "source", "enums", "registers", "constants"}
_REG_KEYS = {
    "name", "kind", "address", "leaf", "subleaf", "output", "width", "reset", "reserved_policy",
    "reserved_bits", "c_name", "c_prefix", "doc", "source", "fields",
}
_FIELD_KEYS = {
    "name", "bits", "parts", "zero_bits", "access", "enum", "c_name", "c_mask", "doc", "source",
}
_PART_KEYS = {"bits", "value_bits", "c_mask", "c_shift"}
_ENUM_KEYS = {"name", "width", "c_prefix", "doc", "source", "values"}
_VALUE_KEYS = {"name", "value", "doc"}
_CONST_KEYS = {"name", "value", "doc", "source", "c_name", "derive"}
_KINDS = ("msr", "cpuid", "memory")
_WIDTHS = (8, 16, 32, 64)
_ACCESS = ("rw", "ro", "w1c")
_POLICIES = ("preserve", "must_be_zero")
_OUTPUTS = ("eax", "ebx", "ecx", "edx")


class _Checker:
    """Collects diagnostics for one file while converting its nodes."""

    def __init__(self, file: str, out: list[Diagnostic]) -> None:
        self.file = file
        self.out = out

    def error(self, line: int, rule: str, message: str) -> None:
        self.out.append(Diagnostic(self.file, line, rule, message))

    def keys(self, node: YMap, allowed: set[str], required: tuple[str, ...], what: str) -> bool:
        ok = True
        for key in node:
            if key not in allowed:
                self.error(node.key_lines[key], "unknown-key",
                           f"unknown key {key!r} in {what}; expected one of {sorted(allowed)}")
        for key in required:
            if key not in node:
                self.error(node.line, "missing-key", f"{what} needs key {key!r}")
                ok = False
        return ok

    def line_of(self, node: YMap, key: str) -> int:
        return node.key_lines.get(key, node.line)

    def get(self, node: YMap, key: str, kind: type | tuple[type, ...], what: str,
            default: Any = None) -> Any:
        if key not in node:
            return default
        value = node[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            value_ok = False
        else:
            value_ok = isinstance(value, kinds)
        if not value_ok:
            names = " or ".join(k.__name__ for k in kinds)
            self.error(self.line_of(node, key), "bad-type",
                       f"{what} {key!r} must be {names}, got {type(value).__name__} {value!r}")
            return default
        if isinstance(value, str) and len(value) > _MAX_TEXT:
            self.error(self.line_of(node, key), "bad-type",
                       f"{what} {key!r} is longer than {_MAX_TEXT} characters")
            return default
        return value

    def choice(self, node: YMap, key: str, choices: tuple[Any, ...], what: str,
               default: Any = None) -> Any:
        value = node.get(key, default)
        if value not in choices or isinstance(value, bool):
            self.error(self.line_of(node, key), "bad-type",
                       f"{what} {key!r} must be one of {list(choices)}, got {value!r}")
            return default
        return value

    def ident(self, node: YMap, key: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self.get(node, key, str, what)
        if not isinstance(value, str):
            return None
        if not pattern.match(value) or keyword.iskeyword(value) or value.startswith("_"):
            style = {_UPPER: "UPPER_SNAKE", _LOWER: "lower_snake", _CAMEL: "CamelCase",
                     _C_PREFIX: "UPPER_SNAKE"}[pattern]
            self.error(self.line_of(node, key), "bad-identifier",
                       f"{what} {key!r} = {value!r} is not a valid {style} identifier")
            return None
        return value

    def bits(self, node: YMap, key: str, what: str) -> tuple[int, int] | None:
        raw = node.get(key)
        if not isinstance(raw, str):
            # YAML 1.1 reads an unquoted 1:0 as the base-60 number 60 and 31:27 as 1887, so a
            # number here may be a range the spec meant: never guess, ask for quotes.
            self.error(self.line_of(node, key), "bad-bits",
                       f"{what} {key!r} must be a quoted string such as \"3:0\" or \"5\", "
                       f"got {type(raw).__name__} {raw!r}; unquoted, YAML reads 1:0 as the "
                       "base-60 number 60: quote every bit range")
            return None
        match = _BITS.match(raw)
        if match is None:
            self.error(self.line_of(node, key), "bad-bits",
                       f"{what} {key!r} must be \"hi:lo\" or \"n\", got {raw!r}")
            return None
        hi = int(match.group(1))
        lo = int(match.group(2)) if match.group(2) is not None else hi
        if hi < lo or hi > 63:
            self.error(self.line_of(node, key), "bad-bits",
                       f"{what} {key!r} = {raw!r} needs 63 >= hi >= lo >= 0")
            return None
        return hi, lo

    def text(self, node: YMap, key: str, what: str, default: str = "") -> str:
        """Free text (doc, source): printable characters and white space only."""
        value = self.get(node, key, str, what, default)
        if not isinstance(value, str):
            return default
        for index, char in enumerate(value):
            if not (char.isprintable() or char in "\t\n\r"
                    or unicodedata.category(char) in _TEXT_SPACE):
                self.error(self.line_of(node, key), "bad-text",
                           f"{what} {key!r} holds the control or invisible character "
                           f"U+{ord(char):04X} at character {index}; only printable text, "
                           "spaces, tabs and newlines are allowed")
                return default
        return value

    def items(self, node: YMap, key: str, what: str) -> list[tuple[YMap, int]]:
        seq = node.get(key)
        if seq is None:
            return []
        if not isinstance(seq, YList):
            self.error(self.line_of(node, key), "bad-type", f"{what} {key!r} must be a list")
            return []
        out = []
        for item, line in zip(seq, seq.item_lines, strict=True):
            if isinstance(item, YMap):
                out.append((item, line))
            else:
                self.error(line, "bad-type", f"each item of {what} {key!r} must be a mapping")
        return out


def load_spec(spec_dir: Path) -> Spec:
    """Load and validate every `*.yaml` in spec_dir (sorted), or raise SpecError."""
    diags: list[Diagnostic] = []
    blocks: list[Block] = []
    for name in _spec_file_names(spec_dir, diags):
        if not SPEC_FILE_NAME.fullmatch(name):
            diags.append(Diagnostic(name, 0, "bad-file-name",
                                    f"spec file name {name!r} must be 1 to 64 of a-z 0-9 _ . - "
                                    "(not starting with . or -) then .yaml: it is written into "
                                    "the header of every generated file"))
        block = _load_file(spec_dir / name, name, diags)
        if block is not None:
            blocks.append(block)
    _cross_checks(blocks, diags)
    if diags:
        raise SpecError(diags)
    return Spec(tuple(blocks))


def _spec_file_names(spec_dir: Path, diags: list[Diagnostic]) -> list[str]:
    """The `*.yaml` names in spec_dir, sorted; a folder that is missing, unreadable or holds no
    spec is one `no-spec` diagnostic about the folder itself."""
    try:
        names = sorted(n for n in os.listdir(spec_dir) if n.endswith(".yaml"))
    except FileNotFoundError:
        problem = "the spec folder does not exist"
    except NotADirectoryError:
        problem = "this is a file; --spec names a folder of *.yaml spec files"
    except OSError as exc:
        problem = f"the spec folder cannot be listed: {exc.strerror or exc}"
    else:
        if names:
            return names
        problem = "the spec folder holds no *.yaml spec file"
    diags.append(Diagnostic("", 0, "no-spec", problem))
    return []


def _load_file(path: Path, label: str, diags: list[Diagnostic]) -> Block | None:
    chk = _Checker(label, diags)
    try:
        if not path.is_file():  # a folder, FIFO or device: reading could fail or never end
            chk.error(0, "yaml-syntax", "not a regular file")
            return None
        data = read_yaml_file(path)
        text = data.decode("utf-8")
        root = load_yaml(text)
    except OSError as exc:
        chk.error(0, "yaml-syntax", f"cannot read: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError as exc:
        chk.error(data.count(b"\n", 0, exc.start) + 1, "yaml-syntax",
                  f"not UTF-8 text: byte {data[exc.start]:#04x} cannot be decoded; save the "
                  "file as UTF-8")
        return None
    except YamlProblem as exc:
        chk.error(exc.line, exc.rule, exc.message)
        return None
    if not isinstance(root, YMap):
        chk.error(1, "yaml-syntax", "top level must be a mapping with keys format, block, ...")
        return None
    fmt = root.get("format")
    if fmt != FORMAT_VERSION or isinstance(fmt, bool):
        chk.error(chk.line_of(root, "format"), "format-version",
                  f"format must be {FORMAT_VERSION}, got {fmt!r}")
        return None
    chk.keys(root, _FILE_KEYS, ("block", "doc", "source"), "spec file")
    name = chk.ident(root, "block", _LOWER, "spec file") or "invalid"
    block_line = chk.line_of(root, "block")
    enums = tuple(e for e in (_enum(chk, n, name) for n, _ in chk.items(root, "enums", "file"))
                  if e is not None)
    regs = tuple(r for r in (_register(chk, n, name) for n, _ in
                             chk.items(root, "registers", "file")) if r is not None)
    consts = tuple(c for c in (_constant(chk, n) for n, _ in chk.items(root, "constants", "file"))
                   if c is not None)
    return Block(name=name, doc=chk.text(root, "doc", "spec file"),
                 source=chk.text(root, "source", "spec file"), file=label, line=block_line,
                 sha256=hashlib.sha256(data).hexdigest(), registers=regs, enums=enums,
                 constants=consts)


def _enum(chk: _Checker, node: YMap, block: str) -> Enum | None:
    if not chk.keys(node, _ENUM_KEYS, ("name", "width", "values"), "enum"):
        return None
    name = chk.ident(node, "name", _CAMEL, "enum")
    width = chk.get(node, "width", int, "enum")
    if width is not None and not 1 <= width <= 32:
        chk.error(chk.line_of(node, "width"), "bad-type", f"enum width must be 1..32, got {width}")
        width = None
    c_prefix = chk.ident(node, "c_prefix", _C_PREFIX, "enum") if "c_prefix" in node else None
    values: list[EnumValue] = []
    seen_names: dict[str, int] = {}
    seen_values: dict[int, str] = {}
    for item, line in chk.items(node, "values", f"enum {name}"):
        chk.keys(item, _VALUE_KEYS, ("name", "value"), f"value of enum {name}")
        vname = chk.ident(item, "name", _UPPER, f"value of enum {name}")
        value = chk.get(item, "value", int, f"value of enum {name}")
        if vname is None or value is None:
            continue
        if vname in seen_names:
            chk.error(line, "duplicate-name",
                      f"enum {name} value name {vname} already used at line {seen_names[vname]}")
            continue
        seen_names[vname] = line
        if value < 0 or (width is not None and value >= 1 << width):
            chk.error(chk.line_of(item, "value"), "enum-value-too-wide",
                      f"enum {name} value {vname} = {value} does not fit in {width} bits")
            continue
        if value in seen_values:
            chk.error(chk.line_of(item, "value"), "duplicate-enum-value",
                      f"enum {name} value {vname} = {value} duplicates {seen_values[value]}")
            continue
        seen_values[value] = vname
        values.append(EnumValue(vname, value,
                                chk.text(item, "doc", f"value {vname} of enum {name}"), line))
    if name is None or width is None:
        return None
    return Enum(name, width, c_prefix, chk.text(node, "doc", f"enum {name}"),
                chk.text(node, "source", f"enum {name}"), tuple(values), block, node.line)


def _register(chk: _Checker, node: YMap, block: str) -> Register | None:
    if not chk.keys(node, _REG_KEYS, ("name", "kind", "width", "doc", "source", "fields"),
                    "register"):
        return None
    name = chk.ident(node, "name", _UPPER, "register")
    what = f"register {name}"
    kind = chk.choice(node, "kind", _KINDS, what)
    width = chk.choice(node, "width", _WIDTHS, what)
    address = leaf = subleaf = output = None
    wanted = {"msr": ("address",), "cpuid": ("leaf", "subleaf", "output"), "memory": ()}
    for key in ("address", "leaf", "subleaf", "output"):
        if kind is not None and key in node and key not in wanted[kind]:
            chk.error(node.key_lines[key], "unknown-key", f"{what}: {key!r} is not used by {kind}")
        elif kind is not None and key not in node and key in wanted[kind]:
            chk.error(node.line, "missing-key", f"{what} of kind {kind} needs key {key!r}")
    if kind == "msr":
        address = _u32(chk, node, "address", what)
    elif kind == "cpuid":
        leaf = _u32(chk, node, "leaf", what)
        subleaf = _u32(chk, node, "subleaf", what)
        output = chk.choice(node, "output", _OUTPUTS, what)
        if width is not None and width != 32:
            chk.error(chk.line_of(node, "width"), "bad-type", f"{what}: cpuid outputs are 32 bits")
    reset = chk.get(node, "reset", int, what, 0)
    if width is not None and reset is not None and not 0 <= reset < 1 << width:
        chk.error(chk.line_of(node, "reset"), "reset-too-wide",
                  f"{what} reset {reset:#x} does not fit in {width} bits")
    policy = chk.choice(node, "reserved_policy", _POLICIES, what, "preserve")
    c_name = chk.ident(node, "c_name", _UPPER, what) if "c_name" in node else None
    c_prefix = (chk.ident(node, "c_prefix", _UPPER, what) if "c_prefix" in node else name)
    # Every bit is owned once: (mask, label, line) per field part and reserved range.
    owners: list[tuple[int, str, int]] = []
    reserved: list[tuple[int, int]] = []
    rsv = node.get("reserved_bits", YList())
    if not isinstance(rsv, YList):
        chk.error(chk.line_of(node, "reserved_bits"), "bad-type",
                  f"{what} 'reserved_bits' must be a list of \"hi:lo\" strings")
    else:
        for item, line in zip(rsv, getattr(rsv, "item_lines", []), strict=True):
            holder = YMap({"bits": item})
            holder.line, holder.key_lines = line, {"bits": line}
            rng = chk.bits(holder, "bits", f"{what} reserved range")
            if rng is not None:
                reserved.append(rng)
                owners.append((bit_mask(*rng), f"reserved {item}", line))
    fields: list[Field] = []
    seen: dict[str, int] = {}
    complete = True  # a field that failed to parse owns unknown bits: no coverage verdict
    for item, line in chk.items(node, "fields", what):
        fld = _field(chk, item, line, name or "?", c_prefix or "?")
        if fld is None:
            complete = False
            continue
        for part in fld.parts:
            owners.append((part.reg_mask, f"field {fld.name}", line))
        if fld.name in seen:
            chk.error(line, "duplicate-name",
                      f"{what} field {fld.name!r} already defined at line {seen[fld.name]}")
            continue
        seen[fld.name] = line
        fields.append(fld)
    if width is not None:
        _check_coverage(chk, what, width, owners, node.line, complete)
    if name is None or kind is None or width is None or c_prefix is None:
        return None
    return Register(name=name, kind=kind, address=address, leaf=leaf, subleaf=subleaf,
                    output=output, width=width, reset=reset or 0, reserved_policy=policy,
                    reserved_ranges=tuple(sorted(reserved, reverse=True)), c_name=c_name,
                    c_prefix=c_prefix, doc=chk.text(node, "doc", what),
                    source=chk.text(node, "source", what), fields=tuple(fields), block=block,
                    line=node.line)


def _u32(chk: _Checker, node: YMap, key: str, what: str) -> int | None:
    """An MSR number, CPUID leaf or subleaf: an int in 0..0xFFFFFFFF (ECX/EAX are 32 bits)."""
    value: int | None = chk.get(node, key, int, what)
    if value is not None and not 0 <= value <= 0xFFFFFFFF:
        chk.error(chk.line_of(node, key), "bad-type",
                  f"{what} {key!r} = {value:#x} is outside 0..0xffffffff")
        return None
    return value


def _check_coverage(chk: _Checker, what: str, width: int,
                    owners: list[tuple[int, str, int]], line: int, complete: bool) -> None:
    full = (1 << width) - 1
    taken = 0
    taken_by: list[tuple[int, str]] = []
    for mask, label, at in owners:
        if mask & ~full:
            chk.error(at, "field-beyond-width",
                      f"{what}: {label} reaches past bit {width - 1} of the {width}-bit register")
            mask &= full
        clash = mask & taken
        if clash:
            other = next(lbl for m, lbl in taken_by if m & clash)
            chk.error(at, "field-overlap",
                      f"{what}: {label} overlaps {other} at bits {_mask_text(clash)}")
        taken |= mask
        taken_by.append((mask, label))
    missing = full & ~taken
    if missing and complete:
        chk.error(line, "unaccounted-bits",
                  f"{what}: bits {_mask_text(missing)} are in no field and not in reserved_bits")


def _mask_text(mask: int) -> str:
    """Render a mask as descending bit ranges, e.g. '31:27,3'."""
    ranges: list[str] = []
    bit = mask.bit_length() - 1
    while bit >= 0:
        if mask >> bit & 1:
            hi = bit
            while bit >= 0 and mask >> bit & 1:
                bit -= 1
            lo = bit + 1
            ranges.append(str(hi) if hi == lo else f"{hi}:{lo}")
        else:
            bit -= 1
    return ",".join(ranges)


def _field(chk: _Checker, node: YMap, line: int, reg: str, c_prefix: str) -> Field | None:
    what = f"field of {reg}"
    if not chk.keys(node, _FIELD_KEYS, ("name", "access", "doc"), what):
        return None
    name = chk.ident(node, "name", _LOWER, what)
    what = f"field {reg}.{name}"
    access = chk.choice(node, "access", _ACCESS, what)
    enum = chk.ident(node, "enum", _CAMEL, what) if "enum" in node else None
    c_name = (chk.ident(node, "c_name", _UPPER, what) if "c_name" in node
              else f"{c_prefix}_{name.upper()}" if name else None)
    c_mask = chk.ident(node, "c_mask", _UPPER, what) if "c_mask" in node else None
    has_bits, has_parts = "bits" in node, "parts" in node
    parts: list[Part] = []
    zero = 0
    if has_bits == has_parts:
        chk.error(line, "missing-key", f"{what} needs exactly one of 'bits' or 'parts'")
        return None
    if has_bits:
        if "zero_bits" in node:
            chk.error(node.key_lines["zero_bits"], "unknown-key",
                      f"{what}: 'zero_bits' only goes with 'parts'")
        rng = chk.bits(node, "bits", what)
        if rng is None:
            return None
        hi, lo = rng
        parts.append(Part(hi, lo, hi - lo, 0, None, None))
    else:
        parsed = _split_parts(chk, node, what)
        if parsed is None:
            return None
        parts, zero = parsed
    if name is None or access is None or c_name is None:
        return None
    return Field(name=name, parts=tuple(parts), zero_bits=zero, split=has_parts, access=access,
                 enum=enum, doc=chk.text(node, "doc", what), source=chk.text(node, "source", what),
                 c_name=c_name, c_mask=c_mask, line=line)


def _split_parts(chk: _Checker, node: YMap, what: str) -> tuple[list[Part], int] | None:
    parts: list[Part] = []
    covered: list[tuple[int, int, int]] = []  # (value mask, line, index)
    ok = True
    items = chk.items(node, "parts", what)
    if not items:
        chk.error(chk.line_of(node, "parts"), "missing-key", f"{what}: 'parts' is empty")
        return None
    for index, (item, line) in enumerate(items):
        chk.keys(item, _PART_KEYS, ("bits", "value_bits"), f"part of {what}")
        reg = chk.bits(item, "bits", f"part of {what}")
        val = chk.bits(item, "value_bits", f"part of {what}")
        c_mask = chk.ident(item, "c_mask", _UPPER, what) if "c_mask" in item else None
        c_shift = chk.ident(item, "c_shift", _UPPER, what) if "c_shift" in item else None
        if reg is None or val is None:
            ok = False
            continue
        if reg[0] - reg[1] != val[0] - val[1]:
            chk.error(line, "split-part-width",
                      f"{what}: part bits {reg[0]}:{reg[1]} and value_bits {val[0]}:{val[1]} "
                      "differ in width")
            ok = False
            continue
        if c_shift is not None and reg[1] < val[1]:
            chk.error(item.key_lines["c_shift"], "bad-shift",
                      f"{what}: c_shift {c_shift} would be negative ({reg[1]} - {val[1]})")
        parts.append(Part(reg[0], reg[1], val[0], val[1], c_mask, c_shift))
        covered.append((bit_mask(*val), line, index))
    zero = 0
    if "zero_bits" in node:
        zr = chk.bits(node, "zero_bits", what)
        if zr is None:
            return None
        if zr[1] != 0:
            chk.error(node.key_lines["zero_bits"], "split-gap",
                      f"{what}: zero_bits must start at value bit 0, got {zr[0]}:{zr[1]}")
            return None
        zero = zr[0] + 1
        covered.append((bit_mask(zr[0], 0), node.key_lines["zero_bits"], -1))
    if not ok:
        return None
    seen = 0
    for mask, line, _ in covered:
        if mask & seen:
            chk.error(line, "split-overlap",
                      f"{what}: value bits {_mask_text(mask & seen)} are covered twice")
            return None
        seen |= mask
    top = seen.bit_length()
    gap = ((1 << top) - 1) & ~seen
    if gap:
        chk.error(chk.line_of(node, "parts"), "split-gap",
                  f"{what}: value bits {_mask_text(gap)} are covered by no part or zero_bits")
        return None
    return parts, zero


def _constant(chk: _Checker, node: YMap) -> Constant | None:
    if not chk.keys(node, _CONST_KEYS, ("name", "value", "doc"), "constant"):
        return None
    name = chk.ident(node, "name", _UPPER, "constant")
    value = chk.get(node, "value", int, f"constant {name}")
    if value is not None and not C_INT_MIN <= value <= C_INT_MAX:
        chk.error(chk.line_of(node, "value"), "constant-range",
                  f"constant {name} = {value} fits no C integer type: it must be within "
                  f"{C_INT_MIN} (INT64_MIN) .. {C_INT_MAX} (UINT64_MAX)")
        value = None
    c_name = chk.ident(node, "c_name", _UPPER, "constant") if "c_name" in node else name
    if name is None or value is None or c_name is None:
        return None
    derive = chk.text(node, "derive", f"constant {name}") if "derive" in node else ""
    return Constant(name, value, chk.text(node, "doc", f"constant {name}"),
                    chk.text(node, "source", f"constant {name}"), c_name, node.line, derive)


def _cross_checks(blocks: list[Block], diags: list[Diagnostic]) -> None:
    """Rules spanning files: unique names and addresses, enum references and widths."""

    def unique(items: list[tuple[str, str, int]], what: str) -> None:
        first: dict[str, tuple[str, int]] = {}
        for key, file, line in items:
            if key in first:
                ofile, oline = first[key]
                diags.append(Diagnostic(file, line, "duplicate-name" if what != "address"
                                        else "duplicate-address",
                                        f"{what} {key} already defined at {ofile}:{oline}"))
            else:
                first[key] = (file, line)

    unique([(b.name, b.file, b.line) for b in blocks], "block")
    unique([(r.name, b.file, r.line) for b in blocks for r in b.registers], "register")
    unique([(e.name, b.file, e.line) for b in blocks for e in b.enums], "enum")
    unique([(c.name, b.file, c.line) for b in blocks for c in b.constants], "constant")
    addresses: list[tuple[str, str, int]] = []
    for b in blocks:
        for r in b.registers:
            if r.kind == "msr" and r.address is not None:
                addresses.append((f"MSR {r.address:#x}", b.file, r.line))
            elif r.kind == "cpuid" and r.leaf is not None and r.subleaf is not None:
                addresses.append((f"CPUID {r.leaf:#x}.{r.subleaf} {r.output}", b.file,
                                  r.line))
    unique(addresses, "address")
    c_names: list[tuple[str, str, int]] = []
    for b in blocks:
        for r in b.registers:
            for name, line in c_macros(r):
                c_names.append((name, b.file, line))
        for e in b.enums:
            if e.c_prefix:
                c_names.extend((e.c_prefix + v.name, b.file, e.line) for v in e.values)
        for c in b.constants:
            c_names.append((c.c_name, b.file, c.line))
    unique(c_names, "C macro")
    enums = {e.name: e for b in blocks for e in b.enums}

    def check(file: str, line: int, rule: str, msg: str) -> None:
        diags.append(Diagnostic(file, line, rule, msg))

    for b in blocks:
        for r in b.registers:
            for f in r.fields:
                if f.enum is None:
                    continue
                enum = enums.get(f.enum)
                if enum is None:
                    check(b.file, f.line, "unknown-enum",
                          f"field {r.name}.{f.name} names enum {f.enum}, which no spec defines")
                elif enum.width != f.width:
                    check(b.file, f.line, "enum-width-mismatch",
                          f"field {r.name}.{f.name} is {f.width} bits wide but enum {enum.name} "
                          f"is {enum.width}")
    diags.extend(check_names(blocks))
    _check_derived(blocks, diags)


def _check_derived(blocks: list[Block], diags: list[Diagnostic]) -> None:
    """Every `derive:` rule holds: the stated value equals the rule over the other constants."""
    values = {c.name: c.value for b in blocks for c in b.constants}
    for b in blocks:
        for c in b.constants:
            if not c.derive:
                continue
            try:
                expected = evaluate(c.derive, values)
            except DeriveError as exc:
                diags.append(Diagnostic(b.file, c.line, "bad-derive",
                                        f"constant {c.name}: derive {exc}"))
                continue
            if expected != c.value:
                diags.append(Diagnostic(b.file, c.line, "derive-mismatch",
                                        f"constant {c.name} = {c.value} but its rule "
                                        f"{c.derive} gives {expected}"))

