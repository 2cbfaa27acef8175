"""What every benchmark report records about its run: the command line and the machine."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def command_line(argv: list[str] | None) -> str:
    """The script's name and its arguments (``argv``, else the process's)."""
    return " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])


def machine(**extra: Any) -> dict[str, Any]:
    """CPU count, Python and platform, plus ``extra`` (library versions, notes)."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), **extra}
