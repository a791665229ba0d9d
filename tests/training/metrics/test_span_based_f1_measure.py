import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.training.metrics import SpanBasedF1Measure as AllenNlpSpanBasedF1Measure

from allennlp_multitask.training.metrics import SpanBasedF1Measure
from tests.training.metrics.workers import WorkerBatches, read_in_one_process, read_on_two_workers

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


@pytest.fixture
def vocab() -> Vocabulary:
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(TAGS, "tags")
    return vocab


def tagging_batch(seed: int, sentences: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random tag scores, gold tags and a mask of random sentence lengths (some all padding)."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(sentences, length, len(TAGS), generator=generator)
    gold = torch.randint(len(TAGS), (sentences, length), generator=generator)
    # Half the gold tags copy the prediction, so that some spans match.
    copied = torch.rand(sentences, length, generator=generator) < 0.5
    gold = torch.where(copied, scores.argmax(-1), gold)
    lengths = torch.randint(length + 1, (sentences,), generator=generator)
    return scores, gold, torch.arange(length) < lengths.unsqueeze(1)


# Workers' batches differ in size, sentence length and labels; one of worker 1's sentences is all padding.
BATCHES: WorkerBatches = [
    [tagging_batch(0, 4, 6), tagging_batch(1, 3, 9), tagging_batch(2, 5, 4)],
    [tagging_batch(3, 2, 5), tagging_batch(4, 6, 7), tagging_batch(5, 1, 3)],
]


@pytest.mark.distributed
def test_every_worker_gets_the_span_f1_of_one_process_over_all_instances_per_label_and_overall(vocab, tmp_path):
    results = read_on_two_workers(SpanBasedF1Measure(vocab, label_encoding="BIO"), BATCHES, tmp_path)

    expected = read_in_one_process(AllenNlpSpanBasedF1Measure(vocab, label_encoding="BIO"), BATCHES)
    assert {key.split("-")[-1] for key in expected} == {"PER", "LOC", "ORG", "overall"}
    assert 0 < expected["f1-measure-overall"] < 1
    assert results[0] == results[1] == expected


def test_in_one_process_it_is_allennlps_span_f1(vocab):
    batches = [BATCHES[0] + BATCHES[1]]
    ours = read_in_one_process(SpanBasedF1Measure(vocab, label_encoding="BIO"), batches)
    assert ours == read_in_one_process(AllenNlpSpanBasedF1Measure(vocab, label_encoding="BIO"), batches)


def test_a_failed_update_leaves_the_counts_as_they_were(vocab):
    metric = SpanBasedF1Measure(vocab, label_encoding="BIO")
    metric(*BATCHES[0][0])
    before = metric.get_metric()
    scores, gold, mask = BATCHES[0][1]
    with pytest.raises(ConfigurationError, match="contains an id >= 7"):
        metric(scores, gold + len(TAGS), mask)
    assert metric.get_metric() == before
