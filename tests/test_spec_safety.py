"""The spec is data, never code: hostile file names, texts, bit ranges, constants and folders are
refused with one diagnostic line, and text that is allowed is escaped so that the generated
Python imports without running anything, the C header compiles to the spec's values and the
Markdown keeps its structure."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen import SpecError, load_spec, render_all
from codegen.errors import Diagnostic
from codegen.render import c_comment, md_cell, md_text, py_comment, py_doc, py_str
from tests.conftest import FIXTURES, SPEC, regenerate, run_cli, run_python
from tests.test_hostile_input import write

HEAD = "format: 1\nblock: {block}\ndoc: D.\nsource: tests\n"
MINIMAL = HEAD.format(block="mini") + "constants:\n  - {name: MINI, value: 1, doc: C.}\n"
INJECTED = "x\nimport os; os.system('touch PWNED')\n.yaml"
GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")


def folder_with(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir()
    for name, text in files.items():
        write(folder, name, text)
    return folder


def refused(folder: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as info:
        load_spec(folder)
    return info.value.diagnostics


def gen_cli(folder: Path | str, out: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("gen", "--spec", str(folder), "--out", str(out), timeout=60)


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], out: Path,
                            *parts: str) -> str:
    """Exit 2, no traceback, exactly one stderr line holding every part, nothing written."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    for part in parts:
        assert part in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def compile_c(source: str, include: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "check.c"
    src.write_text(source)
    return subprocess.run([str(GCC), "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                           "-I", str(include), "-c", str(src), "-o", str(tmp_path / "check.o")],
                          capture_output=True, text=True, timeout=120)


# --- the spec folder -----------------------------------------------------------------------

def test_missing_spec_folder_says_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "MISSING"
    result = gen_cli(missing, tmp_path / "out")
    line = assert_one_line_refusal(result, tmp_path / "out", str(missing), ": no-spec: ",
                                   "the spec folder does not exist")
    assert f"{missing}/MISSING" not in line and "missing-key" not in line
    (diag,) = refused(missing)
    assert diag.at(missing) == f"{missing}: no-spec: the spec folder does not exist"


@pytest.mark.parametrize(("make", "problem"), [
    (lambda p: p.mkdir(), "the spec folder holds no *.yaml spec file"),
    (lambda p: p.write_text("format: 1\n"), "this is a file; --spec names a folder"),
])
def test_a_folder_without_spec_is_no_spec(tmp_path: Path, make: object, problem: str) -> None:
    target = tmp_path / "spec"
    make(target)  # type: ignore[operator]
    (diag,) = refused(target)
    assert (diag.rule, diag.file, diag.line) == ("no-spec", "", 0)
    assert problem in diag.message


# --- spec file names -----------------------------------------------------------------------

def test_a_newline_in_a_file_name_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {INJECTED: MINIMAL})
    (diag,) = refused(folder)
    assert diag.rule == "bad-file-name" and "\n" not in str(diag)
    result = gen_cli(folder, tmp_path / "out")
    assert_one_line_refusal(result, tmp_path / "out", ": bad-file-name: ",
                            "x\\nimport os; os.system('touch PWNED')\\n.yaml")
    assert not (tmp_path / "PWNED").exists()


def test_header_escaping_holds_even_without_the_file_name_rule(tmp_path: Path) -> None:
    """Defence in depth: a model whose file names are hostile (as if validation missed them)
    still renders headers in which nothing runs and the C and Markdown stay intact."""
    spec = load_spec(folder_with(tmp_path, {"mini.yaml": MINIMAL}))
    hostile = INJECTED + " */ int evil; /* | <script> \\"
    spec = dataclasses.replace(spec, blocks=(dataclasses.replace(spec.blocks[0], file=hostile),))
    root = tmp_path / "pkg"
    (root / "generated").mkdir(parents=True)
    for rel, data in render_all(spec).items():
        (root / "generated" / rel).write_bytes(data)
    result = run_python("import generated.registry, generated.mini; print('ok')", root)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
    assert not (root / "PWNED").exists()
    for name in ("registry.py", "mini.py", "ibs_mprof_regs.h", "REGISTERS.md"):
        head = (root / "generated" / name).read_text().splitlines()
        assert sum("sha256" in line for line in head) == 1, name
    header = (root / "generated" / "ibs_mprof_regs.h").read_text()
    assert "int evil" not in header.replace("* / int evil", "")
    markdown = (root / "generated" / "REGISTERS.md").read_text()
    assert "<script>" not in markdown and "\\| &lt;script&gt; \\\\ sha256" in markdown
    if GCC is not None:
        build = compile_c('#include "ibs_mprof_regs.h"\n_Static_assert(MINI == 1, "m");\n',
                          root / "generated", tmp_path)
        assert build.returncode == 0, build.stderr


def test_a_non_utf8_file_name_is_one_line(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {})
    try:
        (folder / os.fsdecode(b"spec\xff.yaml")).write_text(MINIMAL)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    result = gen_cli(folder, tmp_path / "out")
    assert_one_line_refusal(result, tmp_path / "out", "spec\\udcff.yaml", ": bad-file-name: ")


@pytest.mark.parametrize("name", [
    "Demo.yaml", "my spec.yaml", ".hidden.yaml", "-x.yaml", "x-coding=latin-1.yaml",
    "a:b.yaml", "caf\u00e9.yaml", "x" * 65 + ".yaml",
])
def test_file_names_outside_the_safe_pattern_are_refused(tmp_path: Path, name: str) -> None:
    (diag,) = refused(folder_with(tmp_path, {name: MINIMAL}))
    assert diag.rule == "bad-file-name" and diag.line == 0


@pytest.mark.parametrize("name", ["a.yaml", "ibs_op.yaml", "0-x.b_c.yaml", "x" * 64 + ".yaml"])
def test_safe_file_names_are_accepted(tmp_path: Path, name: str) -> None:
    assert load_spec(folder_with(tmp_path, {name: MINIMAL})).blocks[0].file == name


# --- file contents -------------------------------------------------------------------------

def test_non_utf8_contents_are_one_line_with_the_line(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"latin.yaml": HEAD.format(block="latin").encode()
                                    + b"constants:\n  - {name: C, value: 1, doc: caf\xe9}\n"})
    result = gen_cli(folder, tmp_path / "out")
    assert_one_line_refusal(result, tmp_path / "out", "latin.yaml:6: yaml-syntax: not UTF-8",
                            "0xe9")


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {})
    os.mkfifo(folder / "pipe.yaml")
    # Opening a FIFO blocks until a writer comes: the timeout turns a hang into a failure.
    result = run_cli("gen", "--spec", str(folder), "--out", str(tmp_path / "out"), timeout=20)
    assert_one_line_refusal(result, tmp_path / "out", "pipe.yaml",
                            ": yaml-syntax: not a regular file")


