"""Importing the package makes each of AllenNLP's writers that a run goes through write atomically."""

import json
import os
import tarfile

import allennlp.commands.train
import allennlp.common.util
import allennlp.evaluation.evaluator
import allennlp.models
import allennlp.models.archival
import allennlp.training.gradient_descent_trainer
import allennlp.training.util
import pytest
from allennlp.common import Params
from allennlp.common.meta import Meta
from allennlp.data import Vocabulary

from allennlp_multitask.common import atomic_files, atomic_outputs


def test_every_writer_a_run_goes_through_is_replaced_where_it_is_looked_up():
    assert Params.to_file is atomic_outputs.params_to_file
    assert Meta.to_file is atomic_outputs.meta_to_file
    assert Vocabulary.save_to_files is atomic_outputs.save_vocabulary
    for module in [allennlp.common.util, allennlp.evaluation.evaluator, allennlp.training.util]:
        assert module.dump_metrics is atomic_outputs.dump_metrics, module
    for module in [allennlp.models.archival, allennlp.models, allennlp.commands.train]:
        assert module.archive_model is atomic_outputs.archive_model, module
    assert allennlp.training.gradient_descent_trainer.hardlink_or_copy is atomic_files.link_atomically


def test_the_writers_write_what_allennlps_wrote(tmp_path):
    Params({"model": {"type": "multitask"}}).to_file(str(tmp_path / "config.json"))
    assert json.loads((tmp_path / "config.json").read_text()) == {"model": {"type": "multitask"}}
    allennlp.common.util.dump_metrics(str(tmp_path / "metrics.json"), {"epoch": 1})
    allennlp.common.util.dump_metrics(None, {"epoch": 1}, log=True)  # Logs only, as AllenNLP's.
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"epoch": 1}
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["a", "b"], "tokens")
    vocab.save_to_files(str(tmp_path / "vocabulary"))
    vocab.save_to_files(str(tmp_path / "vocabulary"))  # Again, over the first: as `-r` does.
    assert Vocabulary.from_files(str(tmp_path / "vocabulary")).get_token_to_index_vocabulary() == (
        vocab.get_token_to_index_vocabulary()
    )
    (tmp_path / "best.th").write_bytes(b"weights")
    archive = allennlp.commands.train.archive_model(str(tmp_path), archive_path=str(tmp_path))
    assert archive == str(tmp_path / "model.tar.gz")
    with tarfile.open(archive) as opened:
        assert {"config.json", "weights.th", "vocabulary"} <= set(opened.getnames())
    assert not [name for name in os.listdir(tmp_path) if name.endswith(atomic_files.PARTIAL_SUFFIX)]


def test_a_failed_archive_leaves_the_old_one(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"the old archive")
    with pytest.raises(RuntimeError, match="does not exist, unable to archive model"):
        allennlp.models.archival.archive_model(str(tmp_path))
    assert (tmp_path / "model.tar.gz").read_bytes() == b"the old archive"
