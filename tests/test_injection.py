"""A hostile spec cannot inject code: names must be identifiers, text is escaped everywhere."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from codegen import SpecError, load_spec
from tests.conftest import regenerate, run_python

EVIL = 'x""" + __import__("os").system("touch PWNED") + """ \\ \' */ #include <evil> | <b>'

EVIL_YAML = json.dumps(EVIL)  # a JSON string is a valid YAML double-quoted scalar

SPEC = f"""format: 1
block: evil
doc: {EVIL_YAML}
source: {EVIL_YAML}
enums:
  - name: Mode
    width: 1
    doc: {EVIL_YAML}
    source: {EVIL_YAML}
    values:
      - {{name: HIGH, value: 1, doc: {EVIL_YAML}}}
registers:
  - name: EVIL_REG
    kind: msr
    address: 0x1234
    width: 8
    doc: {EVIL_YAML}
    source: {EVIL_YAML}
    reserved_bits: ["7:2"]
    fields:
      - {{name: flag, bits: "0", access: rw, doc: {EVIL_YAML}}}
      - {{name: mode, bits: "1", access: rw, enum: Mode, doc: {EVIL_YAML}}}
constants:
  - {{name: EVIL_CONST, value: 1, doc: {EVIL_YAML}}}
"""


def test_hostile_text_is_inert_in_every_target(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "evil.yaml").write_text(SPEC)
    root = regenerate(spec, tmp_path / "pkg")
    module = root / "generated" / "evil.py"
    tree = ast.parse(module.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id == "__import__"]
    assert calls == [], "spec text became code"
    code = ("import generated.evil as m, generated.registry as r\n"
            "print(m.EvilReg.__doc__)\n"
            "print(r.REGISTERS['EVIL_REG'].FIELDS[0].doc)\n")
    result = run_python(code, root)
    assert result.returncode == 0, result.stderr
    assert '__import__("os").system("touch PWNED")' in result.stdout
    assert not (root / "PWNED").exists()
    header = (root / "generated" / "ibs_mprof_regs.h").read_text()
    assert "*/ #include" not in header
    src = tmp_path / "h.c"
    src.write_text('#include "ibs_mprof_regs.h"\nint x = EVIL_CONST;\n')
    gcc = subprocess.run(["gcc", "-c", "-I", str(root / "generated"), str(src), "-o",
                          str(tmp_path / "h.o")], capture_output=True, text=True)
    assert gcc.returncode == 0, gcc.stderr
    markdown = (root / "generated" / "REGISTERS.md").read_text()
    assert "<b>" not in markdown and "\\|" in markdown


@pytest.mark.parametrize("bad_name", [
    'x": 1}; import os; os.system("id") #', "class", "__init__", "flag\nimport os", "_private",
])
def test_names_that_are_not_identifiers_are_refused(tmp_path: Path, bad_name: str) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "evil.yaml").write_text(SPEC.replace("name: flag", f"name: {json.dumps(bad_name)}"))
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert any(d.rule == "bad-identifier" for d in info.value.diagnostics)
