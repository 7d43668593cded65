"""Matplotlib without a display (Agg), and PNGs written so that a reader never sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from infra.files import new_file_mode


def pyplot():
    """matplotlib.pyplot on the Agg backend: report and evaluation run on headless machines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """``fig`` as PNG at ``path`` (temp name beside it, then rename), then closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
        os.chmod(tmp, new_file_mode())  # mkstemp makes it owner-only; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        pyplot().close(fig)
    return path
