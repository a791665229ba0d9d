"""
The plain PyTorch script that benchmarks/train_end_to_end.py times `allennlp train` against: the same
data files, vocabulary, batches, model, optimizer, seeds and outputs, written by hand with torch alone
(no AllenNLP import).

- reading: JSON lines, whitespace tokens; vocabulary: token counts over training then validation data,
  most frequent first, padding 0 and unknown 1 (label vocabularies unpadded), as AllenNLP orders them;
- batches: each task's instances in file order, in groups of `batch_size`, the tasks in turn (AllenNLP's
  "homogeneous_roundrobin" scheduler with `"shuffle": false`), padded with 0 to the batch's longest;
- model: AllenNLP's initialisation order under its seeds (torch 133): a Xavier-initialised embedding, a
  bidirectional LSTM run on packed sequences, and per task a masked mean and a linear layer;
- each batch: cross-entropy loss, accuracy, backward, optimizer step; then a validation pass; then the
  weights, vocabulary and configuration in a `model.tar.gz`.

    python benchmarks/plain_train.py CONFIG.json SERIALIZATION_DIR

reads the AllenNLP configuration the benchmark writes (data paths, sizes, optimizer) so that both
programs are given the same job.
"""

import json
import random
import sys
import tarfile
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import torch
from phase_clock import PhaseClock
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

Example = Tuple[List[str], str]
Batch = Tuple[str, torch.Tensor, torch.Tensor]
PADDING, UNKNOWN = "@@PADDING@@", "@@UNKNOWN@@"


class PlainModel(torch.nn.Module):
    """Embedding, bidirectional LSTM, and per task a masked mean and a linear layer."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, labels: Dict[str, int]) -> None:
        super().__init__()
        weight = torch.empty(vocab_size, embedding_dim)
        torch.nn.init.xavier_uniform_(weight)  # AllenNLP's Embedding: no normal_ draw first.
        self.embedding = torch.nn.Embedding(vocab_size, embedding_dim, _weight=weight)
        self.encoder = torch.nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.heads = torch.nn.ModuleDict(
            {task: torch.nn.Linear(2 * hidden_size, count) for task, count in labels.items()}
        )

    def forward(self, task: str, token_ids: torch.Tensor) -> torch.Tensor:
        mask = token_ids != 0
        lengths = mask.sum(1)
        packed = pack_padded_sequence(self.embedding(token_ids), lengths, batch_first=True, enforce_sorted=False)
        encoded, _ = pad_packed_sequence(self.encoder(packed)[0], batch_first=True, total_length=token_ids.size(1))
        pooled = (encoded * mask.unsqueeze(-1)).sum(1) / lengths.clamp(min=1).unsqueeze(-1)
        return self.heads[task](pooled)


def read(path: str) -> List[Example]:
    with open(path) as lines:
        return [(record["text"].split(), record["label"]) for record in map(json.loads, lines)]


def vocabulary(counts: Counter, padded: bool) -> Dict[str, int]:
    """Most frequent first, ties in order of first appearance (AllenNLP's order)."""
    index = {PADDING: 0, UNKNOWN: 1} if padded else {}
    for item, _ in sorted(counts.items(), key=lambda pair: pair[1], reverse=True):
        index.setdefault(item, len(index))
    return index


def batches(indexed: Dict[str, List[Tuple[List[int], int]]], batch_size: int) -> Iterator[Batch]:
    """Each task's examples in order, in groups of `batch_size`, the tasks in turn; padded tensors."""
    groups = {
        task: [examples[i : i + batch_size] for i in range(0, len(examples), batch_size)]
        for task, examples in indexed.items()
    }
    for round_index in range(max(len(task_groups) for task_groups in groups.values())):
        for task, task_groups in groups.items():
            if round_index < len(task_groups):
                group = task_groups[round_index]
                width = max(len(ids) for ids, _ in group)
                tokens = torch.tensor([ids + [0] * (width - len(ids)) for ids, _ in group])
                yield task, tokens, torch.tensor([label for _, label in group])


def run_epoch(model: PlainModel, data: Iterator[Batch], optimizer: torch.optim.Optimizer = None) -> Dict[str, float]:
    """Trains on `data` with `optimizer`, or evaluates without one; mean batch loss and accuracy."""
    model.train(optimizer is not None)
    total_loss, correct, count, num_batches = 0.0, 0, 0, 0
    with torch.set_grad_enabled(optimizer is not None):
        for task, tokens, labels in data:
            logits = model(task, tokens)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total_loss += loss.item()
            correct += int((logits.argmax(-1) == labels).sum())
            count += len(labels)
            num_batches += 1
    return {"loss": total_loss / num_batches, "accuracy": correct / count}


def main(config_path: str, serialization_dir: str) -> None:
    clock = PhaseClock()
    config = json.loads(Path(config_path).read_text())
    random.seed(13370)
    torch.manual_seed(133)  # AllenNLP's default seeds.
    splits = {"train": config["train_data_path"], "validation": config["validation_data_path"]}
    with clock.phase("reading"):
        data = {split: {task: read(path) for task, path in sorted(paths.items())} for split, paths in splits.items()}
    with clock.phase("vocabulary"):
        token_counts: Counter = Counter()
        label_counts: Dict[str, Counter] = {task: Counter() for task in data["train"]}
        for split in data.values():
            for task, examples in split.items():
                for tokens, label in examples:
                    token_counts.update(tokens)
                    label_counts[task][label] += 1
        tokens_index = vocabulary(token_counts, padded=True)
        labels_index = {task: vocabulary(counts, padded=False) for task, counts in label_counts.items()}
    with clock.phase("indexing"):
        indexed = {
            split: {
                task: [
                    ([tokens_index.get(token, 1) for token in tokens], labels_index[task][label])
                    for tokens, label in examples
                ]
                for task, examples in tasks.items()
            }
            for split, tasks in data.items()
        }
    model_config = config["model"]
    embedding_dim = model_config["backbone"]["text_field_embedder"]["token_embedders"]["tokens"]["embedding_dim"]
    hidden_size = model_config["backbone"]["encoder"]["hidden_size"]
    model = PlainModel(
        len(tokens_index), embedding_dim, hidden_size, {task: len(index) for task, index in labels_index.items()}
    )
    optimizer_config = dict(config["trainer"]["optimizer"])
    assert optimizer_config.pop("type") == "adam", optimizer_config
    optimizer = torch.optim.Adam(model.parameters(), **optimizer_config)
    batch_size = config["data_loader"]["scheduler"]["batch_size"]
    with clock.phase("epoch"):
        training = run_epoch(model, batches(indexed["train"], batch_size), optimizer)
    with clock.phase("validation"):
        validation = run_epoch(model, batches(indexed["validation"], batch_size))
    output = Path(serialization_dir)
    with clock.phase("archive"):
        output.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), output / "weights.th")
        vocabularies = {"tokens": tokens_index, **{f"{task}_labels": index for task, index in labels_index.items()}}
        (output / "vocabulary.json").write_text(json.dumps(vocabularies))
        with tarfile.open(output / "model.tar.gz", "w:gz") as archive:
            for name in ("weights.th", "vocabulary.json"):
                archive.add(output / name, arcname=name)
            archive.add(config_path, arcname="config.json")
    clock.values.update(training_loss=training["loss"], validation_loss=validation["loss"])
    clock.write()


if __name__ == "__main__":
    main(*sys.argv[1:])
