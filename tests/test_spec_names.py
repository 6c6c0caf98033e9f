"""Spec names that validate as identifiers but would break the generated code are refused
(reserved-name, name-collision); codegen/names.py knows every name the templates write, which
the parse of freshly generated modules below holds it to; and names that stay allowed really do
generate a package that imports, works and passes mypy --strict and ruff."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from codegen import SpecError, load_spec
from codegen import names as gen_names
from codegen.model import Spec
from tests.conftest import FIXTURES, SPEC, regenerate, run_python

HEAD = "format: 1\nblock: {block}\ndoc: D.\nsource: tests\n"


def reg(name: str, fields: list[str], address: int = 0x10, width: int = 8,
        reserved: str = "", c_prefix: str = "") -> str:
    """One MSR register of `width` bits; each field named in `fields` takes one bit."""
    lines = [f"  - name: {name}", "    kind: msr", f"    address: {address:#x}",
             f"    width: {width}", "    doc: R.", "    source: tests"]
    if c_prefix:
        lines.append(f"    c_prefix: {c_prefix}")
    if reserved:
        lines.append(f'    reserved_bits: ["{reserved}"]')
    lines.append("    fields:")
    lines += [f'      - {{name: {f}, bits: "{i}", access: rw, doc: F.}}'
              for i, f in enumerate(fields)]
    return "\n".join(lines) + "\n"


def enum(name: str, width: int = 1, values: str = "A") -> str:
    items = "".join(f"      - {{name: {v}, value: {i}}}\n" for i, v in enumerate(values.split()))
    return (f"  - name: {name}\n    width: {width}\n    doc: E.\n    source: tests\n"
            f"    values:\n{items}")


def spec_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir()
    for block, body in files.items():
        (folder / f"{block}.yaml").write_text(HEAD.format(block=block) + body)
    return folder


def refused(folder: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(folder)
    return [str(d) for d in info.value.diagnostics]


EIGHT = "a b c d e f g h".split()
FIELDS_THAT_BREAK = [
    "self", "reserved_bits", "decode", "encode", "replace", "encode_array", "field_values",
    "int", "bool", "str", "tuple", "or_all", "staticmethod", "classmethod",
]
"""Written out, not read from names.py, so that dropping a name there fails a case here."""

# (id, {block: body}, rule, text the one diagnostic must hold)
CASES = [
    ("block-registry", {"registry": "constants:\n  - {name: X, value: 1, doc: X.}\n"},
     "reserved-name", "block registry: registry is the generated name index"),
    *[(f"field-{name}", {"b": "registers:\n" + reg("R", [name, *EIGHT[1:]])}, "reserved-name",
       f"field R.{name}: {name} is") for name in FIELDS_THAT_BREAK],
    ("reg-1-vs-reg1", {"b": "registers:\n" + reg("REG_1", EIGHT) + reg("REG1", EIGHT, 0x11)},
     "name-collision", "class Reg1 of register REG1 clashes with class Reg1 of register REG_1"),
    ("trailing-underscore", {"b": "registers:\n" + reg("REG", EIGHT) + reg("REG_", EIGHT, 0x11)},
     "name-collision", "class Reg of register REG_ clashes with class Reg of register REG"),
    ("enum-vs-register-class", {"b": "enums:\n" + enum("DataSrc") + "registers:\n"
                                + reg("DATA_SRC", EIGHT)},
     "name-collision", "class DataSrc of register DATA_SRC clashes with enum DataSrc"),
    ("enum-vs-register-class-in-two-files",
     {"a": "enums:\n" + enum("DataSrc"), "b": "registers:\n" + reg("DATA_SRC", EIGHT)},
     "name-collision", "clashes with enum DataSrc (a.yaml:6)"),
    ("enum-width-vs-constant", {"b": "enums:\n" + enum("Mode") + "constants:\n"
                                + "  - {name: MODE_WIDTH, value: 1, doc: C.}\n"},
     "name-collision", "constant MODE_WIDTH of enum Mode clashes with constant MODE_WIDTH"),
    ("enum-vs-constant", {"b": "enums:\n" + enum("AB") + "constants:\n"
                          + "  - {name: AB, value: 1, doc: C.}\n"},
     "name-collision", "enum AB clashes with constant AB"),
    ("constant-vs-register-constant", {"b": "registers:\n" + reg("R", EIGHT) + "constants:\n"
                                       + "  - {name: R_WIDTH, value: 8, doc: C.}\n"},
     "name-collision", "constant R_WIDTH of register R"),
    ("field-reserved-vs-reserved-mask", {"b": "registers:\n" + reg("R", ["reserved", *EIGHT[1:]])},
     "name-collision", "constant R_RESERVED_MASK of field R.reserved clashes with constant "
     "R_RESERVED_MASK of register R"),
    ("masks-across-registers", {"b": "registers:\n" + reg("A", ["b_c", *EIGHT[3:], "i", "j"],
                                                     c_prefix="AX")
                                + reg("A_B", ["c", *EIGHT[3:], "i", "j"], 0x11)},
     "name-collision", "constant A_B_C_MASK of field A_B.c clashes with constant A_B_C_MASK of "
     "field A.b_c"),
    ("field-vs-derived-method", {"b": "registers:\n" + reg("R", ["x", "get_x", *EIGHT[2:]])},
     "name-collision", "method get_x of field R.x clashes with field R.get_x"),
    ("enum-named-like-an-import", {"b": "enums:\n" + enum("Final")}, "reserved-name",
     "enum Final: Final is imported by every generated module"),
    ("register-class-named-like-an-import", {"b": "registers:\n" + reg("FIELD_INFO", EIGHT)},
     "reserved-name", "class FieldInfo of register FIELD_INFO: FieldInfo is imported"),
    ("enum-named-like-a-registry-dict", {"b": "enums:\n" + enum("REGISTERS")}, "reserved-name",
     "enum REGISTERS: REGISTERS is a name registry.py defines"),
    ("enum-value-unknown", {"b": "enums:\n" + enum("Mode", 2, "A UNKNOWN_3")}, "reserved-name",
     "value UNKNOWN_3 of enum Mode: UNKNOWN_<n> is how unlisted encodings decode"),
    ("c-include-guard", {"b": "constants:\n"
                         + "  - {name: IBS_MPROF_GENERATED_REGS_H, value: 1, doc: C.}\n"},
     "reserved-name", "IBS_MPROF_GENERATED_REGS_H is the header's include guard"),
]


@pytest.mark.parametrize(("files", "rule", "text"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_names_that_break_generated_code_are_refused(tmp_path: Path, files: dict[str, str],
                                                     rule: str, text: str) -> None:
    got = refused(spec_dir(tmp_path, files))
    assert len(got) == 1, got
    assert f": {rule}: " in got[0] and text in got[0], got[0]


def test_every_reserved_field_name_has_a_case() -> None:
    assert set(FIELDS_THAT_BREAK) == {n for n in gen_names.FIELD_RESERVED if n[0] != "_"}


def test_a_name_defined_twice_is_not_also_a_collision(tmp_path: Path) -> None:
    """Two registers R: duplicate-name says so; their identical classes and constants are the
    same mistake, not a second one."""
    got = refused(spec_dir(tmp_path, {"b": "registers:\n" + reg("R", EIGHT)
                                      + reg("R", EIGHT, 0x11)}))
    assert any(": duplicate-name: register R already defined" in d for d in got), got
    assert all(": duplicate-name: " in d for d in got), got


# --- names.py against what the templates really write -------------------------------------

RISKY_BUT_ALLOWED = [
    "type", "id", "hash", "min", "max", "len", "cls", "raw", "value", "values", "np", "object",
    "check_int", "checked_u64", "as_u64", "dataclass", "final", "field", "name", "kind", "width",
    "location", "annotations", "property", "super", "iter", "format", "insert_x", "array",
]
"""Field names that look dangerous but that the generated code does not read where a field
would hide them: they stay allowed, and test_allowed_names_generate_working_code proves it."""


def risky_spec(tmp_path: Path) -> Path:
    body = ("enums:\n" + enum("Mode", 2, "LOW HIGH") + "registers:\n"
            + reg("RISKY", RISKY_BUT_ALLOWED, width=32, reserved=f"31:{len(RISKY_BUT_ALLOWED)}")
            + "constants:\n  - {name: TYPE, value: -1, doc: C.}\n")
    return spec_dir(tmp_path, {"risky": body, "only_consts":
                               "constants:\n  - {name: ONLY, value: 1, doc: C.}\n",
                               "empty": ""})


SPECS = {"spec_small": FIXTURES / "spec_small", "real": SPEC}


def _bound(nodes: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """(names imported, names otherwise bound) by a module's or class's top-level statements."""
    imported: set[str] = set()
    defined: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return imported, defined


def _reads(*nodes: ast.AST | None) -> set[str]:
    return {n.id for node in nodes if node is not None for n in ast.walk(node)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _hidable_reads(cls: ast.ClassDef) -> set[str]:
    """Names a field of the same name would hide or clash with: read in the class body
    (annotations, decorators, defaults, method signatures), or read by a method that takes the
    fields as parameters (a field parameter shadows the global), or that method's own other
    parameters."""
    out: set[str] = set()
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef):
            out |= _reads(node)
            continue
        args = node.args
        out |= _reads(*node.decorator_list, node.returns, *args.defaults,
                      *(a for a in args.kw_defaults if a is not None),
                      *(a.annotation for a in args.args + args.kwonlyargs))
        params = {a.arg for a in args.args + args.kwonlyargs}
        if args.kwonlyargs:  # replace(), encode_array(): one parameter per field
            out |= {name for stmt in node.body for name in _reads(stmt)} - params
            out |= {a.arg for a in args.args}  # `self` beside a field `self`: SyntaxError
    return out


def _check_against_templates(spec: Spec, generated: Path) -> None:
    enums = set(spec.enums)
    for block in spec.blocks:
        tree = ast.parse((generated / f"{block.name}.py").read_text())
        imported, defined = _bound(tree.body)
        predicted = {c.name for c in block.constants}
        predicted |= {e.name for e in block.enums} | {e.width_name for e in block.enums}
        for r in block.registers:
            predicted.add(r.class_name)
            predicted |= {name for name, _, _ in gen_names.register_module_constants(r)}
            predicted |= {name for name, _, _ in gen_names.register_module_functions(r)}
        assert defined == predicted, f"{block.name}.py: names.py does not predict " \
            f"{sorted(defined ^ predicted)}"
        assert imported <= gen_names.MODULE_IMPORTS | enums, sorted(imported)
        classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
        for r in block.registers:
            cls = classes[r.class_name]
            _, members = _bound(cls.body)
            assert members == set(gen_names.class_members(r)), \
                f"{r.class_name}: {sorted(members ^ set(gen_names.class_members(r)))}"
            fields = {f.name for f in r.fields}
            lower = {n for n in _hidable_reads(cls) - fields if n.islower()}
            assert lower <= set(gen_names.FIELD_RESERVED), \
                f"{r.class_name} reads {sorted(lower - set(gen_names.FIELD_RESERVED))}, which " \
                "a field of that name would hide: add it to names.FIELD_RESERVED"
    imported, defined = _bound(ast.parse((generated / "registry.py").read_text()).body)
    classes = enums | {r.class_name for r in spec.registers}
    assert defined <= gen_names.REGISTRY_NAMES, sorted(defined - gen_names.REGISTRY_NAMES)
    assert imported <= gen_names.REGISTRY_NAMES | classes, sorted(imported)
    for module in ("registry", "_base", "__init__"):
        assert module in gen_names.OUTPUT_MODULES
    assert {p.stem for p in generated.glob("*.py")} == \
        set(gen_names.OUTPUT_MODULES) | {b.name for b in spec.blocks}
    header = (generated / "ibs_mprof_regs.h").read_text()
    assert f"#ifndef {gen_names.C_INCLUDE_GUARD}\n" in header


@pytest.mark.parametrize("which", ["spec_small", "real", "risky"])
def test_names_py_knows_every_name_the_templates_write(tmp_path: Path, which: str) -> None:
    folder = risky_spec(tmp_path) if which == "risky" else SPECS[which]
    root = regenerate(folder, tmp_path / "pkg")
    _check_against_templates(load_spec(folder), root / "generated")


def test_allowed_names_generate_working_code(tmp_path: Path) -> None:
    """The risky field names import, round-trip through every accessor, and the package
    passes mypy --strict and ruff: the reserved list is not just necessary but enough."""
    root = regenerate(risky_spec(tmp_path), tmp_path / "pkg")
    code = ("import numpy as np\n"
            "from generated.risky import Risky, TYPE\n"
            "from generated import only_consts, empty, registry\n"
            "raw = 0b1011_0110_1101_0011_0101_1010_101\n"
            "r = Risky.decode(raw)\n"
            "assert r.encode() == raw and r.replace(type=False).encode() == raw & ~1\n"
            "assert Risky.extract_raw(raw) == r.raw and int(Risky.get_np(np.array([raw]))[0]) "
            "== r.np\n"
            "assert int(Risky.set_cls(np.array([0]), 1)[0]) == 1 << 6\n"
            "assert int(Risky.encode_array(value=1, values=1)) == 3 << 8\n"
            "assert TYPE == -1 and only_consts.ONLY == 1 and registry.CONSTANTS['TYPE'] == -1\n"
            "print('ok')\n")
    result = run_python(code, root)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
    mypy = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "-p",
                           "generated"], cwd=root, capture_output=True, text=True, timeout=600)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
                           "--target-version", "py311", "--select", "E,F,W,I,B,UP",
                           "--ignore", "E501", "generated"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
