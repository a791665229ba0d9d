"""
Routing overhead on CPU: the forward+backward step time of our `MultiTaskModel` against the same
modules called directly (the floor) and against AllenNLP 2.10.1's `MultiTaskModel`, all three built
from the same module objects, so with the same weights.

The direct call is what one would write by hand: the backbone once; each head's rows found from the
`task` list and gathered with one index tensor (or passed whole when they are the whole batch); the
losses summed. The backbone embeds tokens and encodes them with a bidirectional LSTM, as the bundled
example does (`--backbone feedforward`: a two-layer feedforward instead, so light that routing costs
weigh several times more); the heads are AllenNLP classifier heads. A homogeneous batch is all the
first head's; a mixed batch deals its rows to the heads in turn, so every head gathers its rows.

Each round runs every variant once, in an order shuffled from round to round. The table gives the
direct call's median step in ms and, for each other variant, the median of its per-round differences
from the direct call; "direct again" is the direct call timed a second time, so its difference is the
noise. "direct + 20 µs Python" runs 20 µs (timed alone) of pure Python work before the direct call: its
difference is what that much Python work costs inside a step, between tensor ops (several times as much).
Steps are timed by the process's CPU time, which leaves out the time the process waits for a core on
a shared machine; with one torch thread (the default) that is the step's time on an idle machine.
Run from the repository root (about ten minutes on two cores):

    .venv/bin/python benchmarks/routing_overhead.py
    .venv/bin/python benchmarks/routing_overhead.py --backbone feedforward
"""

import argparse
from typing import List, Optional

import torch
from allennlp.data import Vocabulary
from workload import (
    CASES,
    CLOCKS,
    LAYOUTS,
    add_cpu_timing_arguments,
    build_backbone,
    build_heads,
    cpu_model,
    head_names,
    layout_tasks,
    make_text_batch,
    overhead_cells,
    print_table,
    time_interleaved,
    variants_for,
)


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cpu_timing_arguments(parser)
    parser.add_argument("--steps", type=int, default=1000, help="timed steps per variant and case")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps per variant and case, first")
    parser.add_argument("--tokens", type=int, default=24, help="padded length of each row")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument(
        "--python-work-us",
        type=float,
        default=20.0,
        help="also time the direct call after this many µs of pure Python work (0: not)",
    )
    args = parser.parse_args(arguments)

    torch.set_num_threads(args.threads)
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} thread(s); {args.clock} clock; "
        f"{args.backbone} backbone; batch {args.batch_size} x {args.tokens} tokens; median of {args.steps} steps.",
        flush=True,
    )
    rows = []
    for count, width in CASES:
        for layout in LAYOUTS:
            torch.manual_seed(args.seed)
            vocab = Vocabulary()
            names = head_names(count)
            backbone = build_backbone(args.backbone, vocab, width, args.vocab_size)
            heads = build_heads(vocab, names, width)
            tasks = layout_tasks(layout, names, args.batch_size)
            batch = make_text_batch(tasks, args.tokens, args.vocab_size, torch.Generator().manual_seed(args.seed))
            variants = variants_for(vocab, backbone, heads, torch.device("cpu"), args.python_work_us)
            parameters = [*backbone.parameters(), *(p for head in heads.values() for p in head.parameters())]
            times = time_interleaved(variants, batch, parameters, args.steps, args.warmup, CLOCKS[args.clock])
            cells = overhead_cells(times)
            rows.append([str(count), str(width), layout, *(cells[variant.name] for variant in variants)])
            print(f"  measured {count} heads, width {width}, {layout} batch", flush=True)
    print()
    print_table(["heads", "width", "batch", *(variant.name for variant in variants)], rows)


if __name__ == "__main__":
    main()
