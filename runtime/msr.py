"""Per-CPU MSR file: the only way the driver and the profiler model exchange state.

Every MSR the spec knows exists with its reset value. RDMSR/WRMSR of an unknown MSR, a value
wider than 64 bits, or a WRMSR setting reserved bits of a must_be_zero register raises MsrFault,
as the CPU would raise #GP. Hardware-side updates (the profiler latching a sample) use `latch`,
which bypasses the WRMSR checks, like the real hardware does.
"""

from __future__ import annotations

from collections.abc import Callable

from generated.registry import MSRS


class MsrFault(Exception):
    """#GP on RDMSR/WRMSR."""


class MsrFile:
    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.values: dict[int, int] = {addr: cls.RESET for addr, cls in MSRS.items()}
        self.write_hooks: list[Callable[[int, int], None]] = []

    def rdmsr(self, addr: int) -> int:
        if addr not in self.values:
            raise MsrFault(f"#GP: RDMSR of unknown MSR {addr:#x} on cpu {self.cpu}")
        return self.values[addr]

    def wrmsr(self, addr: int, value: int) -> None:
        cls = MSRS.get(addr)
        if cls is None:
            raise MsrFault(f"#GP: WRMSR to unknown MSR {addr:#x} on cpu {self.cpu}")
        if not 0 <= value < 1 << 64:
            raise MsrFault(f"#GP: WRMSR {cls.NAME} value {value:#x} is not 64 bits")
        if cls.RESERVED_POLICY == "must_be_zero" and value & cls.RESERVED_MASK:
            raise MsrFault(f"#GP: WRMSR {cls.NAME} <- {value:#x} sets reserved bits "
                           f"{value & cls.RESERVED_MASK:#x} on cpu {self.cpu}")
        self.values[addr] = value
        for hook in self.write_hooks:
            hook(addr, value)

    def latch(self, addr: int, value: int) -> None:
        """Hardware writes its own status registers (no #GP checks, no write hooks)."""
        if addr not in self.values:
            raise MsrFault(f"hardware latch into unknown MSR {addr:#x}")
        self.values[addr] = value
