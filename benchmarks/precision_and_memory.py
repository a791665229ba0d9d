"""
What mixed precision, gradient checkpointing and `torch.compile` give a fine-tuned transformer: step time
and peak step memory of our `MultiTaskModel` on a BERT-base-sized backbone (random init from a config, 12
layers, 768 wide, saved with a WordPiece vocabulary to a temporary folder and loaded by path) with 3
AllenNLP classifier heads, in four variants, as ratios to float32:

- float32;
- bfloat16: the forward pass under `torch.amp.autocast` in bfloat16, as the trainer's `"use_amp": true,
  "amp_dtype": "bfloat16"`;
- bfloat16 + checkpointing: also the backbone's `"gradient_checkpointing": true`;
- bfloat16, compiled: bfloat16 with the backbone's `"compile": true` (inductor unless `--compile-backend`).

A step is the forward pass on one task's batch (the tasks take turns), the loss's backward and an AdamW
step (torch's foreach implementation). Time: the median wall-clock step after `--warmup` steps (which
compile), CUDA synchronized. Activation memory: what a forward and backward pass add at their peak above
the memory before them (the weights and the optimizer's state, allocated in warm-up), less the gradients
they leave (set to `None` before): on CUDA, `torch.cuda.max_memory_allocated` (reset first); on the CPU,
the peak resident memory (Linux's VmHWM, reset first), with glibc's mmap threshold fixed at 64 KiB so that
every freed tensor goes back to the system at once. Every variant runs in this one process, one after
another. Run from the repository root:

    .venv/bin/python benchmarks/precision_and_memory.py                    # on a GPU, BERT-base
    .venv/bin/python benchmarks/precision_and_memory.py --device cpu --layers 2 --batch-size 4 --seq-len 64
"""

import argparse
import ctypes
import gc
import itertools
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import transformers
from allennlp.data import Vocabulary
from peft_multitask import save_random_bert
from workload import NUM_LABELS, build_heads, cpu_model, head_names, peak_memory_of, print_table

from allennlp_multitask.models import MultiTaskModel
from allennlp_multitask.modules import PretrainedTransformerBackbone

HEADS = 3
VARIANTS = ("float32", "bfloat16", "bfloat16 + checkpointing", "bfloat16, compiled")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def build(args: argparse.Namespace, variant: str) -> MultiTaskModel:
    torch.manual_seed(args.seed)
    vocab = Vocabulary()
    options: Dict[str, Any] = {"gradient_checkpointing": variant.endswith("checkpointing")}
    if variant.endswith("compiled"):
        options.update(compile=True, compile_options={"backend": args.compile_backend})
    backbone = PretrainedTransformerBackbone(vocab, str(args.model_dir), **options)
    model = MultiTaskModel(vocab, backbone, build_heads(vocab, head_names(HEADS), args.width))
    return model.to(args.device).train()


def batches(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """One batch per task, all its rows that task's."""
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch_size, args.seq_len)
    token_ids = torch.randint(5, args.vocab_size, shape, generator=generator).to(args.device)
    text = {"tokens": {"token_ids": token_ids, "mask": torch.ones_like(token_ids, dtype=torch.bool)}}
    labels = torch.randint(0, NUM_LABELS, (args.batch_size,), generator=generator).to(args.device)
    return [{"text": text, "label": labels, "task": [name] * args.batch_size} for name in head_names(HEADS)]


class TrainingStep:
    """The steps of `variant`: forward and backward on one task's batch (the tasks take turns), then AdamW."""

    def __init__(self, args: argparse.Namespace, variant: str, model: MultiTaskModel) -> None:
        self.device = args.device
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)
        self.inputs = itertools.cycle(batches(args))
        self.dtype = torch.float32 if variant == "float32" else torch.bfloat16

    def forward_backward(self) -> None:
        with torch.amp.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            loss = self.model(**next(self.inputs))["loss"]
        loss.backward()
        self.synchronize()

    def __call__(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.forward_backward()
        self.optimizer.step()
        self.synchronize()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def activation_memory(self) -> int:
        """
        Bytes that a forward and backward pass add at their peak above the memory before them, less the
        gradients they leave: the activations and the backward pass's temporaries.
        """
        self.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            self.forward_backward()
            peak = torch.cuda.max_memory_allocated(self.device) - before
        else:
            peak = peak_memory_of(self.forward_backward)
        gradients = sum(p.grad.numel() * p.grad.element_size() for p in self.model.parameters() if p.grad is not None)
        return peak - gradients


def measure(args: argparse.Namespace, variant: str) -> Dict[str, float]:
    """The median step time (s) and activation memory (bytes) of `variant`."""
    step = TrainingStep(args, variant, build(args, variant))
    for _ in range(args.warmup):
        step()
    memory = step.activation_memory()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    del step
    gc.collect()
    return {"time": statistics.median(times), "memory": memory}


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=768, help="the transformer's hidden size (64 per head)")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128, help="wordpieces per row")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (they compile)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads on the CPU")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile's backend")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(arguments)
    args.device, args.tokens = torch.device(args.device), args.seq_len
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.type == "cpu":
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 64 * 1024)
        machine = f"CPU: {cpu_model()}, {torch.get_num_threads()} thread(s); memory: peak resident (VmHWM)"
    else:
        machine = f"GPU: {torch.cuda.get_device_name(args.device)}; memory: torch.cuda.max_memory_allocated"
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecations, once per model
    print(
        f"{machine}; torch {torch.__version__}; BERT {args.layers} x {args.width}, {HEADS} heads; batch "
        f"{args.batch_size} x {args.seq_len} wordpieces; median of {args.steps} steps after {args.warmup}; "
        f"compiled with {args.compile_backend}.",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as directory:
        args.model_dir = Path(directory)
        save_random_bert(args.model_dir, args)
        results = {}
        for variant in VARIANTS:
            results[variant] = measure(args, variant)
            print(f"{variant}: measured", flush=True)
    baseline = results["float32"]
    rows = [
        [
            variant,
            f"{result['time'] * 1e3:.0f}",
            f"x{baseline['time'] / result['time']:.2f}",
            f"{result['memory'] / 2**20:.0f}",
            f"x{result['memory'] / baseline['memory']:.2f}" if baseline["memory"] else "-",
        ]
        for variant, result in results.items()
    ]
    print()
    print_table(["variant", "step ms", "speed-up", "activation MB", "memory ratio"], rows)


if __name__ == "__main__":
    main()
