"""Writing outputs safely: a temporary file beside the target, renamed into place.

A crash or a kill leaves the previous file (or none), never a half-written one; an existing
output is only replaced with ``force``. Every writer of the package goes through here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relationships.errors import OutputExistsError


def umask() -> int:
    """The process's file-creation mask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(
    dst: Path,
    write: Callable[[Any], Any],
    *,
    force: bool,
    text: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``dst``, flush it to disk, rename it."""
    if dst.exists() and not force:
        raise OutputExistsError(f"{dst}: exists already (use --force to replace it)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; outputs get the usual mode
        mode = "w" if text else "wb"
        kwargs = {"encoding": encoding, "newline": ""} if text else {}
        with os.fdopen(fd, mode, **kwargs) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst
