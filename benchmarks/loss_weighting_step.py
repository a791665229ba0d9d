"""
What each loss weighting costs per training step on CPU, as a ratio to static weights, side by side in one
process: the forward, the loss's backward and an SGD step of our `MultiTaskModel` (the routing benchmarks'
LSTM backbone and classifier heads) on one mixed batch whose rows are dealt to the heads in turn, so that
every step has every head's loss. FAMO's step includes the recomputation of the last batch's losses it
learns from (one extra forward, without gradients); GradNorm's, its backward pass per head down to the
backbone's last weight matrix. The last row, "no-grad forward", times that recomputation alone (the static
model's forward without gradients): FAMO's ratio cannot fall below 1 plus its ratio.

Time: each weighting's median step, and the median of its per-round ratios to static (rounds run every
weighting once, in shuffled order; process CPU time, one torch thread). Run from the repository root:

    .venv/bin/python benchmarks/loss_weighting_step.py
"""

import argparse
import statistics
from typing import Any, Dict, List, Optional

import torch
from allennlp.common import Lazy
from allennlp.common.params import Params
from allennlp.data import Vocabulary
from workload import (
    CLOCKS,
    Variant,
    add_cpu_timing_arguments,
    build_backbone,
    build_heads,
    cpu_model,
    head_names,
    layout_tasks,
    make_text_batch,
    print_table,
    time_interleaved,
)

from allennlp_multitask.models import LossWeighting, MultiTaskModel

# Each weighting's configuration; per-head options are filled in for the heads.
WEIGHTINGS: Dict[str, Dict[str, Any]] = {
    "static": {"type": "static"},
    "uncertainty": {"type": "uncertainty"},
    "dwa": {"type": "dwa"},
    "sum": {"type": "sum"},
    "mean": {"type": "mean"},
    "constant": {"type": "constant", "weights": 1.0},
    "uw": {"type": "uw"},
    "imtl_l": {"type": "imtl_l"},
    "geometric_mean": {"type": "geometric_mean"},
    "random": {"type": "random"},
    "stch": {"type": "stch", "mu": 0.5},
    "cosmos": {"type": "cosmos", "lambda_": 0.5, "weights": 1.0},
    "pbi": {"type": "pbi", "theta": 5.0, "weights": 1.0},
    "famo": {"type": "famo"},
    "gradnorm": {"type": "gradnorm"},
}
NO_GRAD_FORWARD = "no-grad forward"


def build_model(args: argparse.Namespace, config: Dict[str, Any]) -> MultiTaskModel:
    """The benchmark's model with `config`'s weighting, from the seed."""
    torch.manual_seed(args.seed)
    vocab = Vocabulary()
    names = head_names(args.heads)
    per_head = {key: {name: value for name in names} if key == "weights" else value for key, value in config.items()}
    weighting = Lazy(lambda head_names: LossWeighting.from_params(Params(per_head), head_names=head_names))
    backbone = build_backbone(args.backbone, vocab, args.width, args.vocab_size)
    return MultiTaskModel(vocab, backbone, build_heads(vocab, names, args.width), loss_weighting=weighting)


def build(args: argparse.Namespace, config: Dict[str, Any]) -> Variant:
    """The model with `config`'s weighting, and its training step (forward, backward, SGD step)."""
    model = build_model(args, config)
    optimizer = torch.optim.SGD([parameter for parameter in model.parameters() if parameter.requires_grad], lr=1e-3)

    def step(inputs: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        optimizer.zero_grad()
        outputs = model(**inputs)
        outputs["loss"].backward()
        optimizer.step()
        return outputs

    return Variant(config["type"], step)


def build_no_grad_forward(args: argparse.Namespace) -> Variant:
    """The static model's forward without gradients: what FAMO's recomputation of a batch's losses costs."""
    model = build_model(args, WEIGHTINGS["static"])

    def forward(inputs: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        with torch.no_grad():
            return model(**inputs)

    return Variant(NO_GRAD_FORWARD, forward)


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cpu_timing_arguments(parser)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--width", type=int, default=128, help="embedding, encoder and head width")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per weighting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per weighting, first")
    parser.add_argument("--tokens", type=int, default=24, help="padded length of each row")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--weightings", nargs="+", default=list(WEIGHTINGS), choices=list(WEIGHTINGS))
    args = parser.parse_args(arguments)
    torch.set_num_threads(args.threads)
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} thread(s); {args.clock} clock; "
        f"{args.backbone} backbone, {args.heads} heads, width {args.width}; batch {args.batch_size} x "
        f"{args.tokens} tokens; median of {args.steps} steps.",
        flush=True,
    )
    names = ["static", *(name for name in args.weightings if name != "static")]
    variants = [*(build(args, WEIGHTINGS[name]) for name in names), build_no_grad_forward(args)]
    tasks = layout_tasks("mixed", head_names(args.heads), args.batch_size)
    batch = make_text_batch(tasks, args.tokens, args.vocab_size, torch.Generator().manual_seed(args.seed))
    times = time_interleaved(
        variants,
        batch,
        [],
        args.steps,
        args.warmup,
        CLOCKS[args.clock],
        step=lambda variant, inputs: variant.forward(inputs),
    )
    rows = []
    for name in [*names, NO_GRAD_FORWARD]:
        ratio = statistics.median(value / base for value, base in zip(times[name], times["static"]))
        rows.append([name, f"{statistics.median(times[name]) * 1e3:.2f}", f"x{ratio:.3f}"])
    print_table(["weighting", "step (ms)", "ratio to static"], rows)


if __name__ == "__main__":
    main()
