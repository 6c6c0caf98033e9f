"""Real IBS samples in: perf.data and `perf report -D` text read into Memory Profiler samples.

abi (format constants), header (file header, attrs, features), framing (record walk),
samples (sample fields), sideband (MMAP/COMM/FORK and address lookup), reader (blocks),
ibs (op payload words), mapping (spec/mappings/ibs_op_to_mprof.yaml), ingest (the API),
dumptext (perf report -D text), sysfs (topology capture), pages (pages.csv rows), writer
(perf.data files for tests), cli (the `topology` command).
"""
