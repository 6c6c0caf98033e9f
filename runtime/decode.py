"""Decode raw register values and perf PERF_SAMPLE_RAW IBS payloads with the generated classes."""

from __future__ import annotations

import re
from typing import Any

from generated._base import OpenIntEnum, RegisterValue
from generated.cpuid import IbsCaps
from generated.ibs_fetch import IbsFetchCtl, IbsFetchLinad, IbsFetchPhysad, IcIbsExtdCtl
from generated.registry import REGISTERS
from runtime.errors import InputError

_FETCH_BASE: tuple[type[RegisterValue], ...] = (IbsFetchCtl, IbsFetchLinad, IbsFetchPhysad)


MAX_INT_DIGITS = 40
"""Most significant digits parse_int reads (a 64-bit value has at most 20 decimal ones)."""
_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]+")


def shown(text: str, limit: int = 40) -> str:
    """text quoted for an error message: repr, cut after `limit` characters with the length
    noted, so a 100,000-character key or a 5000-digit value does not fill the line."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def parse_int(text: str, what: str) -> int:
    """Decimal or 0x-hex in ASCII digits (a sign in front, underscores between them), as
    users type it; anything else, or more than MAX_INT_DIGITS significant digits, is an InputError
    naming `what`. Python's int() would also take other scripts' digits (Arabic-Indic,
    fullwidth): those are not numbers here."""
    cleaned = text.strip().replace("_", "")
    sign = -1 if cleaned[:1] == "-" else 1
    cleaned = cleaned[1:] if cleaned[:1] in "+-" else cleaned
    hexa = cleaned[:2].lower() == "0x"
    digits = cleaned[2:] if hexa else cleaned
    if not (_HEX if hexa else _DECIMAL).fullmatch(digits):
        raise InputError(f"{what}: expected a decimal or 0x-hex integer (ASCII digits), got "
                         f"{shown(text)}")
    significant = len(digits.lstrip("0"))
    if significant > MAX_INT_DIGITS:
        raise InputError(f"{what}: a {significant}-digit number is too large (at most "
                         f"{MAX_INT_DIGITS} digits)")
    return sign * int(digits, 16 if hexa else 10)


def find_register(name: str) -> type[RegisterValue]:
    """Look a register up by its spec name, case-insensitively."""
    cls = REGISTERS.get(name.strip().upper())
    if cls is None:
        raise InputError(
            f"unknown register {name!r}; expected one of: {', '.join(sorted(REGISTERS))}"
        )
    return cls


def decode_value(cls: type[RegisterValue], raw: int) -> RegisterValue:
    try:
        value = cls.decode(raw)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return value


def fields_json(value: RegisterValue) -> dict[str, Any]:
    """Field values as JSON: ints and bools, enums as int plus a `<field>_name` entry."""
    out: dict[str, Any] = {}
    for name, field_value in value.field_values().items():
        if isinstance(field_value, OpenIntEnum):
            out[name] = int(field_value)
            out[f"{name}_name"] = field_value.name
        else:
            out[name] = field_value
    reserved = getattr(value, "reserved_bits", None)
    if reserved:
        out["reserved_bits"] = reserved
    return out


def register_json(value: RegisterValue) -> dict[str, Any]:
    return {"register": value.NAME, "raw": value.encode(), "fields": fields_json(value)}


def register_text(value: RegisterValue) -> str:
    """One header line and one line per field, widest field name aligned."""
    raw = value.encode()
    where = f" ({value.LOCATION})"
    digits = value.WIDTH // 4
    lines = [f"{value.NAME} = 0x{raw:0{digits}x}{where}"]
    width = max((len(f.name) for f in value.FIELDS), default=0)
    bits_width = max((len(f.bits) for f in value.FIELDS), default=0) + 2
    for info in value.FIELDS:
        field_value = getattr(value, info.name)
        if isinstance(field_value, OpenIntEnum):
            shown = f"{int(field_value)} ({field_value.name})"
        elif isinstance(field_value, bool):
            shown = str(int(field_value))
        else:
            shown = f"{field_value} (0x{field_value:x})" if field_value > 9 else str(field_value)
        lines.append(f"  {info.name:<{width}}  {'[' + info.bits + ']':<{bits_width}}  {shown}")
    reserved = getattr(value, "reserved_bits", 0)
    if reserved:
        lines.append(f"  {'reserved':<{width}}  set bits 0x{reserved:x}")
    return "\n".join(lines)


def parse_hex_payload(text: str) -> bytes:
    """Hex digits (spaces, colons and an optional 0x allowed) -> bytes; or the hex dump
    lines perf report -D prints (`0000:  ff 07 00 00 ...`), of the payload itself or of
    the whole sample record that ends with it."""
    from runtime.perf.dumptext import dump_bytes, payload_of_record

    dumped = dump_bytes(text.splitlines(), "--perf-raw")
    if dumped is not None:
        return payload_of_record(dumped)
    cleaned = re.sub(r"[\s:]", "", text)
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if not cleaned or len(cleaned) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", cleaned):
        raise InputError(
            "--perf-raw: expected an even number of hex digits (the PERF_SAMPLE_RAW payload)"
        )
    return bytes.fromhex(cleaned)


CAPS_BYTES = 4
MSR_BYTES = 8


def perf_raw_layout(payload: bytes) -> tuple[IbsCaps, str, tuple[type[RegisterValue], ...]]:
    """Tell an op sample from a fetch sample by payload length and caps; return the MSR order
    (the op one is runtime/perf/ibs.py's, imported here so decoding a register loads none
    of the perf reader)."""
    from runtime.perf.ibs import OP_ALWAYS, OP_OPTIONAL

    size = len(payload)
    if size < CAPS_BYTES or (size - CAPS_BYTES) % MSR_BYTES:
        raise InputError(
            f"--perf-raw: payload is {size} bytes; expected 4 (caps) + 8 per MSR value"
        )
    caps = IbsCaps.decode(int.from_bytes(payload[:CAPS_BYTES], "little"))
    count = (size - CAPS_BYTES) // MSR_BYTES
    op_regs = OP_ALWAYS + tuple(cls for cls, cap in OP_OPTIONAL if getattr(caps, cap))
    fetch_regs = _FETCH_BASE + ((IcIbsExtdCtl,) if caps.fetch_ctl_extd else ())
    if count == len(op_regs):
        return caps, "op", op_regs
    if count == len(fetch_regs):
        return caps, "fetch", fetch_regs
    raise InputError(
        f"--perf-raw: {count} MSR values fit neither an op sample ({len(op_regs)} with these "
        f"caps) nor a fetch sample ({len(fetch_regs)})"
    )


def decode_perf_raw(payload: bytes) -> tuple[IbsCaps, str, list[RegisterValue]]:
    caps, kind, order = perf_raw_layout(payload)
    values: list[RegisterValue] = []
    for index, cls in enumerate(order):
        start = CAPS_BYTES + index * MSR_BYTES
        raw = int.from_bytes(payload[start:start + MSR_BYTES], "little")
        values.append(decode_value(cls, raw))
    return caps, kind, values


def perf_raw_json(caps: IbsCaps, kind: str, values: list[RegisterValue]) -> dict[str, Any]:
    return {
        "kind": kind,
        "caps": {"raw": caps.encode(), **fields_json(caps)},
        "registers": {v.NAME: fields_json(v) for v in values},
    }
