"""Spec diagnostics: one `file:line: rule-id: message` each, all of a run collected together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from safeio.errors import one_line


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a spec, pointing at the offending line.

    `file` is relative to the spec folder ("" for the folder itself); `line` is 0 when no line
    applies (the folder, or a file's name), and is then left out of the rendered text.
    """

    file: str
    line: int
    rule: str
    message: str

    def __post_init__(self) -> None:
        # One diagnostic is one line, whatever text the spec put into its message.
        object.__setattr__(self, "file", one_line(self.file))
        object.__setattr__(self, "message", one_line(self.message))

    def at(self, spec_dir: Path | str = ".") -> str:
        """The diagnostic with its file given as spec_dir/file: what the CLI prints."""
        where = one_line(str(Path(spec_dir) / self.file))
        line = f":{self.line}" if self.line else ""
        return f"{where}{line}: {self.rule}: {self.message}"

    def __str__(self) -> str:
        return self.at()


class SpecError(Exception):
    """Raised when a spec has problems; carries every diagnostic found, sorted."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))