@pytest.mark.parametrize(("text", "code"), [
    ('"bell \\a"', 0x07), ('"escape \\e[31m"', 0x1B), ('"rtl \\u202e"', 0x202E),
    ('"zero\\u200bwidth"', 0x200B), ('"lone \\ud800 surrogate"', 0xD800), ('"del \\x7f"', 0x7F),
    ('"nel \\x85 line"', 0x85),
])
def test_invisible_characters_in_text_are_refused(tmp_path: Path, text: str, code: int) -> None:
    body = f"constants:\n  - {{name: C, value: 1, doc: {text}}}\n"
    (diag,) = refused(folder_with(tmp_path, {"t.yaml": HEAD.format(block="t") + body}))
    assert diag.rule == "bad-text" and diag.line == 6 and f"U+{code:04X}" in diag.message


def test_printable_unicode_tabs_and_newlines_are_text(tmp_path: Path) -> None:
    doc = "Latency in \u00b5s, caf\u00e9,\u00a0NBSP and\ttab\nnext line"
    body = f"constants:\n  - {{name: C, value: 1, doc: {json.dumps(doc)}}}\n"
    folder = folder_with(tmp_path, {"t.yaml": HEAD.format(block="t") + body})
    assert load_spec(folder).constants[0].doc == doc
    root = regenerate(folder, tmp_path / "pkg")
    assert '"""Latency in \u00b5s, caf\u00e9, NBSP and tab next line"""' in \
        (root / "generated" / "t.py").read_text()


