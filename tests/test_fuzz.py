"""Property-based fuzzing of every parser and loader: a result or the documented error, never
another exception.

Each loader gets random text/bytes and structure-aware mutations of valid inputs (one line or
field replaced, truncated, non-UTF-8 bytes, huge/negative numbers, NaN/inf, deep nesting, tags,
anchors). "Documented error" is codegen.SpecError for the spec and runtime.errors.InputError
everywhere else, with a message that is one line (one line per diagnostic for SpecError): the
CLI prints it as the one stderr line of an exit-2 failure. Any other exception fails the test.

Fuzz cases per parser in the suite (max_examples; derandomized, so every run is the same):

    spec YAML (load_spec, then render_all when it loads)   150
    scenario YAML (load_scenario on a file)                200
    --set overrides (load_scenario(None, [...]))           200
    replay CSV (replay, both driver variants)              150
    topology YAML (load_topology, then a replay with it)   150
    perf raw hex (parse_hex_payload + decode_perf_raw)     300
    decode REG VALUE (find_register, parse_int, decode)    300
    lackey traces (load_trace and iter_records)            200

IBS_MPROF_FUZZ_SCALE=N multiplies every count by N and picks fresh random cases each run (a
longer local fuzzing session); the default keeps this module to a few seconds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codegen
from codegen import SpecError, load_spec
from generated.registry import REGISTERS
from runtime.decode import (
    decode_perf_raw,
    decode_value,
    find_register,
    parse_hex_payload,
    parse_int,
)
from runtime.errors import InputError
from runtime.lackey import iter_records, load_trace
from runtime.replay import replay
from runtime.scenario import SCHEMA, load_scenario
from runtime.topology import load_topology
from tests.conftest import EXAMPLE_SCENARIOS, FIXTURES

SCALE = int(os.environ.get("IBS_MPROF_FUZZ_SCALE", "1"))
F = TypeVar("F", bound=Callable[..., Any])


def fuzz(examples: int) -> Callable[[F], F]:
    """Hypothesis settings for one parser: `examples` cases, reproducible, no database."""
    return settings(max_examples=examples * SCALE, deadline=None, database=None,
                    derandomize=SCALE == 1, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def accepted_or_input_error(call: Callable[[], Any]) -> Any:
    """call() returns, or raises InputError with a one-line message; anything else propagates."""
    try:
        return call()
    except InputError as exc:
        text = str(exc)
        assert text and "\n" not in text and "\r" not in text, repr(text)
        return exc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- mutation strategies ---------------------------------------------------------------------

YAML_SCALARS = [
    "-1", "0", "1", "-0x10", "0x" + "f" * 40, str(2**64), str(2**64 - 1), "9" * 5000, "1e400",
    "-1e400", ".nan", ".inf", "-.inf", "1e9", "1_000", "0o17", "0b101", "null", "~", "true",
    "no", "''", '"a\\nb"', '"\\0"', "'63:0'", "'99:0'", "'0:63'", "[1, 2]", "{a: 1}", "[]",
    "{}", "2001-12-14", "!!binary aGk=", "!!python/object:os.system x",
    "!!python/object/apply:os.getcwd []", "!custom 1", "&anchor 1", "*anchor", "x" * 3000,
    "[" * 100 + "]" * 100, "{a: " * 80 + "1" + "}" * 80, "- - - - 1", "\t", "é", "\u2028",
    "| \n  block", "? complex\n: key", "%YAML 1.1", "---", "...", "@reserved", "`tick",
]
JUNK_BYTES = [b"\xff\xfe", b"\x00", b"\xc3", b"\xed\xa0\x80", b"\r", b"\r\n", b"\x1b[31m",
              b"\xef\xbb\xbf", b"\t", b"\\", b'"', b"'", b",", b":", b"#", b"\n" * 3]


def _yaml_value(value: str) -> st.SearchStrategy[str]:
    return st.sampled_from(YAML_SCALARS) | st.just(value) | st.text(max_size=30)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes, values: list[str]) -> bytes:
    """valid with one structure-aware change, or random bytes/text."""
    lines = valid.splitlines(keepends=True) or [b""]
    how = draw(st.sampled_from(["random-bytes", "random-text", "line", "value", "truncate",
                                "junk", "delete", "duplicate", "swap", "nest", "repeat"]))
    index = draw(st.integers(0, len(lines) - 1))
    if how == "random-bytes":
        return draw(st.binary(max_size=300))
    if how == "random-text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if how == "line":
        lines[index] = draw(st.text(max_size=80)).encode("utf-8", "surrogatepass") + b"\n"
    elif how == "value":
        line = lines[index].decode("utf-8")
        for sep in (": ", ",", " "):
            if sep in line.strip():
                head, _, _ = line.rstrip("\n").rpartition(sep)
                lines[index] = (head + sep + draw(st.sampled_from(values))).encode(
                    "utf-8", "surrogatepass") + b"\n"
                break
        else:
            lines[index] = draw(st.sampled_from(values)).encode("utf-8", "surrogatepass") + b"\n"
    elif how == "truncate":
        return valid[:draw(st.integers(0, len(valid)))]
    elif how == "junk":
        at = draw(st.integers(0, len(lines[index])))
        lines[index] = lines[index][:at] + draw(st.sampled_from(JUNK_BYTES)) + lines[index][at:]
    elif how == "delete":
        del lines[index]
    elif how == "duplicate":
        lines.insert(index, lines[index])
    elif how == "swap":
        other = draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
    elif how == "nest":
        depth = draw(st.integers(1, 3000))
        lines[index] = lines[index].rstrip(b"\n") + b" " + b"[" * depth + b"1" + b"]" * depth \
            + b"\n"
    else:
        lines[index] = lines[index] * draw(st.integers(2, 50))
    return b"".join(lines)


# --- spec YAML -------------------------------------------------------------------------------

SPEC_SMALL = FIXTURES / "spec_small"
SPEC_FILES = {p.name: p.read_bytes() for p in sorted(SPEC_SMALL.glob("*.yaml"))}


@st.composite
def spec_case(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SPEC_FILES)))
    return name, draw(mutated(SPEC_FILES[name], YAML_SCALARS))


@fuzz(150)
@given(case=spec_case())
def test_fuzz_spec_yaml(workdir: Path, case: tuple[str, bytes]) -> None:
    """load_spec on a copy of tests/fixtures/spec_small with one file fuzzed: a Spec (which
    must also render) or SpecError, one line per diagnostic. 150 cases."""
    spec_dir = workdir / "spec"
    shutil.rmtree(spec_dir, ignore_errors=True)
    shutil.copytree(SPEC_SMALL, spec_dir)
    name, data = case
    (spec_dir / name).write_bytes(data)
    try:
        spec = load_spec(spec_dir)
    except SpecError as exc:
        assert exc.diagnostics
        for diag in exc.diagnostics:
            assert "\n" not in str(diag) and "\r" not in str(diag), repr(str(diag))
        return
    assert codegen.render_all(spec)


# --- scenario YAML and --set -----------------------------------------------------------------

EXAMPLES = {p.name: p.read_bytes() for p in EXAMPLE_SCENARIOS}


@fuzz(200)
@given(data=st.data())
def test_fuzz_scenario_yaml(workdir: Path, data: st.DataObject) -> None:
    """load_scenario on a mutated examples/*.yaml: a scenario tree or InputError. 200 cases."""
    name = data.draw(st.sampled_from(sorted(EXAMPLES)))
    path = workdir / "scenario.yaml"
    path.write_bytes(data.draw(mutated(EXAMPLES[name], YAML_SCALARS)))
    accepted_or_input_error(lambda: load_scenario(path, []))


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for name, item in schema.items():
        yield prefix + name
        if isinstance(item, dict):
            yield from _schema_paths(item, prefix + name + ".")


KEY_PATHS = sorted(_schema_paths(SCHEMA))


@fuzz(200)
@given(keys=st.lists(st.sampled_from(KEY_PATHS) | st.text(max_size=20), min_size=1,
                     max_size=3),
       values=st.lists(st.sampled_from(YAML_SCALARS) | st.text(max_size=30), min_size=3,
                       max_size=3),
       eq=st.lists(st.sampled_from(["=", "", "==", " = "]), min_size=3, max_size=3))
def test_fuzz_set_overrides(keys: list[str], values: list[str], eq: list[str]) -> None:
    """--set KEY=VALUE overrides on the default scenario: a tree or InputError. 200 cases."""
    overrides = [k + e + v for k, e, v in zip(keys, eq, values, strict=False)]
    accepted_or_input_error(lambda: load_scenario(None, overrides))


# --- replay CSV and topology YAML ------------------------------------------------------------

CSV_HEADER = b"cpu,time,ctl,data2,data3,linaddr,phyaddr\n"
CSV_VALID = CSV_HEADER + (
    b"4,100,0xF0271,0x40,0x60001,0x7f00001000,0x100001018\n"
    b"4,101,0xB0271,0x3,0x60001,0,0x5000\n"
    b"0,102,0xF0271,0x3,0x60001,0x7f00002000,0x2000\n"
    b"1,103,0xF0271,0x40,0x60001,0x1000,0x100005000\n")
CSV_CELLS = ["-1", "0", "0x", "", " ", "1e3", "nan", "inf", str(2**64), str(2**64 - 1),
             "0x" + "f" * 17, "9" * 5000, " 0x10 ", "1_0", "\u0663", '"1"', '"1,2"', "0b101",
             "0xF0271", "0xFFFFFFFFFFFFFFFF", "0x60001", "0x40", "7", "8"]


def _cell() -> st.SearchStrategy[str]:
    """Mostly plausible values (so rows reach the driver), sometimes junk."""
    return (st.integers(0, 2**64 - 1).map(lambda v: hex(v) if v % 2 else str(v))
            | st.integers(0, 9).map(str) | st.sampled_from(CSV_CELLS))


@st.composite
def replay_csv(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(mutated(CSV_VALID, CSV_CELLS))
    rows = draw(st.lists(st.lists(_cell(), min_size=7, max_size=7), min_size=1, max_size=6))
    return CSV_HEADER + b"".join(",".join(r).encode("utf-8", "surrogatepass") + b"\n"
                                 for r in rows)


@fuzz(150)
@given(body=replay_csv(), variant=st.sampled_from(["v7", "fixed"]),
       drain_every=st.integers(1, 3))
def test_fuzz_replay_csv(workdir: Path, body: bytes, variant: str, drain_every: int) -> None:
    """replay() on mutated and random-valued CSVs, both driver variants: a ReplayResult or
    InputError (a #GP the driver takes is the model's kernel log, not an error). 150 cases."""
    path = workdir / "samples.csv"
    path.write_bytes(body)
    accepted_or_input_error(lambda: replay(path, None, drain_every, variant))


TOPOLOGY_VALID = (b"nodes:\n"
                  b"  - {nid: 0, tier: top, memory: dram, pfn_start: 0, pfn_count: 4096}\n"
                  b"  - {nid: 2, tier: lower, memory: cxl, pfn_start: 4096, pfn_count: 4096}\n"
                  b"cpus: [0, 0]\n")


@fuzz(150)
@given(body=mutated(TOPOLOGY_VALID, YAML_SCALARS))
def test_fuzz_topology_yaml(workdir: Path, body: bytes) -> None:
    """load_topology on mutated files; a topology that loads must also drive a replay row.
    150 cases."""
    path = workdir / "topology.yaml"
    path.write_bytes(body)
    topology = accepted_or_input_error(lambda: load_topology(path))
    if isinstance(topology, InputError):
        return
    samples = workdir / "topo-samples.csv"
    samples.write_bytes(CSV_HEADER + b"1,5,0xF0271,0x40,0x60001,0x1000,0x1388000\n")
    accepted_or_input_error(lambda: replay(samples, topology))


# --- decode ----------------------------------------------------------------------------------

@st.composite
def perf_raw_text(draw: st.DrawFn) -> str:
    """Well-formed payloads of every plausible length, sometimes mangled, or random text."""
    kind = draw(st.sampled_from(["payload", "payload", "text", "hexish"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "hexish":
        return draw(st.text(alphabet="0123456789abcdefABCDEFxX: \t\n-g", max_size=200))
    msrs = draw(st.integers(0, 12))
    payload = draw(st.binary(min_size=4 + 8 * msrs, max_size=4 + 8 * msrs))
    if draw(st.booleans()):
        payload = payload[:draw(st.integers(0, len(payload)))]
    text = payload.hex()
    if draw(st.booleans()):
        text = ":".join(text[i:i + 2] for i in range(0, len(text), 2))
    return draw(st.sampled_from(["", "0x", "0X", " "])) + text


@fuzz(300)
@given(text=perf_raw_text())
def test_fuzz_perf_raw(text: str) -> None:
    """parse_hex_payload + decode_perf_raw: (caps, kind, values) or InputError. 300 cases."""
    accepted_or_input_error(lambda: decode_perf_raw(parse_hex_payload(text)))


REGISTER_NAMES = sorted(REGISTERS)


@fuzz(300)
@given(name=st.sampled_from(REGISTER_NAMES).map(str.lower) | st.sampled_from(REGISTER_NAMES)
       | st.text(max_size=20),
       value=st.integers(-2**70, 2**70).map(lambda v: hex(v) if v % 3 == 0 else str(v))
       | st.integers(0, 2**64 - 1).map(hex) | st.sampled_from(CSV_CELLS)
       | st.text(max_size=30))
def test_fuzz_decode_register_value(name: str, value: str) -> None:
    """`decode REG VALUE`: a decoded value or InputError, for any name and value text.
    300 cases."""
    accepted_or_input_error(lambda: decode_value(find_register(name),
                                                 parse_int(value, "VALUE")))


# --- lackey traces ---------------------------------------------------------------------------

LACKEY_VALID = (b"==4242== Lackey, an example Valgrind tool\n==4242== Command: ./prog\n"
                b"I  00401126,4\n L 1ffefffd48,8\nI  0040112a,7\n S 04a5e040,8\n\n"
                b"I  00401131,3\n M 04a5e040,4\n L 1ffefffd50,8\n==4242== \n")
LACKEY_LINES = [
    "I  ffffffffffffffffffff,4", " L ffffffffffffffffffff,8", "I  " + "f" * 5000 + ",1",
    " L 0,0", " X 10,4", "I 10,4", " L 10,-1", " L ,4", " L 10,", " L 0x10,4",
    " S 10,99999999999999", " M " + "0" * 30 + "1,8", " L 10000000000000000,8",
    "==1== " + "y" * 5000, "x" * 4097, "==", "I  10,4 trailing", " l 10,4", "\x00", "I\t10,4",
]


@fuzz(200)
@given(body=mutated(LACKEY_VALID, LACKEY_LINES)
       | st.lists(st.sampled_from(LACKEY_LINES) | st.sampled_from(
           LACKEY_VALID.decode().splitlines()), max_size=12).map(
           lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
       max_records=st.none() | st.integers(0, 5))
def test_fuzz_lackey_trace(workdir: Path, body: bytes, max_records: int | None) -> None:
    """load_trace (a small LLC, sometimes max_records) and iter_records: a Trace / the records,
    or InputError. 200 cases."""
    path = workdir / "trace.out"
    path.write_bytes(body)
    accepted_or_input_error(lambda: load_trace(path, 4096, 64, max_records))
    accepted_or_input_error(lambda: list(iter_records(path)))
