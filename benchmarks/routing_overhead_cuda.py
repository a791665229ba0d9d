"""
Routing overhead on a GPU, with a BERT-base-sized transformer backbone (random weights, built locally
from a `transformers.BertConfig`: nothing is downloaded). For each case it reports:

- the median forward+backward step time of the direct call (the floor), ours, ours without the
  `isfinite` loss check (a host-device synchronisation), and AllenNLP 2.10.1's model;
- the peak GPU memory of a step of each, over the direct call's (`torch.cuda.max_memory_allocated`);
- whether our routing (`MultiTaskModel.route`, `ArgumentRouter.select` and `.plan`, `HeadRows.split`) runs
  without any host-device synchronisation: it runs under `torch.cuda.set_sync_debug_mode("error")`,
  which raises on one. The loss check after the heads is left out of that on purpose: it syncs.

Without a CUDA device it says so and exits (status 0) without measuring. Run from the repository root:

    .venv/bin/python benchmarks/routing_overhead_cuda.py
    .venv/bin/python benchmarks/routing_overhead_cuda.py --device cpu --tiny --steps 5   # tries the script
"""

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import torch
from allennlp.data import Vocabulary
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.modules.token_embedders import PretrainedTransformerEmbedder
from transformers import BertConfig, BertTokenizerFast
from workload import (
    LAYOUTS,
    Variant,
    build_heads,
    fresh_inputs,
    head_names,
    layout_tasks,
    make_text_batch,
    overhead_cells,
    print_table,
    time_interleaved,
    variants_for,
)

from allennlp_multitask.models import MultiTaskModel
from allennlp_multitask.models.routing import ArgumentRouter, HeadRows
from allennlp_multitask.modules.backbones.embedder_backbone import EmbedderBackbone

HEAD_COUNTS = (3, 16)
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def save_random_bert(directory: Path, sizes: Dict[str, int], vocab_size: int) -> None:
    """A BERT config and a WordPiece vocabulary, which AllenNLP's embedder loads without weights."""
    # AllenNLP's tokenizer finds the special tokens by tokenizing "a" and "b".
    known = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    words = [*known, *(f"w{i}" for i in range(vocab_size - len(known)))]
    (directory / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(str(directory / "vocab.txt")).save_pretrained(directory)
    BertConfig(vocab_size=vocab_size, max_position_embeddings=512, **sizes).save_pretrained(directory)


def transformer_batch(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    """The batch as a `PretrainedTransformerIndexer` makes it, on `device`."""
    token_ids = batch["text"]["tokens"]["tokens"]
    tokens = {"token_ids": token_ids, "mask": token_ids != 0, "type_ids": torch.zeros_like(token_ids)}
    return {
        "text": {"tokens": {name: value.to(device) for name, value in tokens.items()}},
        "label": batch["label"].to(device),
        "task": batch["task"],
    }


@contextlib.contextmanager
def sync_errors_in(owner: type, name: str) -> Iterator[None]:
    """Makes any host-device synchronisation inside `owner.name` raise, while the context lasts."""
    original = getattr(owner, name)

    def checked(*args: Any, **kwargs: Any) -> Any:
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            return original(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode(previous)

    setattr(owner, name, checked)
    try:
        yield
    finally:
        setattr(owner, name, original)


def routing_is_sync_free(ours: Variant, batch: Dict[str, Any]) -> str:
    """Runs one step of ours with synchronisation errors on inside routing; "yes", or the error."""
    try:
        with (
            sync_errors_in(MultiTaskModel, "route"),
            sync_errors_in(ArgumentRouter, "select"),
            sync_errors_in(ArgumentRouter, "plan"),
            sync_errors_in(HeadRows, "split"),
        ):
            ours.forward(fresh_inputs(batch))["loss"].backward()
    except RuntimeError as error:
        return f"no: {error}".splitlines()[0]
    return "yes"


def peak_memory(variant: Variant, batch: Dict[str, Any], parameters: List[torch.nn.Parameter]) -> float:
    """The most memory a step of `variant` had allocated at once, above what was allocated before it, in MiB."""
    for parameter in parameters:
        parameter.grad = None
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    variant.forward(fresh_inputs(batch))["loss"].backward()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny transformer instead of BERT-base sizes")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per variant and case")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per variant and case, first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=128, help="padded length of each row")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(arguments)

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        print("No CUDA device here: the GPU routing benchmark was skipped and nothing was measured.")
        return
    synchronize = torch.cuda.synchronize if on_gpu else (lambda: None)
    machine = torch.cuda.get_device_name(device) if on_gpu else "CPU (a trial run; no GPU figures)"
    sizes = TINY if args.tiny else BERT_BASE
    print(
        f"Device: {machine}; torch {torch.__version__}; transformer {sizes}; batch {args.batch_size} x "
        f"{args.tokens} tokens; median of {args.steps} steps per cell.",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as directory:
        save_random_bert(Path(directory), sizes, args.vocab_size)
        torch.manual_seed(args.seed)
        embedder = PretrainedTransformerEmbedder(directory, load_weights=False)
    width = embedder.get_output_dim()
    memory_header = ["heads", "batch", "direct MiB", "ours MiB", "allennlp MiB", "routing sync-free"]
    time_rows, memory_rows = [], []
    for count in HEAD_COUNTS:
        for layout in LAYOUTS:
            torch.manual_seed(args.seed)
            vocab = Vocabulary()
            names = head_names(count)
            backbone = EmbedderBackbone(vocab, BasicTextFieldEmbedder({"tokens": embedder}))
            heads = build_heads(vocab, names, width)
            tasks = layout_tasks(layout, names, args.batch_size)
            generator = torch.Generator().manual_seed(args.seed)
            batch = transformer_batch(make_text_batch(tasks, args.tokens, args.vocab_size, generator), device)
            variants = variants_for(vocab, backbone, heads, device)
            parameters = [*backbone.parameters(), *(p for head in heads.values() for p in head.parameters())]
            times = time_interleaved(
                variants, batch, parameters, args.steps, args.warmup, time.perf_counter, synchronize
            )
            cells = overhead_cells(times)
            time_rows.append([str(count), layout, *(cells[variant.name] for variant in variants)])
            if on_gpu:
                by_name = {variant.name: variant for variant in variants}
                peaks = {name: peak_memory(by_name[name], batch, parameters) for name in ("direct", "ours", "allennlp")}
                memory = [
                    f"{peaks[name]:.1f}" + ("" if name == "direct" else f" ({peaks[name] - peaks['direct']:+.1f})")
                    for name in peaks
                ]
                memory_rows.append([str(count), layout, *memory, routing_is_sync_free(by_name["ours"], batch)])
            print(f"  measured {count} heads, {layout} batch", flush=True)
    print()
    print_table(["heads", "batch", *(variant.name for variant in variants)], time_rows)
    if memory_rows:
        print()
        print_table(memory_header, memory_rows)


if __name__ == "__main__":
    main()
