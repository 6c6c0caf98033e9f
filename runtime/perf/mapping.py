"""The IBS Op -> Memory Profiler mapping: spec/mappings/ibs_op_to_mprof.yaml, checked and
applied to whole arrays.

The mapping is data next to the register specs, not code: each line names a Memory Profiler
field (or one of the profiler's facts, op.kernel and op.l3_miss), the IBS Op field it comes
from and the hardware fact it relies on. Loading checks every name against the generated
registers, enums and caps bits, every bit range against the field's width and every value
against the width of the field it fills, and that every field the driver reads is given;
a problem is one InputError `file:line: message`. Applying it reads the op words with the
generated vectorised accessors and builds the IBS_MPROF_* words with their encode_array, so
runtime/driver.py's rules read them unchanged. Errata (named in the file) clear what they
make invalid, for the CPU family and models they name.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from generated._base import FieldInfo, OpenIntEnum, RegisterValue
from generated.cpuid import IbsCaps
from generated.registry import ENUMS, REGISTERS
from runtime.errors import InputError
from runtime.perf.ibs import OP_ALWAYS, OP_OPTIONAL
from safeio.yamlsafe import YamlProblem, YList, YMap, load_yaml, read_yaml_file

U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]
SOURCES = {cls.NAME for cls in OP_ALWAYS} | {cls.NAME for cls, _ in OP_OPTIONAL}
TARGET_REGISTERS = ("IBS_MPROF_DATA2", "IBS_MPROF_DATA3", "IBS_MPROF_LINADDR",
                    "IBS_MPROF_PHYADDR")
SIGNALS = ("op.kernel", "op.l3_miss")
RECORD_KERNEL = "record.kernel"
"""What perf itself says about a sample: its cpumode is the kernel's."""
REQUIRED = ("IBS_MPROF_DATA2.data_src", "IBS_MPROF_DATA3.lin_addr_valid",
            "IBS_MPROF_DATA3.phy_addr_valid", "IBS_MPROF_PHYADDR.phy_addr", *SIGNALS)
"""What the profiler's filters and the driver's NMI handler read: the mapping must say."""
_BITS = re.compile(r"(\d{1,2})(?::(\d{1,2}))?")
_TOP_KEYS = {"format", "name", "doc", "source", "errata", "tables", "fields"}
_LINE_KEYS = {"target", "from", "bits", "table", "in", "any", "needs_caps", "unless",
              "otherwise", "fact", "source"}
_VALUE_KEYS = {"from", "bits", "table", "in"}
_ERRATUM_KEYS = {"name", "doc", "source", "vendor", "family", "models", "when_any", "clears"}
_TABLE_KEYS = {"name", "from", "to", "doc", "source", "values"}


def default_path() -> Path:
    """The mapping shipped with the spec (codegen.SPEC_DIR/mappings)."""
    import codegen

    return Path(codegen.SPEC_DIR) / "mappings" / "ibs_op_to_mprof.yaml"


@dataclass(frozen=True)
class Value:
    """One input read: a register field, an earlier target or a record fact, then an
    optional bit slice, table and membership test. `enum` is what its values encode."""

    source: str
    lo: int
    bits: int
    """Width of the slice read at lo (64: the whole value)."""
    width: int
    lut: npt.NDArray[np.uint64] | None
    members: npt.NDArray[np.uint64] | None
    enum: type[OpenIntEnum] | None

    @property
    def out_width(self) -> int:
        if self.members is not None:
            return 1
        return self.width


@dataclass(frozen=True)
class Line:
    target: str
    values: tuple[Value, ...]
    needs_caps: str | None
    unless: str | None
    otherwise: Value | None
    fact: str
    line: int


@dataclass(frozen=True)
class Erratum:
    name: str
    vendor: str
    family: int
    models: tuple[int, int]
    when_any: tuple[str, ...]
    clears: tuple[str, ...]

    def applies(self, cpu: tuple[str, int, int] | None) -> bool:
        """Whether the recording's CPU (vendor, family, model from perf's CPUID) has it."""
        return cpu is not None and cpu[0] == self.vendor and cpu[1] == self.family and \
            self.models[0] <= cpu[2] <= self.models[1]


@dataclass(frozen=True)
class MprofWords:
    """Per sample: the Memory Profiler words the driver reads and the profiler's facts."""

    data2: U64
    data3: U64
    linaddr: U64
    phyaddr: U64
    kernel: Bools
    l3_miss: Bools


class Problem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _field_of(ref: str) -> tuple[type[RegisterValue], FieldInfo] | None:
    register, _, name = ref.partition(".")
    cls = REGISTERS.get(register)
    if cls is None:
        return None
    return next(((cls, f) for f in cls.FIELDS if f.name == name), None)


