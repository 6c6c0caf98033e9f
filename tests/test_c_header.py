"""The generated C header compiles and defines every seed-patch macro with the seed's value."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

HEADER = ROOT / "generated" / "ibs_mprof_regs.h"
_DEFINE = re.compile(r"^#define ([A-Z0-9_]+) (.*?)\s*(/\*.*)?$")

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


def seed_macros() -> dict[str, str]:
    out = {}
    for line in (FIXTURES / "seed_defines.h").read_text().splitlines():
        match = _DEFINE.match(line)
        if match:
            out[match.group(1)] = match.group(2)
    return out


def compile_c(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "check.c"
    src.write_text(source)
    return subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(HEADER.parent), "-c",
         str(src), "-o", str(tmp_path / "check.o")], capture_output=True, text=True)


def test_header_defines_every_seed_macro_with_the_same_value(tmp_path: Path) -> None:
    macros = seed_macros()
    assert len(macros) >= 40
    lines = ['#include "ibs_mprof_regs.h"', "#define BIT_ULL(n) (1ULL << (n))"]
    for name, expr in macros.items():
        for other in macros:
            expr = re.sub(rf"\b{other}\b", f"SEED_{other}", expr)
        lines.append(f"#define SEED_{name} {expr}")
    for name in macros:
        lines.append(f'_Static_assert(({name}) == (SEED_{name}), "{name} differs from the seed");')
    lines.append('_Static_assert(IBS_CPUID_FEATURES == 0x8000001b, "IBS_CPUID_FEATURES");')
    result = compile_c("\n".join(lines) + "\n", tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_wrong_value_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a deliberately wrong expectation does not compile."""
    source = ('#include "ibs_mprof_regs.h"\n'
              '_Static_assert(IBS_MPROF_CTL_ENABLE == (1ULL << 18), "wrong on purpose");\n')
    assert compile_c(source, tmp_path).returncode != 0


def test_seed_style_ctl_value_from_header_macros(tmp_path: Path) -> None:
    """The driver's CTL assembly with our macros gives 0xB0271 for period 10000."""
    source = ('#include "ibs_mprof_regs.h"\n'
              "#define P IBS_MPROF_SAMPLE_PERIOD\n"
              "_Static_assert((((P >> 4) & IBS_MPROF_CTL_MAXCNT_MASK) | "
              "(P & IBS_MPROF_CTL_MAXCNT_EXT_MASK) | IBS_MPROF_CTL_CNT_CTL | "
              'IBS_MPROF_CTL_ENABLE | IBS_MPROF_CTL_L3MISSONLY) == 0xB0271ULL, "ctl");\n')
    result = compile_c(source, tmp_path)
    assert result.returncode == 0, result.stderr
