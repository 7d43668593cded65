"""Writing files and folders so that a reader never sees half of one.

A folder is built in a hidden temp folder beside its final place and renamed into place (one
``os.rename``, atomic on POSIX); a build that fails or is killed leaves only a temp folder, which no
reader trusts and the next builder (holding the folder's lock) deletes. :func:`build_once` is the
whole sequence for a shared folder several processes may want at once: open it if complete, else take
its file lock, look again (another process may have finished while this one waited), and only then build.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

from filelock import FileLock

T = TypeVar("T")


def umask() -> int:
    """This process's umask. Read from /proc on Linux: the portable way (set it, then set it back) leaves a
    window in which a file another thread creates gets umask 0."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a plain new file gets here: 0o666 less the umask. Every file the project writes has it (one
    policy: teammates sharing an experiment folder can read what the search wrote), including the ones written
    through ``tempfile.mkstemp``, which makes them owner-only (0600) whatever the umask."""
    return 0o666 & ~umask()


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temp file beside ``path``, then rename it into place (atomic on POSIX); the file honours the
    umask like any other (:func:`new_file_mode`)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_dir_beside(final: Path, kind: str = "tmp") -> Path:
    """A fresh hidden folder next to ``final``, on the same file system so os.rename is atomic."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".{final.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
    temp.mkdir()
    return temp


def publish_dir(temp: Path, final: Path) -> None:
    """Move the finished ``temp`` folder to ``final``, replacing an existing one (callers hold a lock)."""
    if final.exists():
        old = temp_dir_beside(final, "old")
        os.rename(final, old / final.name)
        os.rename(temp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(temp, final)


def remove_stale_temps(final: Path) -> None:
    """Remove temp/old folders of ``final`` left by killed builders (callers hold the lock on ``final``)."""
    for kind in ("tmp", "old"):
        for stale in final.parent.glob(f".{final.name}.{kind}-*"):
            shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def building(final: Path, kind: str = "tmp") -> Iterator[Path]:
    """A temp folder beside ``final`` to write into: renamed to ``final`` when the block ends, removed
    when it raises (the exception goes on)."""
    temp = temp_dir_beside(final, kind)
    try:
        yield temp
        publish_dir(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def build_once(final: Path, lock: Path, open_built: Callable[[], Optional[T]], write: Callable[[Path], None],
               write_error: Optional[Callable[[OSError], BaseException]] = None) -> Optional[T]:
    """``open_built()`` of the folder ``final``, built first by ``write(temp)`` when it is not complete yet.

    ``open_built`` returns None for a missing, partial or outdated folder. Builders serialise on the file
    lock ``lock``; stale temp folders of killed builders are removed before building. An OSError while
    writing or publishing becomes ``write_error(error)`` when given (the temp folder is removed either
    way). Returns what ``open_built`` says after the build: None means it cannot be opened even now.
    """
    built = open_built()
    if built is not None:
        return built
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        built = open_built()  # another process may have finished the same build while this one waited
        if built is None:
            remove_stale_temps(final)
            try:
                with building(final) as temp:
                    write(temp)
            except OSError as error:
                if write_error is None:
                    raise
                raise write_error(error) from None
            built = open_built()
    return built