# --- bit ranges ----------------------------------------------------------------------------

FIELD = '      - {{name: f, {key}: {value}, access: rw, doc: F.}}\n'


def _reg(fields: str, extra: str = "") -> str:
    return (HEAD.format(block="b") + "registers:\n  - name: R\n    kind: memory\n    width: 8\n"
            f"    doc: R.\n    source: tests\n{extra}    fields:\n{fields}")


@pytest.mark.parametrize(("body", "got"), [
    (_reg(FIELD.format(key="bits", value="1:0")), "int 60"),
    (_reg(FIELD.format(key="bits", value="31:27")), "int 1887"),
    (_reg(FIELD.format(key="bits", value="7")), "int 7"),
    (_reg(FIELD.format(key="bits", value="7.0")), "float 7.0"),
    (_reg('      - {name: f, bits: "7:2", access: rw, doc: F.}\n', "    reserved_bits: [1:0]\n"),
     "int 60"),
    (_reg("      - name: p\n        parts:\n          - {bits: \"7:4\", value_bits: 3:0}\n"
          "        access: rw\n        doc: P.\n      - {name: g, bits: \"3:0\", access: rw, "
          "doc: G.}\n"), "int 180"),
    (_reg("      - name: p\n        parts:\n          - {bits: \"7:4\", value_bits: \"5:2\"}\n"
          "        zero_bits: 1:0\n        access: rw\n        doc: P.\n"
          "      - {name: g, bits: \"3:0\", access: rw, doc: G.}\n"), "int 60"),
])
def test_unquoted_bit_ranges_are_refused_with_a_hint(tmp_path: Path, body: str, got: str) -> None:
    diags = refused(folder_with(tmp_path, {"b.yaml": body}))
    bad = [d for d in diags if d.rule == "bad-bits"]
    assert len(bad) == 1, diags
    assert f"got {got};" in bad[0].message and "quote every bit range" in bad[0].message


# --- C constants ---------------------------------------------------------------------------

BOUNDS = {"NEG": -1, "MIN64": -(1 << 63), "MAX64": (1 << 63) - 1, "BIG": 1 << 63,
          "MAX64U": (1 << 64) - 1, "INT_MIN_32": -(1 << 31)}


@pytest.mark.parametrize("value", [-(1 << 63) - 1, 1 << 64, -(1 << 100)])
def test_constants_no_c_type_holds_are_refused(tmp_path: Path, value: int) -> None:
    body = f"constants:\n  - {{name: C, value: {value}, doc: C.}}\n"
    (diag,) = refused(folder_with(tmp_path, {"c.yaml": HEAD.format(block="c") + body}))
    assert diag.rule == "constant-range" and diag.line == 6


