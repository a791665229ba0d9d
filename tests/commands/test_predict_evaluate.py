"""`allennlp predict` and `allennlp evaluate`, run in-process on archives trained in the test session."""

import copy
import json
import re

import numpy
import pytest
import torch
from allennlp.common import Params
from allennlp.common.util import sanitize
from allennlp.data import Batch, DatasetReader, Vocabulary
from allennlp.data.fields import MetadataField
from allennlp.models import MultiTaskModel as AllenNlpMultiTaskModel
from allennlp.models.archival import archive_model, load_archive

from allennlp_multitask import MultiTaskModel
from tests.commands.runs import DATA, allennlp, predict
from tests.models.conll_example import read_instances
from tests.predictors.multitask_outputs import EXAMPLE_LABELS, assert_same_head_outputs, head_keys


def test_predict_mixed_task_json_lines(example_archive, in_repo_root, tmp_path, monkeypatch):
    # The file examples/train_and_predict.sh predicts, one line at a time (the default) and batched.
    inputs = DATA + "predict_inputs.jsonl"
    one_by_one = predict(example_archive, inputs, tmp_path / "single.jsonl", monkeypatch=monkeypatch)
    batched = predict(example_archive, inputs, tmp_path / "batch.jsonl", "--batch-size", "4", monkeypatch=monkeypatch)
    tasks = [json.loads(line)["task"] for line in (in_repo_root / inputs).read_text().splitlines()]
    assert [output[f"{task}_label"] for task, output in zip(tasks, batched)] == EXAMPLE_LABELS
    for task, single, output in zip(tasks, one_by_one, batched):
        assert head_keys(output) == {f"{task}_logits", f"{task}_probs", f"{task}_label"}
        assert_same_head_outputs(output, single)


def test_predictions_can_leave_the_backbone_outputs_out(example_archive, in_repo_root, tmp_path, monkeypatch):
    inputs = DATA + "predict_inputs.jsonl"
    full = predict(example_archive, inputs, tmp_path / "full.jsonl", monkeypatch=monkeypatch)
    lean_options = ["-o", json.dumps({"model.include_backbone_outputs": False})]
    lean = predict(example_archive, inputs, tmp_path / "lean.jsonl", *lean_options, monkeypatch=monkeypatch)
    # By default, as AllenNLP's model does, predictions hold the backbone's outputs.
    assert all({"encoded_text", "encoded_text_mask"} <= output.keys() for output in full)
    for output, lean_output in zip(full, lean, strict=True):
        assert lean_output.keys() == head_keys(output) | {"task", "id"}
        assert_same_head_outputs(lean_output, output)


def test_the_conll_example_predicts_from_tokens_alone(conll_example_run, in_repo_root, tmp_path, monkeypatch):
    archive = conll_example_run / "model.tar.gz"
    sentences = [[token.text for token in instance["tokens"]] for instance in read_instances("conll", "validation")]
    inputs = tmp_path / "tokens.jsonl"
    inputs.write_text("".join(json.dumps({"task": "conll", "tokens": tokens}) + "\n" for tokens in sentences))
    from_tokens = predict(archive, str(inputs), tmp_path / "from_tokens.jsonl", monkeypatch=monkeypatch)
    reader_options = ["--use-dataset-reader", "--multitask-head", "conll"]
    from_file = predict(
        archive, DATA + "conll_validation.txt", tmp_path / "from_file.jsonl", *reader_options, monkeypatch=monkeypatch
    )
    assert len(from_tokens) == len(from_file) == len(sentences)
    for tokens, output, with_gold_tags in zip(sentences, from_tokens, from_file):
        assert len(output["pos_tags"]) == len(output["ner_tags"]) == len(tokens)
        assert (output["pos_tags"], output["ner_tags"]) == (with_gold_tags["pos_tags"], with_gold_tags["ner_tags"])
        # No gold tags, no loss.
        assert not [key for key in output if key.endswith("loss")]


