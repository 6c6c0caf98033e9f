"""The driver's per-CPU sample ring (mprof_sample_pcpu): IBS_NR_SAMPLES slots, head/tail.

One slot is always left empty to tell full from empty, so IBS_NR_SAMPLES - 1 samples fit. The
size defaults to the spec constant; a caller may pass another (`ibs-mprof explore --ring N`
does).
"""

from __future__ import annotations

from dataclasses import dataclass

from generated._base import jitable
from generated.ibs_mprof import IBS_NR_SAMPLES


@jitable
def ring_push_slot(head: int, tail: int, slots: int) -> int:
    """mprof_push_sample's index step: the new head after a push into slot `head`, or -1 when
    the ring is full (the next head would meet the tail: one slot always stays empty)."""
    nxt = head + 1
    if nxt >= slots:
        nxt = 0
    return -1 if nxt == tail else nxt


@jitable
def ring_pop_slot(head: int, tail: int, slots: int) -> int:
    """mprof_pop_sample's index step: the new tail after popping slot `tail`, or -1 when the
    ring is empty."""
    if head == tail:
        return -1
    return tail + 1 if tail + 1 < slots else 0


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
        nxt = ring_push_slot(self.head, self.tail, len(self.slots))
        if nxt < 0:
            return False
        self.slots[self.head] = sample
        self.head = nxt
        return True

    def pop(self) -> Sample | None:
        """mprof_pop_sample: the oldest sample, or None when empty."""
        nxt = ring_pop_slot(self.head, self.tail, len(self.slots))
        if nxt < 0:
            return None
        sample = self.slots[self.tail]
        self.tail = nxt
        return sample

    def reset(self) -> None:
        self.head = self.tail = 0