@dataclass(frozen=True)
class OpMapping:
    path: Path
    lines: tuple[Line, ...]
    errata: tuple[Erratum, ...]

    def facts(self) -> dict[str, str]:
        """target -> the hardware fact its line relies on (for reports and docs)."""
        return {line.target: line.fact for line in self.lines}

    def apply(self, words: dict[str, U64], caps: U64, record_kernel: Bools,
              cpu: tuple[str, int, int] | None) -> MprofWords:
        """Map op samples (raw words per IBS Op register, their caps word, perf's cpumode)
        recorded on `cpu` to Memory Profiler words."""
        words = self._errata(words, cpu)
        done: dict[str, U64] = {}
        for line in self.lines:
            out = np.zeros(caps.size, dtype=np.uint64)
            for value in line.values:
                out |= self._read(value, words, done, record_kernel)
            use_other = np.zeros(caps.size, dtype=bool)
            if line.needs_caps is not None:
                use_other |= ~getattr(IbsCaps, f"get_{line.needs_caps}")(caps)
            if line.unless is not None:
                use_other |= self._read(self._plain(line.unless), words, done,
                                        record_kernel).astype(bool)
            if use_other.any():
                other = (self._read(line.otherwise, words, done, record_kernel)
                         if line.otherwise is not None else np.zeros_like(out))
                out = np.where(use_other, other, out)
            done[line.target] = out
        fields: dict[str, dict[str, U64]] = {name: {} for name in TARGET_REGISTERS}
        for target, values in done.items():
            register, _, name = target.partition(".")
            if register in fields:
                fields[register][name] = values
        built = {name: REGISTERS[name].encode_array(**fields[name])  # type: ignore[attr-defined]
                 for name in TARGET_REGISTERS}
        return MprofWords(data2=built["IBS_MPROF_DATA2"], data3=built["IBS_MPROF_DATA3"],
                          linaddr=built["IBS_MPROF_LINADDR"],
                          phyaddr=built["IBS_MPROF_PHYADDR"],
                          kernel=done["op.kernel"].astype(bool),
                          l3_miss=done["op.l3_miss"].astype(bool))

    @staticmethod
    def _plain(source: str) -> Value:
        return Value(source, 0, 64, 64, None, None, None)

    def _errata(self, words: dict[str, U64], cpu: tuple[str, int, int] | None) -> dict[str, U64]:
        out = dict(words)
        for erratum in self.errata:
            if not erratum.applies(cpu):
                continue
            hit = np.zeros(next(iter(words.values())).size, dtype=bool)
            for ref in erratum.when_any:
                cls, info = _field_of(ref)  # type: ignore[misc]
                hit |= getattr(cls, f"get_{info.name}")(out[cls.NAME]).astype(bool)
            for ref in erratum.clears:
                register, _, name = ref.partition(".")
                cls = REGISTERS[register]
                cleared = getattr(cls, f"set_{name}")(out[register], 0) if name else \
                    np.zeros_like(out[register])
                out[register] = np.where(hit, cleared, out[register])
        return out

    @staticmethod
    def _read(value: Value, words: dict[str, U64], done: dict[str, U64],
              record_kernel: Bools) -> U64:
        if value.source in done:
            raw = done[value.source]
        elif value.source == RECORD_KERNEL:
            raw = record_kernel.astype(np.uint64)
        else:
            cls, info = _field_of(value.source)  # type: ignore[misc]
            raw = np.asarray(getattr(cls, f"get_{info.name}")(words[cls.NAME]), dtype=np.uint64)
        if value.lo or value.bits < 64:
            raw = (raw >> np.uint64(value.lo)) & np.uint64((1 << value.bits) - 1)
        if value.lut is not None:
            raw = value.lut[raw]
        if value.members is not None:
            raw = np.isin(raw, value.members).astype(np.uint64)
        return raw


