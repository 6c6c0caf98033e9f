"""`ibs-mprof probe`: what this host's CPU says about IBS, decoded with the generated accessors.

Reads CPUID through /dev/cpu/N/cpuid. A host without the device, without IBS or without the
extended leaf gets a plain statement of that, never a traceback. Asking for a CPU the host
does not have (per /sys/devices/system/cpu/present) is bad input: an InputError.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from generated.cpuid import ExtFeaturesEcx, IbsCaps, MaxExtLeaf, VendorEbx, VendorEcx, VendorEdx
from runtime.cpuid import CpuidBackend, HostCpuid, HostCpuidUnavailable
from runtime.decode import fields_json
from runtime.errors import InputError
from runtime.perf.sysfs import parse_list, read_text
from runtime.topology import MAX_CPUS

SYS_CPU = Path("/sys/devices/system/cpu")


def present_cpus(sys_cpu: Path = SYS_CPU) -> list[int]:
    """This host's CPU numbers: sysfs's present list (read as topology --capture reads
    sysfs lists), else, when it is missing or unreadable, 0 .. os.cpu_count() - 1."""
    present = sys_cpu / "present"
    try:
        cpus = parse_list(read_text(present), str(present), MAX_CPUS)
    except InputError:
        cpus = []
    return cpus or list(range(os.cpu_count() or 1))


def check_cpu(cpu: int, sys_cpu: Path = SYS_CPU) -> None:
    """InputError unless the host has CPU number `cpu`."""
    present = present_cpus(sys_cpu)
    if cpu not in present:
        spans = f"{present[0]}..{present[-1]}" if present == list(
            range(present[0], present[-1] + 1)) else ", ".join(map(str, present))
        raise InputError(f"--cpu {cpu}: this host has no CPU {cpu} (its CPUs are {spans})")


def probe(cpu: int = 0, backend: CpuidBackend | None = None) -> dict[str, Any]:
    """What CPU `cpu` says about IBS (through `backend`, default this host's CPUID device)."""
    if backend is None:
        check_cpu(cpu)
    source = backend or HostCpuid(cpu)
    try:
        vendor = b"".join(
            cls.decode(source.cpuid(cls.LEAF, cls.SUBLEAF)[cls.OUTPUT]).chars.to_bytes(4, "little")
            for cls in (VendorEbx, VendorEdx, VendorEcx))
        max_ext = MaxExtLeaf.decode(
            source.cpuid(MaxExtLeaf.LEAF, MaxExtLeaf.SUBLEAF)[MaxExtLeaf.OUTPUT]).max_ext_leaf
        ext = ExtFeaturesEcx.decode(
            source.cpuid(ExtFeaturesEcx.LEAF, ExtFeaturesEcx.SUBLEAF)[ExtFeaturesEcx.OUTPUT])
        caps_raw = None
        if max_ext >= IbsCaps.LEAF:
            caps_raw = source.cpuid(IbsCaps.LEAF, IbsCaps.SUBLEAF)[IbsCaps.OUTPUT]
    except HostCpuidUnavailable as exc:
        return {"cpu": cpu, "available": False, "reason": f"cannot read CPUID: {exc}"}
    report: dict[str, Any] = {
        "cpu": cpu, "available": True, "vendor": vendor.decode("ascii", "replace"),
        "max_extended_leaf": max_ext, "ibs": ext.ibs,
    }
    if caps_raw is None:
        report["caps"] = None
        report["memory_profiler"] = False
        return report
    caps = IbsCaps.decode(caps_raw)
    report["caps"] = {"raw": caps_raw, **fields_json(caps)}
    report["memory_profiler"] = ext.ibs and caps.avail and caps.mem_profiler
    return report


def format_text(report: dict[str, Any]) -> str:
    if not report["available"]:
        return f"cpu {report['cpu']}: {report['reason']}\nIBS support: unknown (CPUID not readable)"
    lines = [f"cpu {report['cpu']}: vendor {report['vendor']}, max extended leaf "
             f"{report['max_extended_leaf']:#x}",
             f"IBS (CPUID {ExtFeaturesEcx.LEAF:#x} {ExtFeaturesEcx.OUTPUT} bit): "
             f"{'supported' if report['ibs'] else 'NOT supported'}"]
    caps = report["caps"]
    if caps is None:
        lines.append(f"IBS capability leaf {IbsCaps.LEAF:#x}: not present (max extended leaf is "
                     "lower)")
    else:
        names = [f.name for f in IbsCaps.FIELDS]
        have = [n for n in names if caps[n]]
        lacking = [n for n in names if not caps[n]]
        lines.append(f"IBS capabilities {IbsCaps.LEAF:#x}.{IbsCaps.OUTPUT} = {caps['raw']:#010x}")
        lines.append("  supported: " + (", ".join(have) or "none"))
        lines.append("  not supported: " + (", ".join(lacking) or "none"))
    lines.append("IBS Memory Profiler: " + ("supported" if report["memory_profiler"]
                                             else "NOT supported on this host"))
    return "\n".join(lines)
