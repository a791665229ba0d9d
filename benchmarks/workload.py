"""
The pieces the routing benchmarks share: a backbone and classifier heads, homogeneous and mixed batches,
the hand-written direct call (the cost floor), and interleaved timing.

Not a test module: pytest collects only `tests/`. The scripts beside it import it by name (Python puts
a script's own folder first on `sys.path`).
"""

import argparse
import gc
import random
import re
import statistics
import time
import timeit
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Sequence

import torch
from allennlp.data import Vocabulary
from allennlp.models.heads import ClassifierHead
from allennlp.models.multitask import MultiTaskModel as AllenNlpMultiTaskModel
from allennlp.modules import FeedForward
from allennlp.modules.seq2seq_encoders import FeedForwardEncoder, LstmSeq2SeqEncoder, PytorchTransformer
from allennlp.modules.seq2vec_encoders import BagOfEmbeddingsEncoder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.modules.token_embedders import Embedding
from allennlp.nn import Activation

from allennlp_multitask.models import MultiTaskModel
from allennlp_multitask.modules.backbones.embedder_backbone import EmbedderBackbone

NUM_LABELS = 4
LAYOUTS = ("homogeneous", "mixed")
BACKBONES = ("lstm", "feedforward", "transformer")
# (heads, width): a few wide heads, and many narrow ones, where per-head routing costs weigh most.
CASES = [(3, 128), (16, 32)]
# Process CPU time leaves out the time a process waits for a core on a shared machine.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def add_cpu_timing_arguments(parser: argparse.ArgumentParser, several_backbones: bool = False) -> None:
    """
    The options the CPU benchmarks share: backbone (`--backbones`, each in turn, if `several_backbones`),
    batch size, threads, clock and seed.
    """
    if several_backbones:
        parser.add_argument("--backbones", choices=BACKBONES, nargs="+", default=list(BACKBONES), help="encoders")
    else:
        parser.add_argument("--backbone", choices=BACKBONES, default="lstm", help="the backbone's encoder")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="process CPU time or wall time")
    parser.add_argument("--seed", type=int, default=13)


def cpu_model() -> str:
    """The CPU's model name and core count, from /proc/cpuinfo."""
    with open("/proc/cpuinfo") as cpuinfo:
        names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return f"{names[0]} ({len(names)} cores)" if names else "unknown CPU"


