"""CPUID backends: a configurable simulated CPU, and the real host via /dev/cpu/N/cpuid."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from generated.cpuid import ExtFeaturesEcx, IbsCaps, MaxExtLeaf

OUTPUTS = ("eax", "ebx", "ecx", "edx")


class CpuidBackend(Protocol):
    def cpuid(self, leaf: int, subleaf: int = 0) -> dict[str, int]:
        """The four output registers of CPUID(leaf, subleaf)."""
        ...


def zen6_caps() -> IbsCaps:
    """A Zen6-like simulated CPU: every IBS capability the spec names, memory profiler included."""
    return IbsCaps(avail=True, fetch_sam=True, op_sam=True, rd_wr_op_cnt=True, op_cnt=True,
                   brn_trgt=True, op_cnt_ext=True, rip_invalid_chk=True, op_brn_fuse=True,
                   fetch_ctl_extd=True, op_data4=False, zen4=True, op_ld_lat=True, dis=True,
                   fetch_lat=True, bit63_filter=True, strmst_rmtsocket=True, mem_profiler=True,
                   op_dtlb_pg_size=True)


@dataclass
class SimulatedCpuid:
    """CPUID of the simulated CPU; `caps` decides e.g. whether MEM_PROFILER exists."""

    caps: IbsCaps = field(default_factory=zen6_caps)
    ibs: bool = True

    def cpuid(self, leaf: int, subleaf: int = 0) -> dict[str, int]:
        out = dict.fromkeys(OUTPUTS, 0)
        if (leaf, subleaf) == (MaxExtLeaf.LEAF, MaxExtLeaf.SUBLEAF):
            out[MaxExtLeaf.OUTPUT] = MaxExtLeaf(max_ext_leaf=IbsCaps.LEAF).encode()
        elif (leaf, subleaf) == (ExtFeaturesEcx.LEAF, ExtFeaturesEcx.SUBLEAF):
            out[ExtFeaturesEcx.OUTPUT] = ExtFeaturesEcx(ibs=self.ibs).encode()
        elif (leaf, subleaf) == (IbsCaps.LEAF, IbsCaps.SUBLEAF):
            out[IbsCaps.OUTPUT] = self.caps.encode()
        return out


class HostCpuidUnavailable(Exception):
    """This host does not expose /dev/cpu/N/cpuid (no cpuid module, no permission, not x86)."""


@dataclass
class HostCpuid:
    """The real CPU: pread(16 bytes) at offset leaf | subleaf << 32 of /dev/cpu/N/cpuid."""

    cpu: int = 0
    dev_root: Path = Path("/dev/cpu")

    def cpuid(self, leaf: int, subleaf: int = 0) -> dict[str, int]:
        path = self.dev_root / str(self.cpu) / "cpuid"
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise HostCpuidUnavailable(f"{path}: {exc.strerror}") from None
        try:
            data = os.pread(fd, 16, leaf | subleaf << 32)
        except OSError as exc:
            raise HostCpuidUnavailable(f"{path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) != 16:
            raise HostCpuidUnavailable(f"{path}: short read ({len(data)} bytes)")
        return dict(zip(OUTPUTS, struct.unpack("<4I", data), strict=True))
