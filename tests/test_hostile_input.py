"""Hostile input: YAML bombs, object tags, size and depth limits, and one regression test per
defect the fuzzers (tests/test_fuzz.py) found; then the CLI contract for a few of them.

Every loader of user YAML (spec, scenario, --set values, topology) goes through
safeio.yamlsafe: no anchors/aliases, core-schema tags only, nesting at most MAX_YAML_DEPTH,
files read with a MAX_YAML_BYTES bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from codegen import SpecError, load_spec
from runtime.errors import MAX_MESSAGE_CHARS, InputError
from runtime.lackey import iter_records, load_trace
from runtime.replay import MAX_LINE_BYTES, replay
from runtime.scenario import load_scenario
from runtime.topology import MAX_CPUS, load_topology
from safeio.yamlsafe import MAX_YAML_BYTES, MAX_YAML_DEPTH
from tests.conftest import FIXTURES, run_cli

LAUGHS = "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
"""10 anchors, each a list of 9 aliases of the one before: 9**9 strings once expanded."""
MERGE_BOMB = "base: &b {x: 1}\nmachine:\n  <<: *b\n"
DEEP = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
SPEC_HEAD = "format: 1\nblock: bomb\ndoc: d\nsource: s\n"


def refused_quickly(call: Callable[[], Any], error: type[Exception], seconds: float = 1.0) -> str:
    """call() raises `error` within `seconds`; returns the message."""
    start = time.perf_counter()
    with pytest.raises(error) as info:
        call()
    assert time.perf_counter() - start < seconds
    return str(info.value)


def spec_dir_with(tmp_path: Path, text: str | bytes) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir(exist_ok=True)
    path = folder / "bomb.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return folder


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# --- YAML bombs, tags, limits ----------------------------------------------------------------

@pytest.mark.parametrize("bomb", [LAUGHS, MERGE_BOMB], ids=["billion-laughs", "merge-key"])
def test_alias_bombs_are_refused_quickly(tmp_path: Path, bomb: str) -> None:
    message = refused_quickly(lambda: load_spec(spec_dir_with(tmp_path, SPEC_HEAD + bomb)),
                              SpecError)
    assert "yaml-unsafe: anchors and aliases are not allowed" in message
    scenario = write(tmp_path, "s.yaml", bomb)
    message = refused_quickly(lambda: load_scenario(scenario, []), InputError)
    assert "s.yaml:1: anchors and aliases are not allowed" in message
    topology = write(tmp_path, "t.yaml", bomb)
    assert "anchors and aliases" in refused_quickly(lambda: load_topology(topology), InputError)
    flow = "{" + LAUGHS.strip().replace("\n", ", ") + "}"  # the same bomb as a --set value
    assert "anchors and aliases" in refused_quickly(
        lambda: load_scenario(None, ["workload.phases=" + flow]), InputError)


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.mkdir [{out}]",
                                 "!!python/object:os.system x", "!!python/name:os.system",
                                 "!!python/object/new:os.mkdir [{out}]", "!custom 1",
                                 "!!timestamp 2001-12-14"])
def test_object_and_unknown_tags_are_refused(tmp_path: Path, tag: str) -> None:
    out = tmp_path / "pwned"
    value = tag.format(out=repr(str(out)))
    message = refused_quickly(
        lambda: load_spec(spec_dir_with(tmp_path, SPEC_HEAD + f"constants: {value}\n")),
        SpecError)
    assert "yaml-unsafe: tag" in message and "is not allowed" in message
    scenario = write(tmp_path, "s.yaml", f"seed: {value}\n")
    assert "is not allowed" in refused_quickly(lambda: load_scenario(scenario, []), InputError)
    assert "is not allowed" in refused_quickly(lambda: load_scenario(None, [f"seed={value}"]),
                                               InputError)
    topology = write(tmp_path, "t.yaml", f"nodes: {value}\ncpus: [0]\n")
    assert "is not allowed" in refused_quickly(lambda: load_topology(topology), InputError)
    assert not out.exists()


def test_files_over_the_size_limit_are_refused_naming_the_limit(tmp_path: Path) -> None:
    big = "# padding\n" * (MAX_YAML_BYTES // 10) + "seed: 1\n"
    kib = MAX_YAML_BYTES // 1024
    limit = f"larger than the {MAX_YAML_BYTES}-byte ({kib} KiB) limit for YAML files"
    message = refused_quickly(lambda: load_spec(spec_dir_with(tmp_path, big)), SpecError)
    assert f"bomb.yaml:1: yaml-unsafe: file is {limit}" in message
    scenario = write(tmp_path, "s.yaml", big)
    assert f"s.yaml:1: file is {limit}" in refused_quickly(lambda: load_scenario(scenario, []),
                                                          InputError)
    topology = write(tmp_path, "t.yaml", big)
    assert limit in refused_quickly(lambda: load_topology(topology), InputError)
    # Exactly at the limit is still read (and is just a comment-only document).
    write(tmp_path, "s.yaml", "#" * (MAX_YAML_BYTES - 1) + "\n")
    assert load_scenario(scenario, [])["seed"] == 1


def test_huge_or_endless_files_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    """A 1 TiB (sparse) file is refused by its first MAX_YAML_BYTES + 1 bytes; an endless
    device is not even opened (tests/test_inputs.py has every kind of non-regular file)."""
    sparse = tmp_path / "huge.yaml"
    with sparse.open("wb") as handle:
        handle.truncate(1 << 40)
    message = refused_quickly(lambda: load_scenario(sparse, []), InputError)
    assert f"larger than the {MAX_YAML_BYTES}-byte" in message
    message = refused_quickly(lambda: load_scenario(Path("/dev/zero"), []), InputError)
    assert message == "/dev/zero:1: is a character device, not a regular file; only regular " \
        "files are read"


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    """Regression: PyYAML's composer recursed per level, so ~300 levels raised RecursionError
    (a traceback) after seconds; now > MAX_YAML_DEPTH levels is refused at once."""
    message = refused_quickly(lambda: load_spec(spec_dir_with(tmp_path, SPEC_HEAD + DEEP)),
                              SpecError)
    assert f"bomb.yaml:5: yaml-unsafe: nested more than {MAX_YAML_DEPTH} levels deep" in message
    scenario = write(tmp_path, "s.yaml", "workload:\n  phases: " + "{a: " * 5000 + "1"
                     + "}" * 5000 + "\n")
    assert "s.yaml:2: nested more than" in refused_quickly(lambda: load_scenario(scenario, []),
                                                           InputError)
    assert "nested more than" in refused_quickly(
        lambda: load_scenario(None, ["workload.phases=" + "[" * 5000 + "]" * 5000]), InputError)
    topology = write(tmp_path, "t.yaml", DEEP)
    assert "nested more than" in refused_quickly(lambda: load_topology(topology), InputError)
    ok = "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1)
    with pytest.raises(InputError, match="workload.phases must be a list"):  # depth 64: parsed
        load_scenario(None, [f"workload.phases={{a: {ok}}}"])


# --- regressions found by the fuzzers --------------------------------------------------------

def test_control_characters_in_yaml_are_one_line_errors(tmp_path: Path) -> None:
    """Regression: PyYAML's ReaderError message has two lines, so a spec diagnostic and a
    scenario error spanned two lines."""
    with pytest.raises(SpecError) as info:
        load_spec(spec_dir_with(tmp_path, b"format: 1\nblock: \x1f\n"))
    assert [str(d) for d in info.value.diagnostics] == [
        "bomb.yaml:2: yaml-syntax: not valid YAML: unacceptable character #x001f: special "
        'characters are not allowed in "<unicode string>", position 17']
    scenario = write(tmp_path, "s.yaml", b"seed: 1\x00\n")
    with pytest.raises(InputError, match=r"s\.yaml:1: not valid YAML: unacceptable character "
                       r"#x0000: special characters are not allowed in"):
        load_scenario(scenario, [])


def test_a_key_with_a_newline_gives_a_one_line_error(tmp_path: Path) -> None:
    """Regression: `unknown key a<newline>b` printed the key raw, over two stderr lines."""
    scenario = write(tmp_path, "s.yaml", '"a\\nb": 1\n')
    with pytest.raises(InputError) as info:
        load_scenario(scenario, [])
    assert "s.yaml:1: unknown key a\\nb; expected one of" in str(info.value)
    with pytest.raises(InputError, match=r"--set a\\nb: unknown key a\\nb"):
        load_scenario(None, ["a\nb=1"])


def test_input_error_is_always_one_bounded_line() -> None:
    text = str(InputError("x\ny\r\x00\udcff\t" + "z" * 3 * MAX_MESSAGE_CHARS))
    assert text.startswith("x\\ny\\r\\x00\\udcff\tzzz")
    assert "\n" not in text and text.endswith(" characters in all)")
    assert len(text) < MAX_MESSAGE_CHARS + 50


def test_set_with_a_huge_integer_is_an_input_error() -> None:
    """Regression: yaml.safe_load raised ValueError (Python's 4300-digit int limit), not a
    YAMLError, for `--set seed=999...9`: a traceback. Now the message names the key's rule."""
    with pytest.raises(InputError, match=r"--set seed: cannot read value '9{40}'\.\.\. \(5000 "
                       r"characters\): a 5000-digit number is too long to read \(at most 4300 "
                       r"digits\); seed must be an int in 0\.\.9223372036854775807$"):
        load_scenario(None, ["seed=" + "9" * 5000])
    with pytest.raises(InputError, match="seed = 1e400 is outside|seed must be an int"):
        load_scenario(None, ["seed=1e400"])


def test_cpuid_register_with_a_bad_leaf_is_a_spec_error(tmp_path: Path) -> None:
    """Regression: a CPUID register whose leaf was not an int crashed the cross-file address
    check with TypeError (formatting None) instead of reporting bad-type."""
    folder = tmp_path / "spec"
    folder.mkdir()
    for path in (FIXTURES / "spec_small").glob("*.yaml"):
        text = path.read_text().replace("leaf: 0x80000099", "leaf: [1]")
        (folder / path.name).write_text(text.replace("address: 0xC0000002",
                                                     "address: 0x1C0000002"))
    with pytest.raises(SpecError) as info:
        load_spec(folder)
    messages = [str(d) for d in info.value.diagnostics]
    assert any("bad-type: register DEMO_CAPS 'leaf' must be int, got YList [1]" in m
               for m in messages), messages
    assert any("bad-type: register DEMO_DATA 'address' = 0x1c0000002 is outside 0..0xffffffff"
               in m for m in messages), messages


def test_lackey_address_wider_than_64_bits_is_an_input_error(tmp_path: Path) -> None:
    """Regression: load_trace raised OverflowError storing the page number in an array('Q')."""
    path = write(tmp_path, "t.out", "I  10,4\n L ffffffffffffffffffff,8\n")
    with pytest.raises(InputError, match=r"t\.out:2: the address has 20 hex digits: wider than "
                       "64 bits"):
        load_trace(path, 1 << 20, 64)
    with pytest.raises(InputError, match="wider than 64 bits"):
        list(iter_records(path))
    write(tmp_path, "t.out", "I  10,4\n L 0000ffffffffffffffff,8\n")  # leading zeros: fine
    assert load_trace(path, 1 << 20, 64).vaddr(0) == 2**64 - 1


def test_replay_line_without_newline_is_refused_at_the_limit(tmp_path: Path) -> None:
    """Regression (memory): csv read a line of any length whole; now lines are read with a
    limit, so a newline-free file is refused after MAX_LINE_BYTES bytes."""
    path = write(tmp_path, "s.csv", "cpu,time,ctl,data2,data3,linaddr,phyaddr\n"
                 + "0" * (MAX_LINE_BYTES * 4))
    with pytest.raises(InputError, match=rf"s\.csv:2: line longer than {MAX_LINE_BYTES} "
                       "bytes"):
        replay(path)


def test_topology_limits(tmp_path: Path) -> None:
    """Regression (resources): 100k CPUs in a topology file took 2 s and 380 MB of modelled
    CPUs; counts and node ids are now bounded by the kernel's limits."""
    node = "  - {nid: 0, tier: top, memory: dram, pfn_start: 0, pfn_count: 4096}\n"
    path = write(tmp_path, "t.yaml", f"nodes:\n{node}cpus: [{', '.join(['0'] * (MAX_CPUS + 1))}]\n")
    with pytest.raises(InputError, match=f"{MAX_CPUS + 1} cpus; at most {MAX_CPUS}"):
        load_topology(path)
    write(tmp_path, "t.yaml", f"nodes:\n{node.replace('nid: 0', 'nid: 1024')}cpus: [1024]\n")
    with pytest.raises(InputError, match=r"nodes\[0\]: nid 1024 is not below 1024"):
        load_topology(path)


# --- the CLI contract ------------------------------------------------------------------------

def test_cli_hostile_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A few of the above through the real command line (subprocesses, two at a time): exit 2,
    exactly one stderr line, no traceback, nothing on stdout."""
    deep = write(tmp_path, "deep.yaml", DEEP)
    laughs = write(tmp_path, "laughs.yaml", LAUGHS)
    bad_csv = write(tmp_path, "bad.csv", b"cpu,time,ctl,data2,data3,linaddr,phyaddr\n0,1,\xff\n")
    newline_key = write(tmp_path, "key.yaml", '"a\\nb": 1\n')
    cases = [
        (["run", str(deep), "--out", str(tmp_path / "out")], "deep.yaml:1: nested more than"),
        (["run", str(newline_key), "--out", str(tmp_path / "out")], "unknown key a\\nb;"),
        (["run", "--set", "seed=&a [1]", "--out", str(tmp_path / "out")], "anchors and aliases"),
        (["replay", str(bad_csv)],
         "bad.csv:2: not valid CSV: 'utf-8' codec can't decode byte 0xff in position 4"),
        (["replay", str(bad_csv), "--topology", str(laughs)], "anchors and aliases"),
        (["decode", "IBS_MPROF_CTL", "0x" + "f" * 17], "does not fit in 64 bits"),
        (["decode", "--perf-raw", "0x" + "00" * 61], "payload is 61 bytes"),
        (["decode", "IBS\nMPROF", "1"], "unknown register 'IBS\\nMPROF'"),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda case: run_cli(*case[0]), cases))
    for (args, needle), result in zip(cases, results, strict=True):
        lines = result.stderr.splitlines()
        assert result.returncode == 2, (args, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("ibs-mprof: error: "), (args, lines)
        assert needle in lines[0], (args, lines)
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_cli_gen_with_a_hostile_spec_writes_nothing(tmp_path: Path) -> None:
    """gen prints one line per diagnostic (here one) and leaves --out untouched."""
    folder = spec_dir_with(tmp_path, SPEC_HEAD + LAUGHS)
    result = run_cli("gen", "--spec", str(folder), "--out", str(tmp_path / "gen"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{folder / 'bomb.yaml'}:5: yaml-unsafe: anchors and aliases are not allowed"]
    assert not (tmp_path / "gen").exists()
