"""The validated, typed register model. Back ends (templates) only ever read this."""

from __future__ import annotations

from dataclasses import dataclass


def bit_mask(hi: int, lo: int) -> int:
    """Mask of bits hi..lo inclusive."""
    return ((1 << (hi - lo + 1)) - 1) << lo


@dataclass(frozen=True)
class Part:
    """One piece of a field: register bits reg_hi:reg_lo hold value bits val_hi:val_lo."""

    reg_hi: int
    reg_lo: int
    val_hi: int
    val_lo: int
    c_mask: str | None
    c_shift: str | None

    @property
    def width(self) -> int:
        return self.reg_hi - self.reg_lo + 1

    @property
    def reg_mask(self) -> int:
        return bit_mask(self.reg_hi, self.reg_lo)

    @property
    def unit_mask(self) -> int:
        """The part's mask moved down to bit 0."""
        return (1 << self.width) - 1

    @property
    def bits_text(self) -> str:
        return str(self.reg_lo) if self.reg_hi == self.reg_lo else f"{self.reg_hi}:{self.reg_lo}"


@dataclass(frozen=True)
class Field:
    """A named field; contiguous fields have one part mapping onto value bits 0.."""

    name: str
    parts: tuple[Part, ...]
    zero_bits: int  # number of always-zero low value bits (split fields only)
    split: bool
    access: str
    enum: str | None
    doc: str
    source: str
    c_name: str
    c_mask: str | None
    line: int

    @property
    def width(self) -> int:
        """Width of the field's value (including implied zero bits)."""
        return max(p.val_hi for p in self.parts) + 1

    @property
    def reg_mask(self) -> int:
        mask = 0
        for part in self.parts:
            mask |= part.reg_mask
        return mask

    @property
    def clear_mask(self) -> int:
        """64-bit mask that clears this field's register bits."""
        return ((1 << 64) - 1) & ~self.reg_mask

    @property
    def max_value(self) -> int:
        return (1 << self.width) - 1

    @property
    def value_mask(self) -> int:
        """Value bits that can be non-zero (implied zero bits excluded)."""
        mask = 0
        for part in self.parts:
            mask |= bit_mask(part.val_hi, part.val_lo)
        return mask

    @property
    def unencodable_mask(self) -> int:
        """Value bits inside the field's width that must be zero (a split field's implied
        low zero bits)."""
        return self.max_value & ~self.value_mask

    @property
    def is_bool(self) -> bool:
        return self.width == 1 and self.enum is None and not self.split

    @property
    def lo(self) -> int:
        return min(p.reg_lo for p in self.parts)

    @property
    def bits_text(self) -> str:
        return ",".join(p.bits_text for p in sorted(self.parts, key=lambda p: -p.reg_hi))


@dataclass(frozen=True)
class EnumValue:
    name: str
    value: int
    doc: str
    line: int


@dataclass(frozen=True)
class Enum:
    name: str
    width: int
    c_prefix: str | None
    doc: str
    source: str
    values: tuple[EnumValue, ...]
    block: str
    line: int

    @property
    def width_name(self) -> str:
        """The module constant holding the enum's width."""
        return f"{self.name.upper()}_WIDTH"


@dataclass(frozen=True)
class Register:
    name: str
    kind: str  # msr | cpuid | memory
    address: int | None
    leaf: int | None
    subleaf: int | None
    output: str | None
    width: int
    reset: int
    reserved_policy: str  # preserve | must_be_zero
    reserved_ranges: tuple[tuple[int, int], ...]
    c_name: str | None
    c_prefix: str
    doc: str
    source: str
    fields: tuple[Field, ...]
    block: str
    line: int

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.lower().split("_"))

    @property
    def func_prefix(self) -> str:
        """Prefix of the register's module-level scalar functions (lower snake case)."""
        return self.name.lower()

    @property
    def dtype(self) -> str:
        """numpy dtype of the vectorised accessors: an in-memory word keeps its own width
        (u8/u16/u32 arrays, as the kernel stores it), a register value is uint64."""
        return f"np.uint{self.width}" if self.kind == "memory" else "np.uint64"

    @property
    def array_type(self) -> str:
        """The _base alias of an array of this register's dtype."""
        return f"U{self.width}Array" if self.kind == "memory" else "U64Array"

    @property
    def all_mask(self) -> int:
        """Every bit of the register's width."""
        return (1 << self.width) - 1

    @property
    def reserved_mask(self) -> int:
        mask = 0
        for hi, lo in self.reserved_ranges:
            mask |= bit_mask(hi, lo)
        return mask

    @property
    def reserved_reset(self) -> int:
        return self.reset & self.reserved_mask

    @property
    def keeps_reserved(self) -> bool:
        """True when the value class stores reserved bits (policy preserve)."""
        return self.reserved_policy == "preserve" and self.reserved_mask != 0


@dataclass(frozen=True)
class Constant:
    name: str
    value: int
    doc: str
    source: str
    c_name: str
    line: int
    derive: str = ""
    """The rule the value follows from other constants (checked by the front end), or ""."""


@dataclass(frozen=True)
class Block:
    name: str
    doc: str
    source: str
    file: str  # path as given to the generator, relative to the spec dir
    line: int  # line of the `block:` key
    sha256: str
    registers: tuple[Register, ...]
    enums: tuple[Enum, ...]
    constants: tuple[Constant, ...]


@dataclass(frozen=True)
class Spec:
    blocks: tuple[Block, ...]

    @property
    def registers(self) -> tuple[Register, ...]:
        return tuple(r for b in self.blocks for r in b.registers)

    @property
    def enums(self) -> dict[str, Enum]:
        return {e.name: e for b in self.blocks for e in b.enums}

    @property
    def constants(self) -> tuple[Constant, ...]:
        return tuple(c for b in self.blocks for c in b.constants)
