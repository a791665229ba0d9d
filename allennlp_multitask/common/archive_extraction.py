"""
Extracts the tar archives AllenNLP opens as data: nothing lands outside the directory they are extracted to.

AllenNLP 2.10 extracts model archives (`load_archive`, behind `allennlp predict` and `evaluate`,
`"from_archive"` models and the `"pretrained"` initializer) with a bare `TarFile.extractall(tempdir)`: a
member named `../../x` or `/x`, or one written through a symbolic link pointing outside, lands outside
the temporary directory, a hard link to an outside file lets a later member overwrite that file, and the
command goes on as if nothing happened.

Importing this package makes `TarFile.extractall`, when given no `filter`, check every member before
writing any, and refuse the archive with `UnsafeArchiveError`, naming it and the member, if the standard
library's `"data"` filter refuses one (a path or link leaving the directory, a link to an absolute path,
a device, a FIFO) or one has an absolute path (which that filter would extract inside, stripped of its
`/`). It then checks each member again with that filter as it extracts it, which refuses what only shows
once earlier members exist (a path through a link extracted before it), but extracts what the filter lets
through as Python's default does, with the archive's permission bits (the filter would drop group write
bits and directories' modes). That covers `cached_path`'s extraction too (a vocabulary
`.tar.gz`, `archive.tar.gz!member` paths); its own check of each member (`check_tarfile`), which runs first
and names no member for most of what it refuses, is left to ours. (Zip archives it extracts with
`zipfile`, which writes members with `..` or absolute paths inside, and no links.) The filters came with
Python 3.11.4: on earlier 3.11 releases, importing this module raises `ImportError`.

AllenNLP's `extracted_archive`, called by `load_archive` with `cleanup=False`, also left its temporary
directory behind when extraction failed, as `load_archive` removes it only once it has its name. Ours
removes it then too.
"""

import logging
import os
import platform
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional, Union

from allennlp.models import archival
from cached_path import _cached_path

if not hasattr(tarfile, "data_filter"):
    raise ImportError(
        "allennlp_multitask extracts archives with the tarfile extraction filters of Python 3.11.4 and later, "
        f"which Python {platform.python_version()} lacks."
    )

logger = logging.getLogger(__name__)

_extractall = tarfile.TarFile.extractall


class UnsafeArchiveError(tarfile.FilterError):
    """An archive member would be written outside the archive's directory, or is not a file or directory."""


def _refused(archive: tarfile.TarFile, error: tarfile.FilterError) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"Refused to extract {archive.name}: {error}")  # type: ignore[str-bytes-safe]


def extractall(
    self: tarfile.TarFile,
    path: Union[str, os.PathLike] = ".",
    members: Optional[Iterable[tarfile.TarInfo]] = None,
    *,
    numeric_owner: bool = False,
    filter: Optional[Union[str, Callable[[tarfile.TarInfo, str], Optional[tarfile.TarInfo]]]] = None,
) -> None:
    """
    `TarFile.extractall`. Given no `filter`, it raises `UnsafeArchiveError` before writing anything if
    the `"data"` filter refuses any member, or one has an absolute path, and extracts what that filter
    lets through as the default does.
    """
    if filter is None:
        members = self.getmembers() if members is None else list(members)
        for member in members:
            try:
                if member.name.startswith(("/", os.sep)):  # which the filter strips, and extracts inside
                    raise tarfile.AbsolutePathError(member)
                tarfile.data_filter(member, os.fspath(path))
            except tarfile.FilterError as error:
                raise _refused(self, error) from error
        filter = _checked_by_data_filter
    try:
        _extractall(self, path, members, numeric_owner=numeric_owner, filter=filter)  # type: ignore[arg-type]
    except tarfile.FilterError as error:
        raise _refused(self, error) from error


def _checked_by_data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """Raises where the `"data"` filter refuses `member`; else `member` as it is (Python's default filter)."""
    tarfile.data_filter(member, path)
    return member


def check_tarfile(tar_file: tarfile.TarFile) -> None:
    """
    Stands in for `cached_path`'s check of an archive before it calls `extractall`, which checks every
    member against the directory it extracts to and names the member it refuses.
    """


@contextmanager
def extracted_archive(resolved_archive_file: Union[str, os.PathLike], cleanup: bool = True) -> Iterator[str]:
    """
    AllenNLP's `extracted_archive`: extracts the archive to a new temporary directory, and removes that
    directory on exit if `cleanup`. The directory is removed if extraction fails, whatever `cleanup`.
    """
    tempdir = tempfile.mkdtemp()
    extracted = False
    try:
        logger.info("extracting archive file %s to temp dir %s", resolved_archive_file, tempdir)
        with tarfile.open(resolved_archive_file, "r:gz") as archive:
            archive.extractall(tempdir)
        extracted = True
        yield tempdir
    finally:
        if cleanup or not extracted:
            shutil.rmtree(tempdir, ignore_errors=True)


tarfile.TarFile.extractall = extractall  # type: ignore[method-assign, assignment]
_cached_path.check_tarfile = check_tarfile
archival.extracted_archive = extracted_archive
