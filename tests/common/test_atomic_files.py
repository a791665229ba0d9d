"""Files and directories written atomically: a failed write leaves the old content and no temporary path."""

import os
from pathlib import Path

import pytest

from allennlp_multitask.common import atomic_files
from allennlp_multitask.common.atomic_files import link_atomically, remove_partial_files, replaced_atomically


class WriteFailed(Exception):
    pass


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(WriteFailed), replaced_atomically(target) as temporary:
        Path(temporary).write_text("half of the new")
        raise WriteFailed
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]
    with replaced_atomically(target) as temporary:
        Path(temporary).write_text("new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
@pytest.mark.parametrize("existing", [False, True])
def test_a_directory_is_replaced_as_a_whole(tmp_path, monkeypatch, existing, exchange):
    if not exchange:  # Where the system cannot swap two directories in one step.
        monkeypatch.setattr(atomic_files, "_exchange", lambda first, second: False)
    target = tmp_path / "vocabulary"
    if existing:
        target.mkdir()
        (target / "old.txt").write_text("old")
    with pytest.raises(WriteFailed), replaced_atomically(target, directory=True) as temporary:
        (Path(temporary) / "tokens.txt").write_text("half")
        raise WriteFailed
    assert sorted(os.listdir(target)) == ["old.txt"] if existing else not target.exists()
    with replaced_atomically(target, directory=True) as temporary:
        (Path(temporary) / "tokens.txt").write_text("new")
    assert sorted(os.listdir(target)) == ["tokens.txt"]
    assert os.listdir(tmp_path) == ["vocabulary"]


def test_a_link_replaces_its_target_in_one_step(tmp_path):
    (tmp_path / "model_state_e1_b0.th").write_text("weights")
    (tmp_path / "best.th").write_text("older weights")
    link_atomically(tmp_path / "model_state_e1_b0.th", tmp_path / "best.th")
    assert (tmp_path / "best.th").read_text() == "weights"
    assert os.path.samefile(tmp_path / "best.th", tmp_path / "model_state_e1_b0.th")


def test_what_unfinished_writes_left_behind_is_removed(tmp_path):
    (tmp_path / ".best.th.x1.partial").write_text("half")
    (tmp_path / ".vocabulary.x2.partial").mkdir()
    (tmp_path / "best.th").write_text("weights")
    remove_partial_files(tmp_path)
    assert os.listdir(tmp_path) == ["best.th"]
