"""`ibs-mprof probe` decodes CPUID with the generated accessors and never fails on a host."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from generated.cpuid import IbsCaps
from runtime.cpuid import HostCpuid, SimulatedCpuid, zen6_caps
from runtime.errors import InputError
from runtime.probe import check_cpu, format_text, present_cpus, probe
from tests.conftest import run_cli


def test_probe_on_this_host_says_something_plain() -> None:
    result = run_cli("probe")
    assert result.returncode == 0, result.stderr
    assert "IBS Memory Profiler:" in result.stdout or "CPUID not readable" in result.stdout


def test_probe_of_a_simulated_zen6_and_of_a_cpu_without_the_profiler() -> None:
    report = probe(0, SimulatedCpuid())
    assert report["memory_profiler"] is True and report["caps"]["mem_profiler"] is True
    text = format_text(probe(0, SimulatedCpuid(zen6_caps().replace(mem_profiler=False))))
    assert "IBS Memory Profiler: NOT supported" in text and "mem_profiler" in text


def test_host_backend_reads_the_cpuid_device_layout(tmp_path: Path) -> None:
    """pread(16) at offset leaf | subleaf << 32; a file stands in for the device (sparse)."""
    dev = tmp_path / "0" / "cpuid"
    dev.parent.mkdir()
    with dev.open("wb") as handle:
        handle.seek(0)
        handle.write(struct.pack("<4I", 0x10, 0x68747541, 0x444D4163, 0x69746E65))
        handle.seek(IbsCaps.LEAF)
        handle.write(struct.pack("<4I", zen6_caps().encode(), 0, 0, 0))
    host = HostCpuid(0, tmp_path)
    assert host.cpuid(0)["ebx"] == 0x68747541
    assert IbsCaps.decode(host.cpuid(IbsCaps.LEAF)["eax"]).mem_profiler
    missing = probe(7, HostCpuid(7, tmp_path))  # a given backend: any CPU number
    assert missing["available"] is False and "cannot read CPUID" in missing["reason"]
    assert "CPUID not readable" in format_text(missing)


def test_cpu_lists_and_the_cpus_a_host_has(tmp_path: Path) -> None:
    (tmp_path / "present").write_text("0-3,8,10-11\n")
    assert present_cpus(tmp_path) == [0, 1, 2, 3, 8, 10, 11]
    (tmp_path / "present").write_text("0-x\n")  # not a list: as if sysfs had none
    assert present_cpus(tmp_path) == list(range(os.cpu_count() or 1))
    (tmp_path / "present").write_text("0,2-3\n")
    check_cpu(2, tmp_path)
    with pytest.raises(InputError, match=r"^--cpu 1: this host has no CPU 1 \(its CPUs are 0, "
                       r"2, 3\)$"):
        check_cpu(1, tmp_path)
    (tmp_path / "present").write_text("0-7\n")
    with pytest.raises(InputError, match=r"no CPU 8 \(its CPUs are 0\.\.7\)$"):
        check_cpu(8, tmp_path)
    assert present_cpus(tmp_path / "missing") == list(range(os.cpu_count() or 1))


def test_probe_of_a_cpu_the_host_does_not_have_is_exit_2() -> None:
    check_cpu(0)
    with pytest.raises(InputError, match="--cpu -1: this host has no CPU -1"):
        check_cpu(-1)
    for cpu in (str(max(present_cpus()) + 1), str(max(present_cpus()) + 1000)):
        result = run_cli("probe", "--cpu", cpu)
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and result.stdout == "" and len(lines) == 1
        assert lines[0].startswith(f"ibs-mprof: error: --cpu {cpu}: this host has no CPU {cpu} "
                                   "(its CPUs are ")
    assert run_cli("probe", "--cpu", str(max(present_cpus()))).returncode == 0
