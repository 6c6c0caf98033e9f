"""Spec diagnostics: one `file:line: rule-id: message` each, all of a run collected together."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a spec file, pointing at the offending line."""

    file: str
    line: int
    rule: str
    message: str

    def __post_init__(self) -> None:
        # One diagnostic is one line, whatever text the spec put into its message.
        object.__setattr__(self, "file", _one_line(self.file))
        object.__setattr__(self, "message", _one_line(self.message))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


class SpecError(Exception):
    """Raised when a spec has problems; carries every diagnostic found, sorted."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def _one_line(text: str) -> str:
    """text with non-printable characters (newlines, control characters, lone surrogates)
    escaped, so it cannot split or garble a diagnostic line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
