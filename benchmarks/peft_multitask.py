"""
What parameter-efficient fine-tuning saves on CPU: trainable parameters, optimizer state, peak memory and
step time of full fine-tuning against LoRA (a `peft` block on the `pretrained_transformer` backbone),
shared by all tasks or one adapter per task (`task_adapters`), with 2 and 8 tasks, side by side.

The model is our `MultiTaskModel` on a random-init BERT (by default 4 layers, 256 wide, saved with a
WordPiece vocabulary to a temporary folder and loaded by path, as AllenNLP loads any local transformer),
with one AllenNLP classifier head per task. LoRA is PEFT's default for BERT: rank 8 on the attention's
query and value. A step is the forward, the loss's backward and an AdamW step (torch's foreach
implementation) over the parameters that train, as AllenNLP's trainer gives them to its optimizer. The
variants:

- full: no `peft` block, every weight trains;
- shared LoRA: one adapter for all tasks;
- per-task LoRA: one adapter per task; batches hold one task each (they take turns), and switch the
  active adapter;
- per-task LoRA, mixed: the same on batches whose rows are dealt to the tasks in turn, on which the
  transformer runs once per task, on that task's rows.

Time: each variant's median step (process CPU time, one torch thread; rounds run every variant once, in
shuffled order), after a step of each task. Optimizer state: the bytes of AdamW's state, which it holds
for every parameter that has had a gradient, so after every task's step. Memory: the peak resident
memory during two steps (the first allocates the optimizer state) above the resident memory before them
(Linux's VmHWM, reset first), in a fresh process forked before any step ran. Run from the repository root
(about two minutes on two cores):

    .venv/bin/python benchmarks/peft_multitask.py
"""

import argparse
import itertools
import multiprocessing
import statistics
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import transformers
from allennlp.data import Vocabulary
from workload import (
    CLOCKS,
    NUM_LABELS,
    Variant,
    build_heads,
    cpu_model,
    head_names,
    peak_memory_of,
    print_table,
    time_interleaved,
)

from allennlp_multitask.models import MultiTaskModel
from allennlp_multitask.modules import PretrainedTransformerBackbone

LORA = {"type": "lora", "r": 8, "lora_alpha": 16, "lora_dropout": 0.1}
VARIANTS = ("full", "shared LoRA", "per-task LoRA", "per-task LoRA, mixed")


def save_random_bert(directory: Path, args: argparse.Namespace) -> None:
    """A random-init BERT of the benchmark's size and its WordPiece vocabulary, where `from_pretrained` finds them."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    # Letters first: AllenNLP's tokenizer finds a transformer's special tokens by tokenizing "a" and "b".
    letters = list("abcdefghijklmnopqrstuvwxyz")
    words = [*letters, *(f"w{index}" for index in range(args.vocab_size - 5 - len(letters)))]
    (directory / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(str(directory / "vocab.txt")).save_pretrained(directory)
    torch.manual_seed(args.seed)
    config = BertConfig(
        vocab_size=args.vocab_size,
        hidden_size=args.width,
        num_hidden_layers=args.layers,
        num_attention_heads=args.width // 64,
        intermediate_size=4 * args.width,
        max_position_embeddings=max(512, args.tokens),
    )
    BertModel(config).save_pretrained(directory)


def build(args: argparse.Namespace, tasks: int, variant: str) -> MultiTaskModel:
    """The model of `variant` with `tasks` tasks (a head each)."""
    torch.manual_seed(args.seed)
    vocab = Vocabulary()
    names = head_names(tasks)
    options: Dict[str, Any] = {}
    if variant != "full":
        options["peft"] = LORA
    if variant.startswith("per-task"):
        options["task_adapters"] = {name: [name] for name in names}
    backbone = PretrainedTransformerBackbone(vocab, str(args.model_dir), **options)
    return MultiTaskModel(vocab, backbone, build_heads(vocab, names, args.width))


def batches(args: argparse.Namespace, tasks: int, variant: str) -> List[Dict[str, Any]]:
    """A batch per task (all its rows that task's), or for the mixed variant one with the tasks' rows in turn."""
    generator = torch.Generator().manual_seed(args.seed)
    token_ids = torch.randint(5, args.vocab_size, (args.batch_size, args.tokens), generator=generator)
    text = {"tokens": {"token_ids": token_ids, "mask": torch.ones_like(token_ids, dtype=torch.bool)}}
    labels = torch.randint(0, NUM_LABELS, (args.batch_size,), generator=generator)
    names = head_names(tasks)
    if variant.endswith("mixed"):
        layouts = [[names[row % tasks] for row in range(args.batch_size)]]
    else:
        layouts = [[name] * args.batch_size for name in names]
    return [{"text": text, "label": labels, "task": layout} for layout in layouts]


def training_step(model: MultiTaskModel, optimizer: torch.optim.Optimizer) -> Callable[[Dict[str, Any]], None]:
    def step(inputs: Dict[str, Any]) -> None:
        model(**inputs)["loss"].backward()
        optimizer.step()

    return step


def optimizer_for(model: MultiTaskModel) -> torch.optim.Optimizer:
    """AdamW over what trains, as AllenNLP's trainer gives its optimizer the parameters that need gradients."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, foreach=True)


def peak_step_memory(args: argparse.Namespace, tasks: int, variant: str) -> int:
    """Bytes of resident memory that two steps of `variant` add at their peak (run in a fresh process)."""
    model = build(args, tasks, variant).train()
    step, inputs = training_step(model, optimizer_for(model)), itertools.cycle(batches(args, tasks, variant))

    def two_steps() -> None:
        for _ in range(2):
            model.zero_grad(set_to_none=True)
            step(next(inputs))

    return peak_memory_of(two_steps)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor)
    )


