"""
What Jacobian descent costs on CPU: the training step and its peak memory with the `jacobian_descent`
trainer callback at each level, against plain backward, with 2, 4, 8 and 16 heads on three backbones,
side by side in one process. Every step is one mixed batch whose rows are dealt to the heads in turn, so
that every step has a row per head to aggregate.

The model is our `MultiTaskModel` with the routing benchmarks' backbone (embeddings, then a bidirectional
LSTM, a two-layer feedforward or a small two-layer transformer) and classifier heads. The variants, all
with UPGrad but plain:

- plain: the forward and the loss's backward, as AllenNLP's trainer runs a step by default;
- exact: the callback at its default `"parameters"` level: one row per head back through the backbone
  (`torch.vmap`), and UPGrad's small quadratic program on their Gramian;
- exact, chunk 1: the same with `"parallel_chunk_size": 1`, the rows back through the backbone one at a
  time rather than together under `torch.vmap`;
- representation: the callback at its `"representation"` level: each head's row on the backbone's outputs,
  UPGrad's weights from their Gramian, and one backward pass through the backbone.

The callback runs as AllenNLP's trainer drives it: `on_backward` on the forward's outputs, then the
trainer's `rescale_gradients`, before which the callback aggregates the step's rows.

Time: each variant's median step, and the median of its per-round ratios to plain (rounds run every
variant once, in shuffled order; process CPU time, one torch thread). Memory: the peak resident memory
during two steps above the resident memory before them (Linux's VmHWM, reset first), the median of three
fresh processes forked before any step ran, so that none reuses memory another freed; and its ratio to
plain's (from one run to the next, figures move by about 3 MB).
Run from the repository root (about ten minutes on two cores; fewer with `--steps 20`):

    .venv/bin/python benchmarks/jacobian_descent.py
"""

import argparse
import multiprocessing
import statistics
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from allennlp.data import Vocabulary
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.training import GradientDescentTrainer
from workload import (
    CLOCKS,
    Variant,
    add_cpu_timing_arguments,
    build_backbone,
    build_heads,
    cpu_model,
    fresh_inputs,
    head_names,
    layout_tasks,
    make_text_batch,
    peak_memory_of,
    print_table,
    time_interleaved,
)

from allennlp_multitask.models import MultiTaskModel
from allennlp_multitask.training.callbacks import JacobianDescentCallback

# The callback's options in each Jacobian-descent variant.
JACOBIAN_DESCENT = {
    "exact": {"aggregator": "upgrad"},
    "exact, chunk 1": {"aggregator": "upgrad", "parallel_chunk_size": 1},
    "representation": {"aggregator": "upgrad", "level": "representation"},
}
VARIANTS = ("plain", *JACOBIAN_DESCENT)


def build(args: argparse.Namespace, backbone_kind: str, heads: int) -> Tuple[MultiTaskModel, Dict[str, Any]]:
    """The model with `heads` heads on a `backbone_kind` backbone, and its mixed batch; the same each time."""
    torch.manual_seed(args.seed)
    vocab = Vocabulary()
    names = head_names(heads)
    backbone = build_backbone(backbone_kind, vocab, args.width, args.vocab_size)
    model = MultiTaskModel(vocab, backbone, build_heads(vocab, names, args.width))
    tasks = layout_tasks("mixed", names, args.batch_size)
    batch = make_text_batch(tasks, args.tokens, args.vocab_size, torch.Generator().manual_seed(args.seed))
    return model, batch


def training_steps(model: MultiTaskModel) -> Dict[str, Callable[[Dict[str, Any]], None]]:
    """Each variant's step on `model` (forward, backward, aggregation), by variant."""
    steps: Dict[str, Callable[[Dict[str, Any]], None]] = {"plain": lambda inputs: model(**inputs)["loss"].backward()}
    for variant, options in JACOBIAN_DESCENT.items():
        callback = JacobianDescentCallback("unused", **options)
        trainer = GradientDescentTrainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.0),
            SimpleDataLoader([], 1),
            callbacks=[callback],
            enable_default_callbacks=False,
            run_confidence_checks=False,
        )
        callback.on_start(trainer)

        def jacobian_descent_step(inputs: Dict[str, Any], callback=callback, trainer=trainer) -> None:
            callback.on_backward(trainer, model(**inputs), backward_called=False)
            trainer.rescale_gradients()

        steps[variant] = jacobian_descent_step
    return steps


def peak_step_memory(args: argparse.Namespace, backbone_kind: str, heads: int, variant: str) -> int:
    """Bytes of resident memory that two steps of `variant` add at their peak (run in a fresh process)."""
    model, batch = build(args, backbone_kind, heads)
    step = training_steps(model)[variant]

    def two_steps() -> None:
        for _ in range(2):
            model.zero_grad(set_to_none=True)
            step(fresh_inputs(batch))

    return peak_memory_of(two_steps)


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cpu_timing_arguments(parser, several_backbones=True)
    parser.add_argument("--heads", type=int, nargs="+", default=[2, 4, 8, 16], help="head counts to measure")
    parser.add_argument("--width", type=int, default=128, help="embedding, encoder and head width")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per variant and head count")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant and head count, first")
    parser.add_argument("--tokens", type=int, default=24, help="padded length of each row")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--memory-repeats", type=int, default=3, help="processes per memory figure (median)")
    args = parser.parse_args(arguments)

    torch.set_num_threads(args.threads)
    # The LSTM's and attention's backward have no `torch.vmap` rule: vmap loops over the rows (one backward
    # per head), and says so once per process.
    warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} thread(s); {args.clock} clock; "
        f"width {args.width}; batch {args.batch_size} x {args.tokens} tokens; "
        f"median of {args.steps} steps.",
        flush=True,
    )
    # First, before this process runs any step, whose freed memory the forked processes would reuse.
    fork = multiprocessing.get_context("fork")
    cases = [(backbone_kind, heads) for backbone_kind in args.backbones for heads in args.heads]
    memory = {}
    for case in cases:
        for variant in VARIANTS:
            peaks = []
            for _ in range(args.memory_repeats):
                with fork.Pool(1) as pool:
                    peaks.append(pool.apply(peak_step_memory, (args, *case, variant)))
            memory[case, variant] = statistics.median(peaks)
    rows = []
    for case in cases:
        backbone_kind, heads = case
        model, batch = build(args, *case)
        steps = training_steps(model)
        variants = [Variant(name, steps[name]) for name in VARIANTS]
        times = time_interleaved(
            variants,
            batch,
            list(model.parameters()),
            args.steps,
            args.warmup,
            CLOCKS[args.clock],
            step=lambda variant, inputs: variant.forward(inputs),
        )
        cells = [backbone_kind, str(heads), f"{statistics.median(times['plain']) * 1e3:.1f}"]
        for variant in VARIANTS[1:]:
            ratio = statistics.median(value / plain for value, plain in zip(times[variant], times["plain"]))
            cells.append(f"{statistics.median(times[variant]) * 1e3:.1f} (x{ratio:.2f})")
        plain_memory = memory[case, "plain"]
        cells.append(f"{plain_memory / 2**20:.1f}")
        for variant in VARIANTS[1:]:
            cells.append(f"{memory[case, variant] / 2**20:.1f} (x{memory[case, variant] / plain_memory:.2f})")
        rows.append(cells)
        print(f"  measured {heads} heads on the {backbone_kind} backbone", flush=True)
    print()
    header = [
        "backbone",
        "heads",
        *(f"{variant} ms" for variant in VARIANTS),
        *(f"{variant} MB" for variant in VARIANTS),
    ]
    print_table(header, rows)


if __name__ == "__main__":
    main()