def test_predict_with_the_dataset_reader_of_one_task(example_archive, in_repo_root, tmp_path, monkeypatch):
    inputs = DATA + "topic_validation.jsonl"
    outputs = predict(
        example_archive,
        inputs,
        tmp_path / "topic.jsonl",
        *["--use-dataset-reader", "--multitask-head", "topic", "--batch-size", "16"],
        monkeypatch=monkeypatch,
    )
    gold = [json.loads(line)["topic"] for line in (in_repo_root / inputs).read_text().splitlines()]
    assert len(outputs) == len(gold) == 50
    assert all(head_keys(output) == {"topic_logits", "topic_probs", "topic_label"} for output in outputs)
    # The example model is right on (nearly) all of them, which it can only be with outputs in input order.
    assert sum(output["topic_label"] == label for output, label in zip(outputs, gold)) >= 45


def test_evaluate_on_a_file_per_task(example_archive, in_repo_root, tmp_path, monkeypatch):
    files = json.dumps({"sentiment": DATA + "sentiment_validation.jsonl", "topic": DATA + "topic_validation.jsonl"})
    metrics_file, predictions_file = tmp_path / "metrics.json", tmp_path / "predictions.jsonl"
    allennlp(
        *["evaluate", str(example_archive), files],
        *["--output-file", str(metrics_file), "--predictions-output-file", str(predictions_file)],
        monkeypatch=monkeypatch,
    )
    metrics = json.loads(metrics_file.read_text())
    assert metrics["sentiment_accuracy"] > 0.9 and metrics["topic_accuracy"] > 0.9 and "loss" in metrics
    # One line per batch: its inputs, and each head's outputs for the batch's rows of its task.
    batches = [json.loads(line) for line in predictions_file.read_text().splitlines()]
    assert sum(len(batch["task"]) for batch in batches) == 100
    for batch in batches:
        for task in set(batch["task"]):
            assert len(batch[f"{task}_label"]) == batch["task"].count(task)


def test_evaluate_takes_allennlps_batch_size_option(example_archive, in_repo_root, tmp_path, monkeypatch):
    # The example's validation_data_loader batches 16 instances, which would make 4 batches of each task.
    files = json.dumps({"sentiment": DATA + "sentiment_validation.jsonl", "topic": DATA + "topic_validation.jsonl"})
    predictions_file = tmp_path / "predictions.jsonl"
    options = ["--batch-size", "64", "--predictions-output-file", str(predictions_file)]
    allennlp("evaluate", str(example_archive), files, *options, monkeypatch=monkeypatch)
    batches = [json.loads(line)["task"] for line in predictions_file.read_text().splitlines()]
    assert sorted(batches) == [["sentiment"] * 50, ["topic"] * 50]


def test_quick_start_prints_the_metrics_of_the_model_it_archived(quick_start_run, in_repo_root, tmp_path, monkeypatch):
    run_dir, finished = quick_start_run
    printed = re.findall(r'validation_(\w+)_accuracy": ([\d.]+)', finished.stdout)
    files = json.dumps({"sentiment": DATA + "sentiment_validation.jsonl", "topic": DATA + "topic_validation.jsonl"})
    metrics_file = tmp_path / "metrics.json"
    archive = str(run_dir / "model.tar.gz")
    allennlp("evaluate", archive, files, "--output-file", str(metrics_file), monkeypatch=monkeypatch)
    archived = json.loads(metrics_file.read_text())
    assert {head: float(value) for head, value in printed} == {
        head: archived[f"{head}_accuracy"] for head in ["sentiment", "topic"]
    }


ALLENNLP_CLASS_INPUTS = [
    {"task": "sentiment", "sentence": "the film was great"},
    {"task": "topic", "sentence": "what is the best oven for pasta"},
    {"task": "sentiment", "sentence": "a bad team"},
    {"task": "topic", "sentence": "sports team"},
]


