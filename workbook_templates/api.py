"""Build the planning templates to files: ``build_all(out_dir)``, safely.

Each workbook is written to a temporary file beside its target and renamed into place
(``os.replace``), so a crash never leaves a half-written template; existing files are only
replaced with ``force=True``, and then all three are checked before any is written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from relationships.errors import OutputExistsError
from relationships.rulebook import Rulebook, load_rulebook
from workbook_templates.builders import BUILDERS

TEMPLATE_FILES = tuple(f"{key}.xlsx" for key in BUILDERS)


def save_workbook(wb: Workbook, path: str | Path, *, force: bool = False) -> Path:
    """Save through a temporary file and os.replace; refuse to overwrite without force."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists already (use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def build_all(
    out_dir: str | Path,
    rulebook: Rulebook | str | Path | Mapping[str, Any] | None = None,
    *,
    force: bool = False,
) -> list[Path]:
    """Write the three templates into ``out_dir``; returns their paths.

    ``rulebook`` is a Rulebook, a .toml/.json/.xlsx path or None (the built-in rulebook):
    its vocabularies feed the drop-downs and its Rules sheet the plain formulas.
    """
    rb = load_rulebook(rulebook)
    out = Path(out_dir)
    targets = {key: out / f"{key}.xlsx" for key in BUILDERS}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise OutputExistsError(
            f"{', '.join(existing)}: exist{'s' if len(existing) == 1 else ''} already "
            "(use --force to replace)"
        )
    written = []
    for key, path in targets.items():
        written.append(save_workbook(BUILDERS[key](rb), path, force=force))
    return written