def build_backbone(kind: str, vocab: Vocabulary, width: int, vocab_size: int) -> EmbedderBackbone:
    """
    Token embeddings, then a bidirectional LSTM (as in the bundled example), a two-layer feedforward, or a
    small transformer (two layers of four attention heads, sinusoidal positions, no dropout).
    """
    embedder = BasicTextFieldEmbedder({"tokens": Embedding(embedding_dim=width, num_embeddings=vocab_size)})
    if kind == "lstm":
        encoder = LstmSeq2SeqEncoder(width, width // 2, bidirectional=True)
    elif kind == "transformer":
        encoder = PytorchTransformer(width, 2, 2 * width, 4, positional_encoding="sinusoidal", dropout_prob=0.0)
    else:
        encoder = FeedForwardEncoder(FeedForward(width, 2, width, Activation.by_name("relu")()))
    return EmbedderBackbone(vocab, embedder, encoder)


def head_names(count: int) -> List[str]:
    """Head `i` serves task `task{i}` (AllenNLP's model needs head and task names to agree)."""
    return [f"task{index}" for index in range(count)]


def build_heads(vocab: Vocabulary, names: Sequence[str], width: int) -> Dict[str, ClassifierHead]:
    """AllenNLP classifier heads: averaged bag of embeddings, one `width` feedforward layer, a linear layer."""
    return {
        name: ClassifierHead(
            vocab,
            seq2vec_encoder=BagOfEmbeddingsEncoder(width, averaged=True),
            feedforward=FeedForward(width, 1, width, Activation.by_name("relu")()),
            num_labels=NUM_LABELS,
        )
        for name in names
    }


def layout_tasks(layout: str, names: Sequence[str], batch_size: int) -> List[str]:
    """
    The task of each row: all the first head's for "homogeneous"; for "mixed", the heads in turn
    (row `i` is head `i % heads`'s), so that every head's rows are spread out and need a gather.
    """
    if layout == "homogeneous":
        return [names[0]] * batch_size
    if layout == "mixed":
        return [names[row % len(names)] for row in range(batch_size)]
    raise ValueError(f"Unknown layout '{layout}'; layouts: {LAYOUTS}.")


def make_text_batch(tasks: List[str], num_tokens: int, vocab_size: int, generator: torch.Generator) -> Dict[str, Any]:
    """Token ids (padded with 0, lengths from half of `num_tokens` up), labels and the `task` list."""
    batch_size = len(tasks)
    lengths = torch.randint(num_tokens // 2, num_tokens + 1, (batch_size,), generator=generator)
    token_ids = torch.randint(1, vocab_size, (batch_size, num_tokens), generator=generator)
    token_ids = token_ids * (torch.arange(num_tokens) < lengths.unsqueeze(1))
    labels = torch.randint(0, NUM_LABELS, (batch_size,), generator=generator)
    return {"text": {"tokens": {"tokens": token_ids}}, "label": labels, "task": tasks}


def index_tensor(rows: List[int], device: torch.device) -> torch.Tensor:
    """Row indices on `device`; a pinned, non-blocking copy for a GPU, which so need not wait."""
    indices = torch.tensor(rows)
    return indices if device.type == "cpu" else indices.pin_memory().to(device, non_blocking=True)


def direct_forward(
    backbone: torch.nn.Module,
    heads: Mapping[str, torch.nn.Module],
    batch: Mapping[str, Any],
    keep_outputs: bool = False,
    gather_once: bool = False,
) -> Dict[str, torch.Tensor]:
    """
    The floor, as one would write it by hand for these modules: the backbone once; the rows of each
    head (head `task{i}` serves task `task{i}`) found from the `task` list and gathered with one index
    tensor, or passed whole when they are the whole batch; the head losses summed. It returns only the
    loss; with `keep_outputs`, also the backbone's and each head's outputs, as `{head}_{key}`, as a
    multitask model must. With `gather_once`, a mixed batch's inputs are gathered once for all heads,
    in head order, and split into each head's part (as our model does), rather than once per head.
    """
    encoded = backbone(text=batch["text"])
    rows_of_task: Dict[str, List[int]] = {}
    for row, task in enumerate(batch["task"]):
        rows_of_task.setdefault(task, []).append(row)
    inputs = {"encoded_text": encoded["encoded_text"], "encoded_text_mask": encoded["encoded_text_mask"]}
    inputs["label"] = batch["label"]
    device = batch["label"].device
    if len(rows_of_task) == 1:
        head_inputs = [inputs]
    elif gather_once:
        indices = index_tensor([row for rows in rows_of_task.values() for row in rows], device)
        lengths = [len(rows) for rows in rows_of_task.values()]
        parts = {name: value.index_select(0, indices).split(lengths) for name, value in inputs.items()}
        head_inputs = [{name: parts[name][index] for name in inputs} for index in range(len(rows_of_task))]
    else:
        head_inputs = []
        for rows in rows_of_task.values():
            indices = index_tensor(rows, device)
            head_inputs.append({name: value.index_select(0, indices) for name, value in inputs.items()})
    outputs = dict(encoded) if keep_outputs else {}
    losses = []
    for task, arguments in zip(rows_of_task, head_inputs):
        head_outputs = heads[task](**arguments)
        if keep_outputs:
            outputs.update((f"{task}_{key}", value) for key, value in head_outputs.items())
        losses.append(head_outputs["loss"])
    outputs["loss"] = sum(losses[1:], losses[0])
    return outputs


class UncheckedMultiTaskModel(MultiTaskModel):
    """Our model without its once-per-step `isfinite` check of the loss, to price that check."""

    @staticmethod
    def _check_finite(loss: torch.Tensor, head_losses: Mapping[str, torch.Tensor]) -> None:
        pass


assert hasattr(MultiTaskModel, "_check_finite"), "MultiTaskModel no longer has _check_finite to skip."


def fresh_inputs(value: Any) -> Any:
    """A copy of the nested dicts and lists of a batch (tensors shared): AllenNLP's model rewrites them."""
    if isinstance(value, dict):
        return {key: fresh_inputs(item) for key, item in value.items()}
    return list(value) if isinstance(value, list) else value


@dataclass
class Variant:
    """One way to run a training step: `forward(inputs)` returns outputs with a `loss`."""

    name: str
    forward: Callable[[Dict[str, Any]], Dict[str, torch.Tensor]]


def python_work(microseconds: float) -> Callable[[], None]:
    """
    A function that runs pure Python (filling a dict; no tensor ops) for about `microseconds` when
    timed on its own, calibrated here.
    """

    def fill(count: int) -> None:
        table = {}
        for number in range(count):
            table[number] = str(number)

    seconds_per_item = min(timeit.repeat(lambda: fill(1000), number=100, repeat=5)) / 100 / 1000
    count = round(microseconds * 1e-6 / seconds_per_item)
    return lambda: fill(count)


def variants_for(
    vocab: Vocabulary,
    backbone: torch.nn.Module,
    heads: Dict[str, torch.nn.Module],
    device: torch.device,
    python_work_us: float = 0.0,
) -> List[Variant]:
    """
    The direct call, the direct call returning the same outputs as the models (gathering rows once per
    head, or once for all heads as ours does), ours, ours without the `isfinite` check, AllenNLP's, the
    direct call again, and, if `python_work_us` is set, the direct call after that much pure Python
    work: what Python work costs inside a training step, between tensor ops, rather than timed alone.
    """
    ours = MultiTaskModel(vocab, backbone, heads).to(device)
    unchecked = UncheckedMultiTaskModel(vocab, backbone, heads).to(device)
    allennlp = AllenNlpMultiTaskModel(vocab, backbone, heads).to(device)
    variants = [
        Variant("direct", lambda inputs: direct_forward(backbone, heads, inputs)),
        Variant("direct, with outputs", lambda inputs: direct_forward(backbone, heads, inputs, keep_outputs=True)),
        Variant(
            "direct, with outputs, one gather",
            lambda inputs: direct_forward(backbone, heads, inputs, keep_outputs=True, gather_once=True),
        ),
        Variant("ours", lambda inputs: ours(**inputs)),
        Variant("ours, no isfinite", lambda inputs: unchecked(**inputs)),
        Variant("allennlp", lambda inputs: allennlp(**inputs)),
        # The direct call again: how far apart two runs of the same code come out, i.e. the noise.
        Variant("direct, again", lambda inputs: direct_forward(backbone, heads, inputs)),
    ]
    if python_work_us:
        work = python_work(python_work_us)

        def direct_after_work(inputs: Dict[str, Any]) -> Dict[str, torch.Tensor]:
            work()
            return direct_forward(backbone, heads, inputs)

        variants.append(Variant(f"direct + {python_work_us:g} µs Python", direct_after_work))
    return variants


def time_interleaved(
    variants: Sequence[Variant],
    batch: Dict[str, Any],
    parameters: Sequence[torch.nn.Parameter],
    steps: int,
    warmup: int,
    clock: Callable[[], float],
    synchronize: Callable[[], None] = lambda: None,
    step: Callable[[Variant, Dict[str, Any]], Any] = lambda variant, inputs: variant.forward(inputs)["loss"].backward(),
) -> Dict[str, List[float]]:
    """
    Seconds per training `step` of each variant (by default its forward and the loss's backward), by
    `clock`, one entry per round. Each round runs every variant once, in an order shuffled from round to
    round (seeded), so that drifts in machine load hit all variants alike and no variant always follows
    the same one (a step can run faster after one that left the caches as it needs them). Fresh inputs
    and cleared gradients are prepared outside the timed region.
    """
    times: Dict[str, List[float]] = {variant.name: [] for variant in variants}
    order = list(variants)
    shuffle = random.Random(0).shuffle
    gc.collect()
    for round_index in range(warmup + steps):
        shuffle(order)
        for variant in order:
            inputs = fresh_inputs(batch)
            for parameter in parameters:
                parameter.grad = None
            synchronize()
            start = clock()
            step(variant, inputs)
            synchronize()
            if round_index >= warmup:
                times[variant.name].append(clock() - start)
    return times


def overhead_cells(times: Mapping[str, List[float]], baseline: str = "direct") -> Dict[str, str]:
    """
    The baseline's median step in ms; for each other variant, the median of its per-round differences
    from the baseline (rounds run each variant once, close in time, so their differences cancel most
    of the machine's drifts), in µs and as a percentage of the baseline's median.
    """
    floor = statistics.median(times[baseline])
    cells = {baseline: f"{floor * 1e3:.3f}"}
    for name, values in times.items():
        if name != baseline:
            difference = statistics.median(value - base for value, base in zip(values, times[baseline]))
            cells[name] = f"{difference * 1e6:+.0f} µs ({difference / floor:+.2%})"
    return cells


def status_kb(field: str) -> int:
    """A field of this process's /proc status, in kB (e.g. `VmRSS`, the resident memory now)."""
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))


def peak_memory_of(steps: Callable[[], None]) -> int:
    """
    Bytes of resident memory that `steps` add at their peak: Linux's VmHWM, reset first, above the resident
    memory before them. Run it in a fresh process (forked before any step ran), which reuses no freed memory.
    """
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM, the peak resident memory, to the resident memory now
    before = status_kb("VmRSS")
    steps()
    return (status_kb("VmHWM") - before) * 1024


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table, columns padded to their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in [header, ["-" * width for width in widths], *rows]:
        print("| " + " | ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) + " |")