@pytest.fixture(scope="module")
def allennlp_class_run(tmp_path_factory):
    """
    An archive of AllenNLP's own `MultiTaskModel` class, given a few training steps: two tasks read by
    AllenNLP's `text_classification_json` reader (so they share their field names), on our `embedder`
    backbone (AllenNLP has no stock backbone but a transformer's, whose tokenizer fails under the
    transformers release we install). Returns the archive, and what AllenNLP's class predicts for
    `ALLENNLP_CLASS_INPUTS`, one instance at a time.
    """
    reader = {"type": "text_classification_json", "tokenizer": {"type": "whitespace"}}
    head = {"type": "classifier", "seq2vec_encoder": {"type": "boe", "embedding_dim": 8, "averaged": True}}
    config = {
        "dataset_reader": {"type": "multitask", "readers": {"sentiment": reader, "topic": copy.deepcopy(reader)}},
        "model": {
            "type": "multitask",
            "backbone": {
                "type": "embedder",
                "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 8}}},
            },
            "heads": {"sentiment": head, "topic": copy.deepcopy(head)},
            "arg_name_mapping": {"backbone": {"tokens": "text"}},
        },
    }
    readers = DatasetReader.from_params(Params(copy.deepcopy(config["dataset_reader"]))).readers

    def instance(task, sentence, label=None):
        made = readers[task].inner.text_to_instance(sentence, label)
        made.add_field("task", MetadataField(task))
        readers[task].apply_token_indexers(made)
        return made

    training = [
        instance("sentiment", "the film was great", "positive"),
        instance("topic", "pasta oven", "cooking"),
        instance("sentiment", "awful film", "negative"),
        instance("topic", "the best team", "sports"),
    ]
    vocab = Vocabulary.from_instances(training)
    model_params = copy.deepcopy(config["model"])
    model_params.pop("type")
    model = AllenNlpMultiTaskModel.from_params(Params(model_params), vocab=vocab)
    assert type(model) is AllenNlpMultiTaskModel
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = Batch(training)
    batch.index_instances(vocab)
    for _ in range(3):
        optimizer.zero_grad()
        model(**batch.as_tensor_dict())["loss"].backward()
        optimizer.step()
    model.eval()
    expected = [sanitize(model.forward_on_instance(instance(i["task"], i["sentence"]))) for i in ALLENNLP_CLASS_INPUTS]

    run = tmp_path_factory.mktemp("allennlp_class_run")
    Params(config).to_file(str(run / "config.json"))
    vocab.save_to_files(str(run / "vocabulary"))
    torch.save(model.state_dict(), run / "best.th")
    archive_model(run, weights="best.th")
    return run / "model.tar.gz", expected


def test_allennlp_class_archive_predicts_as_before(allennlp_class_run, tmp_path, monkeypatch):
    archive, expected = allennlp_class_run
    assert type(load_archive(str(archive)).model) is MultiTaskModel
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps(line) + "\n" for line in ALLENNLP_CLASS_INPUTS))
    one_by_one = predict(archive, str(inputs), tmp_path / "single.jsonl", monkeypatch=monkeypatch)
    for output, before, line in zip(one_by_one, expected, ALLENNLP_CLASS_INPUTS, strict=True):
        # Ours also names each output's task.
        assert output.pop("task") == line["task"]
        assert output.keys() == before.keys()
        for key, value in before.items():
            if numpy.asarray(value).dtype.kind == "f":
                numpy.testing.assert_allclose(output[key], value, atol=1e-5, err_msg=key)
            else:
                assert output[key] == value, key
    # Batched, both tasks share their fields and run as one batch; padding changes only backbone outputs.
    batched = predict(archive, str(inputs), tmp_path / "batch.jsonl", "--batch-size", "4", monkeypatch=monkeypatch)
    for output, before in zip(batched, expected, strict=True):
        assert_same_head_outputs(output, before)
