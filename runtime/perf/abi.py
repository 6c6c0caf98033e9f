"""The perf.data file format and the perf_event ABI, as numbers and numpy dtypes.

Facts from tools/perf/Documentation/perf.data-file-format.txt and
include/uapi/linux/perf_event.h (described in our words; x86 files are little-endian, so
every dtype here is '<'). Only what the reader uses is listed.
"""

from __future__ import annotations

from typing import Final

import numpy as np

MAGIC: Final = b"PERFILE2"
"""The file's first 8 bytes; byte-swapped ("2ELIFREP") in a big-endian file."""
MAGIC_SWAPPED: Final = MAGIC[::-1]
PIPE_HEADER_SIZE: Final = 16
"""A file written to a pipe has only magic + size; its attrs come as records."""

SECTION = np.dtype([("offset", "<u8"), ("size", "<u8")])
FILE_HEADER = np.dtype([
    ("magic", "S8"), ("size", "<u8"), ("attr_size", "<u8"),
    ("attrs", SECTION), ("data", SECTION), ("event_types", SECTION),
    ("features", "<u8", (4,)),
])
"""perf_file_header: 104 bytes; `features` is a 256-bit set, bit n = feature section n."""

ATTR_MIN_SIZE: Final = 64
"""PERF_ATTR_SIZE_VER0: type, size, config, period, sample_type, read_format, flags, ..."""
ATTR_FIELDS: Final = (
    ("type", 0, 4), ("config", 8, 8), ("sample_type", 24, 8), ("read_format", 32, 8),
    ("flags", 40, 8), ("config1", 56, 8), ("config2", 64, 8), ("branch_sample_type", 72, 8),
)
"""(name, byte offset, width) of the perf_event_attr fields the reader needs; fields past an
older, shorter attr read as 0, as the kernel's ABI promises."""
ATTR_FLAG_SAMPLE_ID_ALL: Final = 1 << 18
"""attr.flags bit: non-sample records end with the sample_id trailer."""

# perf_event_header.type of the records the reader handles
RECORD_MMAP: Final = 1
RECORD_LOST: Final = 2
RECORD_COMM: Final = 3
RECORD_EXIT: Final = 4
RECORD_FORK: Final = 7
RECORD_SAMPLE: Final = 9
RECORD_MMAP2: Final = 10
RECORD_HEADER_ATTR: Final = 64
RECORD_FINISHED_ROUND: Final = 68
RECORD_COMPRESSED: Final = 81
RECORD_COMPRESSED2: Final = 83
COMPRESSED_TYPES: Final = frozenset({RECORD_COMPRESSED, RECORD_COMPRESSED2})
RECORD_HEADER_BYTES: Final = 8
"""perf_event_header: u32 type, u16 misc, u16 size (size includes the header)."""
MISC_CPUMODE_MASK: Final = 0x7
MISC_KERNEL: Final = 1
MISC_MMAP_BUILD_ID: Final = 1 << 14
"""MMAP2 misc bit: the 24 bytes after pgoff hold a build id instead of maj/min/ino."""

# perf_event_attr.sample_type bits, in the order the fields sit in a PERF_RECORD_SAMPLE
SAMPLE_IP: Final = 1 << 0
SAMPLE_TID: Final = 1 << 1
SAMPLE_TIME: Final = 1 << 2
SAMPLE_ADDR: Final = 1 << 3
SAMPLE_READ: Final = 1 << 4
SAMPLE_CALLCHAIN: Final = 1 << 5
SAMPLE_ID: Final = 1 << 6
SAMPLE_CPU: Final = 1 << 7
SAMPLE_PERIOD: Final = 1 << 8
SAMPLE_STREAM_ID: Final = 1 << 9
SAMPLE_RAW: Final = 1 << 10
SAMPLE_IDENTIFIER: Final = 1 << 16
SAMPLE_FIELDS_BEFORE_RAW: Final = (
    ("identifier", SAMPLE_IDENTIFIER), ("ip", SAMPLE_IP), ("tid", SAMPLE_TID),
    ("time", SAMPLE_TIME), ("addr", SAMPLE_ADDR), ("id", SAMPLE_ID),
    ("stream_id", SAMPLE_STREAM_ID), ("cpu", SAMPLE_CPU), ("period", SAMPLE_PERIOD),
)
"""The fixed 8-byte fields that open a sample, in record order (TID is pid + tid u32s, CPU
is cpu + reserved u32s); READ, CALLCHAIN and RAW follow, then fields the reader never needs."""
ID_TRAILER_FIELDS: Final = (
    ("tid", SAMPLE_TID), ("time", SAMPLE_TIME), ("id", SAMPLE_ID),
    ("stream_id", SAMPLE_STREAM_ID), ("cpu", SAMPLE_CPU), ("identifier", SAMPLE_IDENTIFIER),
)
"""struct sample_id, the trailer of non-sample records under sample_id_all, in order."""

# perf_event_attr.read_format bits (the PERF_SAMPLE_READ block's layout)
READ_TOTAL_TIME_ENABLED: Final = 1 << 0
READ_TOTAL_TIME_RUNNING: Final = 1 << 1
READ_ID: Final = 1 << 2
READ_GROUP: Final = 1 << 3
READ_LOST: Final = 1 << 4

# feature sections (HEADER_* bit numbers in perf_file_header.features)
FEAT_HOSTNAME: Final = 3
FEAT_OSRELEASE: Final = 4
FEAT_ARCH: Final = 6
FEAT_NRCPUS: Final = 7
FEAT_CPUDESC: Final = 8
FEAT_CPUID: Final = 9
FEAT_EVENT_DESC: Final = 12
FEAT_NUMA_TOPOLOGY: Final = 14
FEAT_PMU_MAPPINGS: Final = 16
FEAT_MEM_TOPOLOGY: Final = 22
FEAT_COMPRESSED: Final = 27
FEATURE_NAMES: Final = {
    FEAT_HOSTNAME: "HOSTNAME", FEAT_OSRELEASE: "OSRELEASE", FEAT_ARCH: "ARCH",
    FEAT_NRCPUS: "NRCPUS", FEAT_CPUDESC: "CPUDESC", FEAT_CPUID: "CPUID",
    FEAT_EVENT_DESC: "EVENT_DESC", FEAT_NUMA_TOPOLOGY: "NUMA_TOPOLOGY",
    FEAT_PMU_MAPPINGS: "PMU_MAPPINGS", FEAT_MEM_TOPOLOGY: "MEM_TOPOLOGY",
    FEAT_COMPRESSED: "COMPRESSED",
}
STRING_ALIGN: Final = 64
"""perf pads a header string (u32 len, then len bytes) to a multiple of 64 bytes with NULs."""
