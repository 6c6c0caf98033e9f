"""Moving a field in spec/ and regenerating changes the accessors with no other edit."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import regenerate, run_python


def test_moved_enable_bit_follows_into_the_accessor(spec_copy: Path, tmp_path: Path) -> None:
    path = spec_copy / "ibs_mprof.yaml"
    text = path.read_text()
    text = text.replace('bits: "17"\n        access: rw\n        doc: Profiler enable.',
                        'bits: "40"\n        access: rw\n        doc: Profiler enable.')
    text = text.replace('reserved_bits: ["63:27"]', 'reserved_bits: ["63:41", "39:27", "17"]')
    path.write_text(text)
    root = regenerate(spec_copy, tmp_path / "pkg")
    code = ("from generated.ibs_mprof import IbsMprofCtl, IBS_MPROF_CTL_ENABLE_MASK\n"
            "print(hex(IbsMprofCtl(enable=True).encode()), hex(IBS_MPROF_CTL_ENABLE_MASK))\n"
            "print(IbsMprofCtl.decode(1 << 40).enable)\n")
    result = run_python(code, root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0x10000000000", "0x10000000000", "True"]
