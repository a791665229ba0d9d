"""
Tampered model archives, opened the ways AllenNLP opens archives: each is refused with an error naming
the archive and the member, and nothing is left outside (nor in the temporary directory).
"""

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest
from allennlp.common import Params, file_utils
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.nn.initializers import Initializer

from allennlp_multitask.common.archive_extraction import UnsafeArchiveError
from tests.commands.runs import DATA, allennlp
from tests.common.archives import copy_archive

# A member: name, type, link target; "{outside}" stands for the directory that must stay untouched. Archives
# are extracted two levels below `tmp_path` (a temporary directory in `tmp_path / "extract"`, or
# cached_path's in `tmp_path / "cache"`), and `outside` is `tmp_path / "outside"`, holding `secret.txt`.
Member = Tuple[str, bytes, str]
PLANTED: Member = ("../../outside/planted.txt", tarfile.REGTYPE, "")

# Each tampering: the member its refusal names, and the members it adds to a genuine archive.
TAMPERINGS: Dict[str, Tuple[str, List[Member]]] = {
    "parent_path": (PLANTED[0], [PLANTED]),
    "absolute_path": ("{outside}/planted.txt", [("{outside}/planted.txt", tarfile.REGTYPE, "")]),
    "symlink_out_then_write_through": (
        "escape",
        [("escape", tarfile.SYMTYPE, "../../outside"), ("escape/planted.txt", tarfile.REGTYPE, "")],
    ),
    "hardlink_out_then_write_through": (
        "stolen",
        [("stolen", tarfile.LNKTYPE, "{outside}/secret.txt"), ("stolen", tarfile.REGTYPE, "")],
    ),
    "character_device": ("null", [("null", tarfile.CHRTYPE, "")]),
    "fifo": ("pipe", [("pipe", tarfile.FIFOTYPE, "")]),
    # A link that stays inside, then a path through it that only leaves once the link exists.
    "path_through_an_inside_link": (
        "sub/up/../../outside/planted.txt",
        [("sub/up", tarfile.SYMTYPE, ".."), ("sub/up/../../outside/planted.txt", tarfile.REGTYPE, "")],
    ),
}


def tampered(genuine: Path, tampering: str, outside: Path, archive_file: Path) -> str:
    """Writes `genuine`'s members and then the tampering's to `archive_file`; returns the member to refuse."""
    refused, members = TAMPERINGS[tampering]
    added = []
    for name, kind, linkname in members:
        member = tarfile.TarInfo(name.format(outside=outside))
        member.type, member.linkname = kind, linkname.format(outside=outside)
        member.devmajor, member.devminor = 1, 3  # /dev/null, for the character device
        added.append((member, b"planted" if member.isreg() else b""))
    copy_archive(genuine, archive_file, added=added)
    return refused.format(outside=outside)


def tree(root: Path) -> Dict[str, Optional[bytes]]:
    """Every path under `root` (but lock files), with the contents of regular files."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() and not path.is_symlink() else None
        for path in root.rglob("*")
        if path.suffix != ".lock"
    }


TASKS = ["sentiment", "topic"]
ENTRY_POINTS: Dict[str, Callable[[Path, pytest.MonkeyPatch], object]] = {
    "predict": lambda archive, monkeypatch: allennlp(
        *["predict", str(archive), DATA + "predict_inputs.jsonl", "--silent"],
        *["--output-file", str(archive.parent / "predictions.jsonl")],
        monkeypatch=monkeypatch,
    ),
    "evaluate": lambda archive, monkeypatch: allennlp(
        "evaluate",
        str(archive),
        json.dumps({task: f"{DATA}{task}_validation.jsonl" for task in TASKS}),
        monkeypatch=monkeypatch,
    ),
    "from_archive": lambda archive, monkeypatch: Model.from_params(
        Params({"type": "from_archive", "archive_file": str(archive)})
    ),
    "pretrained_initializer": lambda archive, monkeypatch: Initializer.from_params(
        Params({"type": "pretrained", "weights_file_path": str(archive)})
    ),
    # Through cached_path's extraction.
    "vocabulary": lambda archive, monkeypatch: Vocabulary.from_files(str(archive)),
}


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`tmp_path / "outside"`, with temporary directories and AllenNLP's cache put beside it."""
    for directory in ["extract", "cache", "outside", "archive"]:
        (tmp_path / directory).mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "extract"))
    monkeypatch.setattr(file_utils, "CACHE_DIRECTORY", str(tmp_path / "cache"))
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    return tmp_path / "outside"


@pytest.mark.parametrize("tampering", TAMPERINGS)
@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_tampered_archive_is_refused_and_nothing_is_left_outside(
    entry_point, tampering, example_archive, outside, tmp_path, in_repo_root, monkeypatch
):
    archive = tmp_path / "archive" / "model.tar.gz"
    member = tampered(example_archive, tampering, outside, archive)
    before = tree(tmp_path)
    with pytest.raises(UnsafeArchiveError) as refusal:
        ENTRY_POINTS[entry_point](archive, monkeypatch)
    assert str(archive) in str(refusal.value) and repr(member) in str(refusal.value)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_genuine_archive_loads_and_leaves_no_temporary_directory(
    entry_point, example_archive, outside, tmp_path, in_repo_root, monkeypatch
):
    ENTRY_POINTS[entry_point](example_archive, monkeypatch)
    assert not list((tmp_path / "extract").iterdir())


@pytest.mark.parametrize("damage", ["truncated", "config_without_a_model"])
@pytest.mark.parametrize("entry_point", ["predict", "from_archive"])
def test_the_temporary_directory_is_removed_when_loading_fails(
    entry_point, damage, example_archive, outside, tmp_path, in_repo_root, monkeypatch
):
    archive = tmp_path / "archive" / "model.tar.gz"
    if damage == "truncated":  # Extraction fails.
        archive.write_bytes(example_archive.read_bytes()[:20_000])
    else:  # Extraction succeeds, then building the model fails.
        copy_archive(example_archive, archive, {"config.json": b"{}"})
    with pytest.raises(Exception):  # noqa: B017  (whichever: the failure is not the point)
        ENTRY_POINTS[entry_point](archive, monkeypatch)
    assert not list((tmp_path / "extract").iterdir())


def test_archives_are_checked_before_anything_is_written(example_archive, outside, tmp_path):
    archive = tmp_path / "archive" / "model.tar.gz"
    tampered(example_archive, "fifo", outside, archive)
    with tarfile.open(archive) as opened, pytest.raises(UnsafeArchiveError):
        opened.extractall(tmp_path / "extract")
    assert not list((tmp_path / "extract").iterdir())


def test_an_explicit_filter_is_left_to_the_caller(example_archive, outside, tmp_path):
    archive = tmp_path / "archive" / "model.tar.gz"
    tampered(example_archive, "absolute_path", outside, archive)
    with tarfile.open(archive) as opened:
        opened.extractall(tmp_path / "extract", filter="tar")  # strips the leading "/"
    assert (tmp_path / "extract" / str(outside).lstrip("/") / "planted.txt").read_bytes() == b"planted"


@pytest.mark.slow
@pytest.mark.subprocess
def test_importing_on_a_python_without_extraction_filters_says_so():
    script = "import tarfile; del tarfile.data_filter; import allennlp_multitask"
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert finished.returncode != 0
    assert "ImportError: allennlp_multitask extracts archives with the tarfile extraction filters" in finished.stderr
