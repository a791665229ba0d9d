"""
Writing files and directories so that a crash at any moment leaves either the old one or the new one,
never a torn one: the content goes to a temporary path beside the target, is flushed to the disk
(`fsync`), then takes the target's name in one `rename`, and the directory holding it is flushed too.

Temporary paths are hidden (`.{name}.{random}.partial`); a crash leaves such a path behind, never a
torn target. `remove_partial_files` clears them.

What lands has the permission bits a plain `open(path, "w")` (or `os.mkdir`) would have given it: the old
target's where there was one, else the default under the process umask (`0644` and `0755` under umask
`022`), not the private `0600`/`0700` that temporary files are created with.
"""

import ctypes
import errno
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Union

import torch

PathOrStr = Union[str, "os.PathLike[str]"]
PARTIAL_SUFFIX = ".partial"

# Linux's `renameat2(..., RENAME_EXCHANGE)` swaps two directories in one step.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def fsync_path(path: PathOrStr) -> None:
    """Flushes the file or directory at `path` (its entries, for a directory) to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux's `/proc`)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_of_new(target: str, directory: bool) -> int:
    """
    The permission bits that writing `target` in place would leave it with: an existing target keeps its
    own, a new one gets the default under the umask.
    """
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return (0o777 if directory else 0o666) & ~current_umask()


def _fsync_tree(directory: PathOrStr) -> None:
    for root, _, files in os.walk(directory):
        for name in files:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


def _exchange(first: str, second: str) -> bool:
    """Swaps two paths' names in one step where the system can (Linux); returns whether it did."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):  # Not supported by this kernel or file system.
        return False
    raise OSError(code, os.strerror(code), second)


def _replace_directory(new: str, target: str) -> None:
    """Gives `new` (a directory) the name `target`, whose old directory, if any, is removed."""
    if not os.path.exists(target):
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new)
    else:
        # Two steps: a crash between them leaves the old directory at a hidden partial path.
        parent, name = os.path.split(target)
        old = tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=PARTIAL_SUFFIX)
        os.rmdir(old)
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)


@contextmanager
def replaced_atomically(path: PathOrStr, directory: bool = False) -> Iterator[str]:
    """
    Yields a temporary path beside `path` (an empty file, or an empty directory with `directory`).
    What the block writes there replaces `path` in one step when the block ends without an error, with
    the permission bits writing `path` in place would have left it with; if the block raises, `path` is
    left as it was and the temporary path is removed.

    # Parameters

    path : `PathOrStr`
        The file (or directory) to write.
    directory : `bool`, optional (default = `False`)
        Whether `path` is a directory, written as a whole.
    """
    target = os.path.abspath(path)
    parent, name = os.path.split(target)
    if directory:
        temporary = tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=PARTIAL_SUFFIX)
    else:
        descriptor, temporary = tempfile.mkstemp(dir=parent, prefix=f".{name}.", suffix=PARTIAL_SUFFIX)
        os.close(descriptor)
    try:
        # Before the block: a writer that opens the path keeps its mode, one that links another file there
        # (`link_atomically`) keeps that file's.
        os.chmod(temporary, _mode_of_new(target, directory))
        yield temporary
        if directory:
            _fsync_tree(temporary)
            _replace_directory(temporary, target)
        else:
            fsync_path(temporary)
            os.replace(temporary, target)
        fsync_path(parent)
    finally:
        if directory:
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.remove(temporary)


def save_atomically(state: Any, path: PathOrStr) -> None:
    """`torch.save(state, path)`, written atomically."""
    with replaced_atomically(path) as temporary:
        torch.save(state, temporary)


def link_atomically(source: PathOrStr, target: PathOrStr) -> None:
    """
    Makes `target` a hard link to `source` (a copy where the file system has no hard links), replacing
    what `target` was in one step.
    """
    with replaced_atomically(target) as temporary:
        os.remove(temporary)
        try:
            os.link(source, temporary)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP):
                raise
            shutil.copy(source, temporary)


def remove_partial_files(directory: PathOrStr) -> None:
    """Removes what writes to `directory` that never finished left behind (their temporary paths)."""
    for partial in Path(directory).glob(f".*{PARTIAL_SUFFIX}"):
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
