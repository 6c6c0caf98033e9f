"""IBS Op PERF_SAMPLE_RAW payloads of a block, as one array of raw words per MSR.

The payload is the kernel's IBS caps word (u32), then the op MSRs in the order the kernel
reads them, the optional ones only when the caps say they exist; spec/ibs_op.yaml and
spec/cpuid.yaml cite the layout. Which MSRs are present and what counts as a sample perf
would show (enable and valid set) are read with the generated vectorised accessors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from generated._base import RegisterValue
from generated.cpuid import IbsCaps
from generated.ibs_op import (
    IbsBrTarget,
    IbsDcLinad,
    IbsDcPhysad,
    IbsOpCtl,
    IbsOpData,
    IbsOpData2,
    IbsOpData3,
    IbsOpData4,
    IbsOpRip,
)
from runtime.decode import CAPS_BYTES, MSR_BYTES
from runtime.perf.samples import u32_at, u64_at

OP_ALWAYS: tuple[type[RegisterValue], ...] = (
    IbsOpCtl, IbsOpRip, IbsOpData, IbsOpData2, IbsOpData3, IbsDcLinad, IbsDcPhysad)
"""The MSRs every op payload holds, in order (IBS_OP_CTL .. IBS_DC_PHYSAD)."""
OP_OPTIONAL: tuple[tuple[type[RegisterValue], str], ...] = (
    (IbsBrTarget, "brn_trgt"), (IbsOpData4, "op_data4"))
"""Then, in this order, each MSR whose caps bit is set."""
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def op_msr_count(caps: U64) -> I64:
    """How many MSR words an op payload with these caps holds."""
    count = np.full(caps.size, len(OP_ALWAYS), dtype=np.int64)
    for _cls, cap in OP_OPTIONAL:
        count += getattr(IbsCaps, f"get_{cap}")(caps)
    return count


@dataclass
class OpWords:
    """Raw MSR words of op samples: `words[NAME]` per register of OP_ALWAYS / OP_OPTIONAL
    (0 where a sample's payload lacks an optional one), the caps word, and which samples
    have a payload of the size their caps announce (`sized`) and enable + valid set
    (`valid`, perf's own test before it decodes a sample)."""

    caps: U64
    words: dict[str, U64]
    sized: npt.NDArray[np.bool_]
    valid: npt.NDArray[np.bool_]


def op_words(buf: npt.NDArray[np.uint8], raw_at: I64, raw_size: I64) -> OpWords:
    """Split the payloads at raw_at (sizes raw_size) of one block into MSR words."""
    n = raw_at.size
    has_caps = raw_size >= CAPS_BYTES
    caps = np.zeros(n, dtype=np.uint64)
    caps[has_caps] = u32_at(buf, raw_at[has_caps]).astype(np.uint64)
    count = op_msr_count(caps)
    sized = has_caps & (raw_size == CAPS_BYTES + MSR_BYTES * count)
    words: dict[str, U64] = {}
    position = np.full(n, CAPS_BYTES, dtype=np.int64)
    for cls in OP_ALWAYS:
        words[cls.NAME] = _word(buf, raw_at, position, sized)
        position += MSR_BYTES
    for cls, cap in OP_OPTIONAL:
        present = sized & getattr(IbsCaps, f"get_{cap}")(caps)
        words[cls.NAME] = _word(buf, raw_at, position, present)
        position += MSR_BYTES * present
    ctl = words[IbsOpCtl.NAME]
    valid = sized & IbsOpCtl.get_enable(ctl) & IbsOpCtl.get_val(ctl)
    return OpWords(caps=caps, words=words, sized=sized, valid=valid)


def _word(buf: npt.NDArray[np.uint8], raw_at: I64, position: I64,
          present: npt.NDArray[np.bool_]) -> U64:
    out = np.zeros(raw_at.size, dtype=np.uint64)
    out[present] = u64_at(buf, raw_at[present] + position[present])
    return out
