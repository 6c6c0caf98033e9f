"""The driver's per-CPU sample ring (mprof_sample_pcpu): IBS_NR_SAMPLES slots, head/tail.

One slot is always left empty to tell full from empty, so IBS_NR_SAMPLES - 1 samples fit. The
size defaults to the spec constant; a caller may pass another (`ibs-mprof explore --ring N`
does).
"""

from __future__ import annotations

from dataclasses import dataclass

from generated.ibs_mprof import IBS_NR_SAMPLES


@dataclass(frozen=True)
class Sample:
    """struct mprof_sample: what the NMI handler saved for the work item."""

    pfn: int
    time: int  # jiffies (ms) when the sample was taken
    nid: int  # accessing CPU's node


class SampleRing:
    def __init__(self, slots: int = IBS_NR_SAMPLES) -> None:
        self.slots: list[Sample | None] = [None] * slots
        self.head = 0
        self.tail = 0

    @property
    def capacity(self) -> int:
        return len(self.slots) - 1

    def __len__(self) -> int:
        return (self.head - self.tail) % len(self.slots)

    def push(self, sample: Sample) -> bool:
        """mprof_push_sample: False (sample lost) when the ring is full."""
        nxt = self.head + 1
        if nxt >= len(self.slots):
            nxt = 0
        if nxt == self.tail:
            return False
        self.slots[self.head] = sample
        self.head = nxt
        return True

    def pop(self) -> Sample | None:
        """mprof_pop_sample: the oldest sample, or None when empty."""
        if self.head == self.tail:
            return None
        sample = self.slots[self.tail]
        self.tail = self.tail + 1 if self.tail + 1 < len(self.slots) else 0
        return sample

    def reset(self) -> None:
        self.head = self.tail = 0
