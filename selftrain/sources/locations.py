"""Where source files are and may be: lexical paths, manifest-relative paths, the data root.

Paths are compared lexically (``..`` folded, symlinks kept), so artifacts hash the same
in any clone and under any DVC cache link type; only the data-root check resolves
symlinks, to refuse a manifest path that points outside ``data.raw_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path


def lexical(path: str | Path) -> Path:
    """Absolute, with `..` folded but symlinks kept: the path as the user laid it out."""
    return Path(os.path.normpath(os.path.abspath(path)))


def relative_path(file: str | Path, out: Path) -> str:
    """`file` relative to the prepared manifest's directory, POSIX-style."""
    return Path(os.path.relpath(file, out)).as_posix()


def allowed_roots(raw: Path) -> tuple[Path, ...]:
    """Real directories a manifest path may resolve into: raw_dir, plus the project's
    DVC cache (with the symlink cache type, files under raw_dir link into it)."""
    roots = [Path(os.path.realpath(raw))]
    for parent in (raw, *raw.parents):
        if (parent / ".dvc").is_dir():
            roots.append(Path(os.path.realpath(parent / ".dvc" / "cache")))
            break
    return tuple(roots)


def inside_root(file: Path, roots: tuple[Path, ...], raw: Path) -> bool:
    real = Path(os.path.realpath(file))
    if real.is_relative_to(roots[0]):
        return True
    # A link into the DVC cache counts only for a path that is lexically under raw_dir.
    return file.is_relative_to(raw) and any(real.is_relative_to(r) for r in roots[1:])
