"""The sample ring (150 slots, 149 usable) and the MSR file's #GP behaviour."""

from __future__ import annotations

import pytest

from generated.ibs_mprof import IBS_NR_SAMPLES, IbsMprofCtl, IbsMprofData2
from runtime.msr import MsrFault, MsrFile
from runtime.ring import Sample, SampleRing, ring_pop_slot, ring_push_slot


def test_ring_holds_149_then_drops_and_pops_in_order() -> None:
    ring = SampleRing()
    assert IBS_NR_SAMPLES == 150
    pushed = [ring.push(Sample(pfn, pfn, 0)) for pfn in range(200)]
    assert pushed.count(True) == 149 and pushed[149] is False
    assert [ring.pop().pfn for _ in range(149)] == list(range(149))  # type: ignore[union-attr]
    assert ring.pop() is None
    assert ring.push(Sample(1, 1, 0)) and len(ring) == 1  # wraps around


def test_msr_file_faults_like_wrmsr() -> None:
    msr = MsrFile(0)
    with pytest.raises(MsrFault, match="unknown MSR 0xc0010399"):
        msr.rdmsr(0xC0010399)
    with pytest.raises(MsrFault, match="reserved bits"):
        msr.wrmsr(IbsMprofCtl.ADDRESS, 1 << 40)
    msr.wrmsr(IbsMprofCtl.ADDRESS, 0xB0271)
    assert msr.rdmsr(IbsMprofCtl.ADDRESS) == 0xB0271
    msr.wrmsr(IbsMprofData2.ADDRESS, 1 << 40)  # preserve policy: reserved bits are accepted


def test_the_slot_steps_answer_minus_one_at_full_and_empty() -> None:
    """mprof_push_sample / mprof_pop_sample's index steps as the compiled loop uses them: the
    next slot, wrapping at the end, and exactly -1 (the documented 'no slot') when full or
    empty, so a caller may test either `< 0` or `== -1`."""
    assert ring_push_slot(0, 0, 4) == 1 and ring_push_slot(3, 1, 4) == 0
    assert ring_push_slot(2, 3, 4) == -1 and ring_push_slot(3, 0, 4) == -1
    assert ring_pop_slot(2, 0, 4) == 1 and ring_pop_slot(1, 3, 4) == 0
    assert ring_pop_slot(2, 2, 4) == -1


def test_ring_capacity_is_one_less_than_its_slots_and_pushes_wrap() -> None:
    """mprof_push_sample keeps one slot empty to tell full from empty: 149 of 150. Past the
    last slot the indices wrap to 0 and the ring goes on accepting (a push whose next slot
    is 0 is not 'full'), oldest first."""
    ring = SampleRing()
    assert ring.capacity == IBS_NR_SAMPLES - 1 == len(ring.slots) - 1
    for round_ in range(3):  # each round starts where the last ended: wraps at 150
        for i in range(100):
            assert ring.push(Sample(pfn=1000 * round_ + i, time=i, nid=0))
        assert len(ring) == 100
        assert [ring.pop().pfn for _ in range(100)] == [1000 * round_ + i for i in range(100)]  # type: ignore[union-attr]
        assert ring.pop() is None
