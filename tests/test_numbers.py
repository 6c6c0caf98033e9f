"""Numbers typed by users: ASCII digits only, a bounded length, and errors that say the rule.

Python's int() and float() read other scripts' digits ('١٢' is 12 to them) and refuse
integer strings past 4300 digits with a ValueError naming a sys setting; neither is what a
user of a register decoder or a scenario file expects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen import SpecError, load_spec
from runtime.decode import MAX_INT_DIGITS, parse_int, shown
from runtime.errors import InputError
from runtime.replay import replay
from safeio.yamlsafe import YamlProblem, load_yaml
from tests.conftest import run_cli

NON_ASCII_DIGITS = ["\u0661\u0662",  # Arabic-Indic 12
                    "\uff11\uff12",  # fullwidth 12
                    "\u096a",  # Devanagari 4
                    "0x\uff11"]


@pytest.mark.parametrize("text,value", [("12", 12), ("0x1F", 31), ("0X1f", 31), (" 7 ", 7),
                                        ("1_000", 1000), ("-3", -3), ("+0x10", 16),
                                        ("0" * 100 + "5", 5)])
def test_parse_int_reads_decimal_and_hex(text: str, value: int) -> None:
    assert parse_int(text, "VALUE") == value


@pytest.mark.parametrize("text", [*NON_ASCII_DIGITS, "", "0x", "-", "1.5", "0x-1", "ten"])
def test_parse_int_refuses_what_is_not_an_ascii_integer(text: str) -> None:
    with pytest.raises(InputError, match="^VALUE: expected a decimal or 0x-hex integer "
                       r"\(ASCII digits\), got "):
        parse_int(text, "VALUE")


def test_parse_int_bounds_the_digits_and_says_so() -> None:
    limit = MAX_INT_DIGITS
    assert parse_int("9" * limit, "N") == 10 ** limit - 1
    for text in ("9" * (limit + 1), "9" * 5000, "0x" + "f" * 5000):
        with pytest.raises(InputError) as info:
            parse_int(text, "N")
        digits = len(text) - (2 if text.startswith("0x") else 0)
        assert str(info.value) == f"N: a {digits}-digit number is too large (at most {limit} " \
            "digits)"


def test_shown_cuts_long_text_and_says_how_long() -> None:
    assert shown("abc") == "'abc'"
    assert shown("x" * 1000, 5) == "'xxxxx'... (1000 characters)"


def test_a_replay_cell_in_other_digits_names_the_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("cpu,time,ctl,data2,data3,linaddr,phyaddr\n0,\u0661,0,0,0,0,0\n",
                    encoding="utf-8")
    with pytest.raises(InputError, match=r"rows\.csv:2: time: expected a decimal or 0x-hex "
                       r"integer \(ASCII digits\), got '\u0661'"):
        replay(path)


def test_decode_cli_refuses_other_digits_and_huge_values() -> None:
    for value, needle in (("\u0661\u0662", "VALUE: expected a decimal or 0x-hex integer"),
                          ("9" * 5000, "VALUE: a 5000-digit number is too large")):
        result = run_cli("decode", "IBS_MPROF_CTL", value)
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and result.stdout == ""
        assert len(lines) == 1 and lines[0].startswith(f"ibs-mprof: error: {needle}")
        assert len(lines[0]) < 200


def test_yaml_numbers_too_long_to_read_say_where_they_are() -> None:
    with pytest.raises(YamlProblem) as info:
        load_yaml("a:\n  b: [1, " + "7" * 5000 + "]\n")
    assert (info.value.line, info.value.path) == (2, ("a", "b", 1))
    assert info.value.message == "a 5000-digit number is too long to read (at most 4300 digits)"
    assert load_yaml("x: 0x" + "f" * 5000 + "\n")["x"] == 16 ** 5000 - 1  # hex has no limit


def test_a_spec_with_a_5000_digit_number_is_one_diagnostic(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "big.yaml").write_text("format: 1\nblock: big\ndoc: d\nsource: s\nconstants:\n"
                                   "  - {name: X, value: " + "1" * 5000 + ", doc: d}\n")
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert [str(d) for d in info.value.diagnostics] == [
        "big.yaml:6: yaml-syntax: a 5000-digit number is too long to read (at most 4300 "
        "digits)"]