def measure(args: argparse.Namespace, tasks: int, memory: Dict[str, int]) -> List[List[str]]:
    """One row per variant with `tasks` tasks."""
    models = {variant: build(args, tasks, variant).train() for variant in VARIANTS}
    optimizers = {variant: optimizer_for(model) for variant, model in models.items()}
    variants = []
    for variant, model in models.items():
        step, variant_batches = training_step(model, optimizers[variant]), batches(args, tasks, variant)
        for batch in variant_batches:  # A step of each task first: the optimizer then has all its state.
            step(batch)
        inputs = itertools.cycle(variant_batches)
        variants.append(Variant(variant, lambda _, step=step, inputs=inputs: step(next(inputs))))
    parameters = [parameter for model in models.values() for parameter in model.parameters()]
    clock = CLOCKS[args.clock]
    times = time_interleaved(variants, {}, parameters, args.steps, args.warmup, clock, step=lambda v, x: v.forward(x))
    full_trainable = sum(p.numel() for p in models["full"].parameters() if p.requires_grad)
    rows = []
    for variant, model in models.items():
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        backbone = sum(p.numel() for p in model.backbone.parameters() if p.requires_grad)
        state = optimizer_state_bytes(optimizers[variant])
        rows.append(
            [
                str(tasks),
                variant,
                f"{trainable:,} ({trainable / full_trainable:.1%})",
                f"{backbone:,}",
                f"{state / 2**20:.2f}",
                f"{memory[variant] / 2**20:.1f} (x{memory[variant] / memory['full']:.2f})",
                f"{statistics.median(times[variant]) * 1e3:.0f}",
            ]
        )
    return rows


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 8], help="task counts to measure")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256, help="the transformer's hidden size (64 per head)")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64, help="wordpieces per row")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant and task count")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant and task count, first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="process CPU time or wall time")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(arguments)
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecations, once per model
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} thread(s); {args.clock} clock; BERT "
        f"{args.layers} x {args.width}; batch {args.batch_size} x {args.tokens} wordpieces; median of {args.steps} "
        "steps.",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as directory:
        args.model_dir = Path(directory)
        save_random_bert(args.model_dir, args)
        # First, before this process runs any step, whose freed memory the forked processes would reuse.
        fork = multiprocessing.get_context("fork")
        memory = {}
        for tasks in args.tasks:
            memory[tasks] = {}
            for variant in VARIANTS:
                with fork.Pool(1) as pool:
                    memory[tasks][variant] = pool.apply(peak_step_memory, (args, tasks, variant))
        rows = [row for tasks in args.tasks for row in measure(args, tasks, memory[tasks])]
    print()
    header = ["tasks", "variant", "trainable parameters", "of which backbone", "optimizer state MB", "peak step MB"]
    print_table([*header, "step ms"], rows)


if __name__ == "__main__":
    main()
