"""Code generator: spec/*.yaml -> validated model -> Jinja2 templates -> generated/."""

from __future__ import annotations

from pathlib import Path

from codegen.errors import Diagnostic, SpecError
from codegen.frontend import load_spec
from codegen.model import Spec
from codegen.render import render_all
from codegen.writer import check, write_all

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_PACKAGED_SPEC = Path(__file__).resolve().parent / "spec"
SPEC_DIR = _PACKAGED_SPEC if _PACKAGED_SPEC.is_dir() else PROJECT_ROOT / "spec"
"""The project's spec: spec/ in a checkout; in an installed wheel it ships as codegen/spec/."""
OUT_DIR = PROJECT_ROOT / "generated"

__all__ = [
    "Diagnostic", "SpecError", "Spec", "load_spec", "render_all", "generate", "check_generated",
    "SPEC_DIR", "OUT_DIR",
]


def generate(spec_dir: Path = SPEC_DIR, out_dir: Path = OUT_DIR) -> list[str]:
    """Validate spec_dir and (re)write out_dir; return the files that changed."""
    return write_all(out_dir, render_all(load_spec(spec_dir)))


def check_generated(spec_dir: Path = SPEC_DIR, out_dir: Path = OUT_DIR) -> list[str]:
    """Compare out_dir with what spec_dir renders; return one line per problem."""
    return check(out_dir, render_all(load_spec(spec_dir)))
