"""Local APIC extended LVT (EILVT) entries: where the profiler's interrupt is delivered."""

from __future__ import annotations

from dataclasses import dataclass, field

MODE_FIXED = "fixed"
MODE_NMI = "nmi"
EILVT_ENTRIES = 4


@dataclass
class Eilvt:
    mode: str = MODE_FIXED
    masked: bool = True


@dataclass
class Apic:
    entries: list[Eilvt] = field(default_factory=lambda: [Eilvt() for _ in range(EILVT_ENTRIES)])

    def setup_eilvt(self, offset: int, mode: str, masked: bool) -> bool:
        """setup_APIC_eilvt(): False (the driver warns) when the offset does not exist."""
        if not 0 <= offset < len(self.entries):
            return False
        self.entries[offset] = Eilvt(mode, masked)
        return True

    def delivers_nmi(self, offset: int) -> bool:
        return 0 <= offset < len(self.entries) and self.entries[offset].mode == MODE_NMI and \
            not self.entries[offset].masked
