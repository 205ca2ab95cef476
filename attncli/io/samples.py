"""The bundled sample inputs, addressed as ``sample:NAME``.

A wheel carries them as ``attncli/samples/`` (package data); a source checkout reads the
repository's ``sample_inputs/`` directly, so both installs see the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from attncli.errors import InputError

_PACKAGE = Path(__file__).resolve().parent.parent
_SUFFIXES = (".csv", ".json", ".npy")


def samples_dir() -> Path:
    bundled = _PACKAGE / "samples"
    return bundled if bundled.is_dir() else _PACKAGE.parent / "sample_inputs"


@dataclass(frozen=True)
class Sample:
    name: str
    files: tuple[Path, ...]


def list_samples() -> list[Sample]:
    """Every sample, by name, with its files (CSV first)."""
    by_name: dict[str, list[Path]] = {}
    for path in sorted(samples_dir().glob("*")):
        if path.suffix in _SUFFIXES:
            by_name.setdefault(path.stem, []).append(path)
    return [
        Sample(name, tuple(sorted(files, key=lambda p: _SUFFIXES.index(p.suffix))))
        for name, files in sorted(by_name.items())
    ]


def sample_path(name: str) -> Path:
    """The file behind ``sample:NAME`` (``NAME`` or ``NAME.json`` etc.; CSV is preferred)."""
    for sample in list_samples():
        for path in sample.files:
            if name in (sample.name, path.name):
                return path
    known = ", ".join(s.name for s in list_samples()) or "none found"
    raise InputError(f"sample:{name}: no such sample (available: {known}; see 'attn samples')")