def load_mapping(path: Path | None = None) -> OpMapping:
    """Read and check the mapping file; InputError `file:line: message` on any problem."""
    path = path or default_path()
    try:
        data = load_yaml(read_yaml_file(path).decode("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the mapping: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the mapping is not UTF-8 text") from None
    except YamlProblem as exc:
        raise InputError(f"{path}:{exc.line}: {exc.message}") from None
    try:
        return _Checker(path).mapping(data)
    except Problem as exc:
        raise InputError(f"{path}:{exc.line}: {exc}") from None


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tables: dict[str, tuple[type[OpenIntEnum], type[OpenIntEnum], U64]] = {}
        self.widths: dict[str, tuple[int, type[OpenIntEnum] | None]] = {
            RECORD_KERNEL: (1, None)}

    @staticmethod
    def keys(item: Any, line: int, allowed: set[str], required: set[str], what: str) -> YMap:
        if not isinstance(item, YMap):
            raise Problem(line, f"{what} must be a mapping")
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise Problem(item.key_lines[unknown[0]],
                          f"{what}: unknown key {unknown[0]!r}; allowed: {sorted(allowed)}")
        missing = sorted(required - set(item))
        if missing:
            raise Problem(item.line, f"{what}: missing key {missing[0]!r}")
        return item

    @staticmethod
    def text(item: YMap, key: str, what: str) -> str:
        value = item[key]
        if not isinstance(value, str) or not value.strip():
            raise Problem(item.key_lines[key], f"{what}: {key} must be a non-empty string")
        return value

    @staticmethod
    def items(item: YMap, key: str, what: str) -> list[tuple[Any, int]]:
        value = item.get(key, YList())
        if not isinstance(value, YList):
            raise Problem(item.key_lines.get(key, item.line), f"{what}: {key} must be a list")
        return list(zip(value, value.item_lines, strict=True))

    def mapping(self, data: Any) -> OpMapping:
        top = self.keys(data, 1, _TOP_KEYS, _TOP_KEYS - {"errata", "tables"}, "mapping")
        if top["format"] != 1:
            raise Problem(top.key_lines["format"], "format must be 1")
        for key in ("name", "doc", "source"):
            self.text(top, key, "mapping")
        errata = tuple(self.erratum(e, ln) for e, ln in self.items(top, "errata", "mapping"))
        for table, line in self.items(top, "tables", "mapping"):
            self.table(table, line)
        lines: list[Line] = []
        for item, line in self.items(top, "fields", "mapping"):
            lines.append(self.line(item, line))
        given = {ln.target for ln in lines}
        missing = [t for t in REQUIRED if t not in given]
        if missing:
            raise Problem(top.key_lines["fields"], f"fields: nothing gives {missing[0]}, which "
                          "the profiler or the driver reads")
        return OpMapping(self.path, tuple(lines), errata)

    def erratum(self, item: Any, line: int) -> Erratum:
        item = self.keys(item, line, _ERRATUM_KEYS, _ERRATUM_KEYS, "erratum")
        for key in ("name", "doc", "source", "vendor"):
            self.text(item, key, "erratum")
        models = item["models"]
        if not (isinstance(models, list) and len(models) == 2 and
                all(isinstance(m, int) and not isinstance(m, bool) for m in models)) or \
                not isinstance(item["family"], int):
            raise Problem(item.key_lines["models"], "erratum: family is a number and models "
                          "a [first, last] pair of numbers")
        when = tuple(self.one_bit(r, ln, "erratum when_any")
                     for r, ln in self.items(item, "when_any", "erratum"))
        clears = []
        for ref, ln in self.items(item, "clears", "erratum"):
            if not (isinstance(ref, str) and (ref in SOURCES or (
                    _field_of(ref) and ref.partition(".")[0] in SOURCES))):
                raise Problem(ln, f"erratum clears {ref!r}: not an IBS Op register or field")
            clears.append(ref)
        return Erratum(item["name"], item["vendor"], item["family"],
                       (models[0], models[1]), when, tuple(clears))

    def one_bit(self, ref: Any, line: int, what: str) -> str:
        found = _field_of(ref) if isinstance(ref, str) else None
        if found is None or ref.partition(".")[0] not in SOURCES or found[1].width != 1:
            raise Problem(line, f"{what}: {ref!r} is not a one-bit IBS Op field")
        return str(ref)

    def table(self, item: Any, line: int) -> None:
        item = self.keys(item, line, _TABLE_KEYS, _TABLE_KEYS, "table")
        for key in ("name", "doc", "source"):
            self.text(item, key, "table")
        src = ENUMS.get(item["from"]) if isinstance(item["from"], str) else None
        dst = ENUMS.get(item["to"]) if isinstance(item["to"], str) else None
        if src is None or dst is None:
            raise Problem(item.line, f"table {item['name']}: from and to must name enums "
                          f"of the spec ({', '.join(sorted(ENUMS))})")
        values = item["values"]
        if not isinstance(values, YMap):
            raise Problem(item.key_lines["values"], "table: values must be a mapping")
        lut = np.zeros(1 << _enum_width(src), dtype=np.uint64)
        for key, target in values.items():
            if key not in src.__members__ or not isinstance(target, str) or \
                    target not in dst.__members__:
                raise Problem(values.key_lines[key], f"table {item['name']}: {key!r}: "
                              f"{target!r} is not a {src.__name__} -> {dst.__name__} pair")
            lut[int(src[key])] = int(dst[target])
        self.tables[item["name"]] = (src, dst, lut)

    def value(self, item: YMap, line: int, what: str) -> Value:
        source = item.get("from")
        where = item.key_lines.get("from", line)
        if not isinstance(source, str):
            raise Problem(where, f"{what}: from must name a field")
        if source in self.widths:
            width, enum = self.widths[source]
        else:
            found = _field_of(source)
            if found is None or source.partition(".")[0] not in SOURCES:
                known = source.partition(".")[0] in TARGET_REGISTERS or source in SIGNALS
                raise Problem(where, f"{what}: {source!r} " + (
                    "is used before a line gives it" if known else
                    "is not a field of an IBS Op register, a record fact or an earlier target"))
            width, enum = found[1].width, found[1].enum
        lo = 0
        if "bits" in item:
            match = _BITS.fullmatch(str(item["bits"]))
            hi = int(match.group(1)) if match else -1
            low = int(match.group(2)) if match and match.group(2) else hi
            if not match or not 0 <= low <= hi < width:
                raise Problem(item.key_lines["bits"], f"{what}: bits {item['bits']!r} is not a "
                              f"quoted \"hi:lo\" inside the {width}-bit {source}")
            lo, width, enum = low, hi - low + 1, None
        bits = width
        lut = None
        if "table" in item:
            table = self.tables.get(item["table"])
            if table is None or _enum_width(table[0]) != width:
                raise Problem(item.key_lines["table"], f"{what}: table {item['table']!r} is "
                              f"not a table of {width}-bit values defined above")
            lut, enum, width = table[2], table[1], _enum_width(table[1])
        members = None
        if "in" in item:
            names = item["in"]
            if enum is None or not isinstance(names, list) or not names or \
                    any(n not in enum.__members__ for n in names):
                raise Problem(item.key_lines["in"], f"{what}: in must list values of the "
                              f"enum {source} encodes" + (f" ({enum.__name__})" if enum else
                                                         ", and it encodes none"))
            members = np.array([int(enum[n]) for n in names], dtype=np.uint64)
        return Value(source, lo, bits, width, lut, members, enum)

    def line(self, item: Any, line: int) -> Line:
        item = self.keys(item, line, _LINE_KEYS, {"target", "fact"}, "field line")
        target = item["target"]
        fact = self.text(item, "fact", f"field line {target}")
        what = f"{target}"
        width = self.target_width(target, item.key_lines["target"])
        if ("any" in item) == ("from" in item):
            raise Problem(line, f"{what}: give exactly one of from and any")
        if "any" in item:
            values = tuple(self.value(self.keys(v, ln, _VALUE_KEYS, {"from"}, what), ln, what)
                           for v, ln in self.items(item, "any", what))
            if any(v.out_width != 1 for v in values):
                raise Problem(item.key_lines["any"], f"{what}: any takes one-bit values only")
        else:
            values = (self.value(item, line, what),)
        caps = item.get("needs_caps")
        if caps is not None and not any(f.name == caps for f in IbsCaps.FIELDS):
            raise Problem(item.key_lines["needs_caps"], f"{what}: needs_caps {caps!r} is not "
                          "an IBS_CAPS field")
        unless = item.get("unless")
        if unless is not None:
            self.one_bit(unless, item.key_lines["unless"], f"{what} unless")
        otherwise = None
        if "otherwise" in item:
            other = self.keys(item["otherwise"], item.key_lines["otherwise"], _VALUE_KEYS,
                              {"from"}, f"{what} otherwise")
            otherwise = self.value(other, item.key_lines["otherwise"], f"{what} otherwise")
            values = (*values, otherwise)
        for value in values:
            if value.out_width > width:
                raise Problem(line, f"{what}: a {value.out_width}-bit value does not fit the "
                              f"{width}-bit target")
        if otherwise is not None:
            values = values[:-1]
        enum = values[0].enum if len(values) == 1 and values[0].members is None else None
        self.widths[target] = (width, enum)
        return Line(target, values, caps, unless, otherwise, fact, line)

    def target_width(self, target: Any, line: int) -> int:
        if not isinstance(target, str):
            raise Problem(line, "target must name a Memory Profiler field or op.kernel / "
                          "op.l3_miss")
        if target in self.widths:
            raise Problem(line, f"{target} is given twice")
        if target in SIGNALS:
            return 1
        found = _field_of(target)
        if found is None or target.partition(".")[0] not in TARGET_REGISTERS:
            raise Problem(line, f"target {target!r} is not a field of "
                          f"{', '.join(TARGET_REGISTERS)} nor one of {', '.join(SIGNALS)}")
        return found[1].width


def _enum_width(enum: type[OpenIntEnum]) -> int:
    """The width the spec declares for an enum (its module's <NAME>_WIDTH constant)."""
    width: int = getattr(sys.modules[enum.__module__], f"{enum.__name__.upper()}_WIDTH")
    return width
