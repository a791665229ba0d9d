"""Copies of a genuine model archive, with members replaced or added."""

import io
import tarfile
from pathlib import Path
from typing import Iterable, Mapping, Optional, Tuple


def copy_archive(
    genuine: Path,
    archive_file: Path,
    replaced: Optional[Mapping[str, bytes]] = None,
    added: Iterable[Tuple[tarfile.TarInfo, bytes]] = (),
) -> None:
    """
    Writes `genuine`'s members to `archive_file`, those named in `replaced` with the contents given there,
    then the members `added`, with their contents.
    """
    with tarfile.open(genuine) as source, tarfile.open(archive_file, "w:gz") as archive:
        copied = [(member, source.extractfile(member).read() if member.isfile() else b"") for member in source]
        for member, data in [*copied, *added]:
            contents = (replaced or {}).get(member.name, data)
            member.size = len(contents)
            archive.addfile(member, io.BytesIO(contents))
