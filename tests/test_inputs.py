"""Inputs that are not regular files (FIFOs, devices, directories) are refused, never waited on.

Every input a user names goes through safeio.inputs: scenario and topology files and spec
files (through read_yaml_file), lackey traces and replay CSVs. A FIFO without a writer would
block open() for ever, so the FIFO cases run the real command line in a subprocess: a hang
there fails the test through the subprocess timeout instead of hanging the suite.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codegen import SpecError, load_spec
from runtime.errors import InputError
from runtime.lackey import iter_records, load_trace
from runtime.replay import replay
from runtime.scenario import load_scenario
from runtime.topology import load_topology
from safeio.inputs import NotRegularFile, input_size, kind_of, open_input
from tests.conftest import run_cli

DEVICE = Path("/dev/null")


def fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def test_open_input_reads_a_regular_file_and_refuses_the_rest(tmp_path: Path) -> None:
    regular = tmp_path / "f"
    regular.write_bytes(b"abc")
    with open_input(regular) as handle:
        assert handle.read() == b"abc"
    assert input_size(regular) == 3
    for path, kind in ((tmp_path, "is a directory"), (DEVICE, "is a character device"),
                       (fifo(tmp_path, "p"), "is a FIFO (named pipe)")):
        with pytest.raises(NotRegularFile) as info:
            open_input(path)
        assert info.value.strerror == f"{kind}, not a regular file"
        with pytest.raises(NotRegularFile):
            input_size(path)
    link = tmp_path / "link"
    link.symlink_to(regular)  # a symlink to a regular file is that file
    with open_input(link) as handle:
        assert handle.read() == b"abc"
    with pytest.raises(FileNotFoundError):
        open_input(tmp_path / "missing")
    assert kind_of(os.stat(regular).st_mode) is None


@pytest.mark.parametrize("path", [DEVICE, Path("/dev/zero")], ids=["null", "zero"])
def test_every_loader_refuses_a_device(tmp_path: Path, path: Path) -> None:
    with pytest.raises(InputError, match=f"^{path}:1: is a character device, not a regular "
                       "file; only regular files are read$"):
        load_scenario(path, [])
    with pytest.raises(InputError, match="is a character device, not a regular file"):
        load_topology(path)
    with pytest.raises(InputError, match=f"^{path}: cannot read lackey trace: is a character "
                       "device, not a regular file$"):
        load_trace(path, 1 << 20, 64)
    with pytest.raises(InputError, match="is a character device"):
        list(iter_records(path))
    with pytest.raises(InputError, match=f"^{path}: cannot read replay CSV: is a character "
                       "device, not a regular file$"):
        replay(path)


def test_a_directory_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory, not a regular file"):
        load_scenario(tmp_path, [])
    with pytest.raises(InputError, match="cannot read replay CSV: is a directory"):
        replay(tmp_path)


def test_a_spec_file_that_is_a_device_is_a_spec_error(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "dev.yaml").symlink_to(DEVICE)
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    (only,) = [str(d) for d in info.value.diagnostics]  # codegen may check before reading
    assert only.startswith("dev.yaml:") and "not a regular file" in only


def test_cli_refuses_fifos_as_every_kind_of_input(tmp_path: Path) -> None:
    """No writer ever opens these FIFOs: opening one for reading the usual way would block."""
    good_csv = tmp_path / "ok.csv"
    good_csv.write_text("cpu,time,ctl,data2,data3,linaddr,phyaddr\n")
    trace_scenario = tmp_path / "lackey.yaml"
    trace_scenario.write_text("workload:\n  kind: lackey\n  trace: trace.fifo\n")
    fifo(tmp_path, "trace.fifo")
    out = str(tmp_path / "out")
    cases = [
        (["run", str(fifo(tmp_path, "s.yaml")), "--out", out], "s.yaml:1: is a FIFO"),
        (["run", str(trace_scenario), "--out", out],
         "trace.fifo: cannot read lackey trace: is a FIFO (named pipe), not a regular file"),
        (["replay", str(fifo(tmp_path, "rows.csv"))],
         "rows.csv: cannot read replay CSV: is a FIFO"),
        (["replay", str(good_csv), "--topology", str(fifo(tmp_path, "t.yaml"))],
         "t.yaml:1: cannot read topology: is a FIFO"),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda case: run_cli(*case[0], timeout=60), cases))
    for (args, needle), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, lines)
    assert not (tmp_path / "out").exists()