@needs_gcc
def test_constants_at_the_c_bounds_compile_to_their_values(tmp_path: Path) -> None:
    body = "constants:\n" + "".join(f"  - {{name: {n}, value: {v}, doc: C.}}\n"
                                    for n, v in BOUNDS.items())
    root = regenerate(folder_with(tmp_path, {"c.yaml": HEAD.format(block="c") + body}),
                      tmp_path / "pkg")
    header = (root / "generated" / "ibs_mprof_regs.h").read_text()
    for name, value in BOUNDS.items():
        define = re.search(rf"^#define {name} (.*?) /\*", header, re.M)
        assert define is not None
        assert value >= 0 or define.group(1).startswith("("), define.group(0)
    checks = "".join(f'_Static_assert({n} == {e}, "{n}");\n' for n, e in [
        ("NEG", "-1"), ("-NEG", "1"), ("MIN64", "INT64_MIN"), ("MAX64", "INT64_MAX"),
        ("BIG", "9223372036854775808ULL"), ("MAX64U", "UINT64_MAX"), ("INT_MIN_32", "INT32_MIN"),
        ("sizeof(NEG)", "sizeof(int)")])
    result = compile_c(f'#include <stdint.h>\n#include "ibs_mprof_regs.h"\n{checks}',
                       root / "generated", tmp_path)
    assert result.returncode == 0, result.stderr
    values = run_python("from generated.registry import CONSTANTS as C; print(sorted(C.items()))",
                        root)
    assert values.stdout.strip() == str(sorted(BOUNDS.items())), values.stderr


# --- escaping per target: properties over any text -----------------------------------------

TEXT = st.text(st.characters(exclude_categories=[]), max_size=80) | st.text(st.sampled_from(
    list('"\'\\*/|<>&[]`#-+=_~1. \n\r\t\x00\x0b\x0c\x1f\x85\xa0\u200b\u2028\u202e\ud800\udcff')),
    max_size=40)
"""Any text, surrogates and invisible characters included (what validation would refuse must
still come out inert), and text made of the characters that matter to some target."""
_ESCAPED_MD = re.compile(r"\\[!-/:-@\[-`{-~]|&(?:amp|lt|gt);")


