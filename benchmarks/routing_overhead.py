"""
Routing overhead on CPU: the forward+backward step time of our `MultiTaskModel` against the same
modules called directly (the floor: the backbone once, each head on its own rows) and against AllenNLP
2.10.1's `MultiTaskModel`, all built from the same module objects, so with the same weights.

The backbone is light on purpose (token embedding and a two-layer feedforward encoder), so that
routing costs show; the heads are AllenNLP classifier heads. A homogeneous batch is all the first
head's; a mixed batch deals its rows to the heads in turn, so every head gathers its rows.

The variants are timed interleaved in one process (each round runs each once, in rotating order) and
the table gives medians. Steps are timed by the process's CPU time, which on a shared machine leaves out
the time the process waits for a core; with one torch thread (the default) it is the step's time on an
idle machine. Run from the repository root (about two minutes on two cores):

    .venv/bin/python benchmarks/routing_overhead.py
"""
import argparse
import time
from typing import List, Optional

import torch
from allennlp.data import Vocabulary
from allennlp.modules import FeedForward
from allennlp.modules.seq2seq_encoders import FeedForwardEncoder, LstmSeq2SeqEncoder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.modules.token_embedders import Embedding
from allennlp.nn import Activation
from workload import (
    LAYOUTS,
    build_heads,
    head_names,
    layout_tasks,
    make_text_batch,
    overhead_cells,
    print_table,
    time_interleaved,
    variants_for,
)

from allennlp_multitask.modules.backbones.embedder_backbone import EmbedderBackbone

# (heads, width): a few wide heads, and many narrow ones, where per-head routing costs weigh most.
CASES = [(3, 128), (16, 32)]
BACKBONES = ("lstm", "feedforward")
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return f"{names[0]} ({len(names)} cores)" if names else "unknown CPU"


def build_backbone(kind: str, vocab: Vocabulary, width: int, vocab_size: int) -> EmbedderBackbone:
    """Token embeddings, then a bidirectional LSTM (as in the bundled example) or a two-layer feedforward."""
    embedder = BasicTextFieldEmbedder({"tokens": Embedding(embedding_dim=width, num_embeddings=vocab_size)})
    if kind == "lstm":
        encoder = LstmSeq2SeqEncoder(width, width // 2, bidirectional=True)
    else:
        encoder = FeedForwardEncoder(FeedForward(width, 2, width, Activation.by_name("relu")()))
    return EmbedderBackbone(vocab, embedder, encoder)


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=BACKBONES, default="lstm", help="the backbone's encoder")
    parser.add_argument("--steps", type=int, default=400, help="timed steps per variant and case")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps per variant and case, first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=24, help="padded length of each row")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="process CPU time or wall time")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(arguments)

    torch.set_num_threads(args.threads)
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} thread(s); {args.clock} clock; "
        f"{args.backbone} backbone; batch {args.batch_size} x {args.tokens} tokens; median of {args.steps} steps.",
        flush=True,
    )
    header = ["heads", "width", "batch", "direct ms", "ours ms", "ours, no isfinite ms", "allennlp ms"]
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
            variants = variants_for(vocab, backbone, heads, torch.device("cpu"))
            parameters = [*backbone.parameters(), *(p for head in heads.values() for p in head.parameters())]
            times = time_interleaved(variants, batch, parameters, args.steps, args.warmup, CLOCKS[args.clock])
            cells = overhead_cells(times)
            rows.append([str(count), str(width), layout, *(cells[variant.name] for variant in variants)])
            print(f"  measured {count} heads, width {width}, {layout} batch", flush=True)
    print()
    print_table(header, rows)


if __name__ == "__main__":
    main()