def _words(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(text=TEXT)
def test_python_docstrings_literals_and_comments_hold_any_text(text: str) -> None:
    body = py_doc(text, 4)
    value = ast.literal_eval(f'"""{body}"""')
    assert _words(value) == _words(py_comment(text)) or not _words(text)
    assert ast.literal_eval(py_str(text)) == py_comment(text)
    tree = ast.parse(f"# {py_comment(text)}\nX = 1\n")
    assert [type(n) for n in tree.body] == [ast.Assign]


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(text=TEXT)
def test_c_comments_hold_any_text(text: str) -> None:
    out = c_comment(text)
    assert "*/" not in out and "/*" not in out and "\n" not in out and "\r" not in out
    assert out.isprintable()


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(text=TEXT)
def test_markdown_cells_and_paragraphs_hold_any_text(text: str) -> None:
    for out in (md_cell(text), md_text(text)):
        bare = _ESCAPED_MD.sub("", out)
        assert not set(bare) & set("\\|<>[]`&"), (text, out)
        assert out.isprintable()
        unescaped = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", out)
        unescaped = unescaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        assert unescaped == py_comment(text)
    assert not re.match(r"[#+\-*=_~]|\d{1,9}[.)]( |$)", md_text(text)), md_text(text)


# --- the vectors end to end ----------------------------------------------------------------

EVIL = ('x""" + __import__("os").system("touch PWNED") + """ \\ \' */ #include <evil> '
        '| a \\| b <script>alert(1)</script> [link](javascript:alert(1)) ![img](http://t/x) '
        '`code` &amp; \\')
BLOCK_STARTS = ["# heading", "- item", "1. item", "---", "> quote", "```", "<div>"]


def _evil_spec(tmp_path: Path) -> Path:
    docs = [EVIL, *BLOCK_STARTS]
    text = HEAD.replace("doc: D.", f"doc: {json.dumps(EVIL)}").format(block="evil")
    text += "enums:\n"
    for i, doc in enumerate(docs):
        text += (f"  - name: E{i}\n    width: 1\n    doc: {json.dumps(doc)}\n"
                 f"    values:\n      - {{name: V, value: 0, doc: {json.dumps(doc)}}}\n")
    text += ("registers:\n  - name: EVIL_REG\n    kind: msr\n    address: 0x1234\n    width: 8\n"
             f"    doc: {json.dumps(EVIL)}\n    source: {json.dumps(EVIL)}\n    fields:\n"
             f"      - {{name: f, bits: \"7:0\", access: rw, doc: {json.dumps(EVIL)}}}\n"
             f"constants:\n  - {{name: EVIL_CONST, value: -7, doc: {json.dumps(EVIL)}}}\n")
    return folder_with(tmp_path, {"evil.yaml": text})


def _cells(row: str) -> int:
    """Cells of a GFM table row: `|` splits unless escaped (a backslash escapes one char)."""
    count, i = 0, 0
    while i < len(row):
        if row[i] == "\\":
            i += 2
            continue
        count += row[i] == "|"
        i += 1
    return count - 1


def test_hostile_docs_stay_text_in_every_target(tmp_path: Path) -> None:
    root = regenerate(_evil_spec(tmp_path), tmp_path / "pkg")
    gen = root / "generated"
    result = run_python("import json, generated.evil as m, generated.registry as r\n"
                        "print(json.dumps([m.EvilReg.FIELDS[0].doc, m.EvilReg.__doc__, "
                        "r.ENUMS['E0'].__doc__, m.__doc__]))\n", root)
    assert result.returncode == 0, result.stderr
    field_doc, *docstrings = json.loads(result.stdout)
    assert field_doc == EVIL
    for doc in docstrings:
        assert _words(EVIL) in _words(doc), doc
    assert not (root / "PWNED").exists()
    if GCC is not None:
        build = compile_c('#include "ibs_mprof_regs.h"\n_Static_assert(EVIL_CONST == -7, "c");\n'
                          '_Static_assert(EVIL_REG_F_MASK == 0xFFU, "m");\n', gen, tmp_path)
        assert build.returncode == 0, build.stderr
    lines = (gen / "REGISTERS.md").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            width = _cells(lines[i - 1])
            rows = lines[i + 1:]
            for row in rows[:next((k for k, r in enumerate(rows) if not r.startswith("|")),
                                  len(rows))]:
                assert _cells(row) == width, row
    headings = [line for line in lines if line.startswith("#")]
    assert all(re.fullmatch(r"#{1,3} [A-Za-z0-9_ ()]+|### enum E\d \(1 bits\)", h)
               for h in headings), headings
    bare = [_ESCAPED_MD.sub("", line) for line in lines if not line.startswith("#")]
    assert not any(re.search(r"<(?!br>)|\[|^(?:- |\d\. |---|```)", line) for line in bare), bare


def test_the_real_spec_and_fixtures_still_load() -> None:
    """The new rules refuse nothing the project's own specs hold."""
    assert load_spec(SPEC).blocks and load_spec(FIXTURES / "spec_small").blocks


def test_a_diagnostic_is_one_line_whatever_the_folder_is_called() -> None:
    diag = Diagnostic("", 0, "no-spec", "the spec folder does not exist")
    assert diag.at("spec\nevil") == "spec\\nevil: no-spec: the spec folder does not exist"
    assert str(Diagnostic("a.yaml", 3, "bad-text", "x\ny")) == "a.yaml:3: bad-text: x\\ny"


def test_a_block_of_constants_only_or_of_nothing_renders_importable_code(tmp_path: Path) -> None:
    """Such a module imports nothing from generated._base: an empty `import ()` is a
    SyntaxError, an unused import a ruff error."""
    folder = folder_with(tmp_path, {"mini.yaml": MINIMAL,
                                    "empty.yaml": HEAD.format(block="empty")})
    root = regenerate(folder, tmp_path / "pkg")
    result = run_python("import generated.registry, generated.mini, generated.empty as e\n"
                        "print(generated.mini.MINI, [n for n in dir(e) if n[0] != '_'])\n", root)
    assert result.returncode == 0 and result.stdout == "1 ['annotations']\n", result.stderr
