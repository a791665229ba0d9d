"""
Prediction throughput on mixed-task inputs: our "multitask" predictor against AllenNLP 2.10.1's, on
models built from the same module objects (so with the same weights).

All tasks' instances have the same fields (`text`, `task`), so ours predicts a batch in one forward
pass; AllenNLP's predictor groups a batch by task and makes one forward pass per task (and returns the
outputs grouped by task, not in input order). Both run `predict_batch_instance` on the same instances;
the script checks that they predict the same probabilities. AllenNLP's predictor cannot turn JSON into
instances for classifier heads (they name no default predictor), so JSON throughput is ours alone.

Batches are timed interleaved (ours, AllenNLP's, in turn), by process CPU time and one torch thread by
default, as in routing_overhead.py. Run from the repository root (about a minute on two cores):

    .venv/bin/python benchmarks/predict_throughput.py
"""

import argparse
import random
import statistics
from typing import Any, Dict, List, Optional, Tuple

import numpy
import torch
from allennlp.data import Instance, Vocabulary
from allennlp.data.dataset_readers import MultiTaskDatasetReader
from allennlp.models.multitask import MultiTaskModel as AllenNlpMultiTaskModel
from allennlp.predictors.multitask import MultiTaskPredictor as AllenNlpMultiTaskPredictor
from workload import (
    CASES,
    CLOCKS,
    add_cpu_timing_arguments,
    build_backbone,
    build_heads,
    cpu_model,
    head_names,
    print_table,
)

from allennlp_multitask.data import LabeledTextJsonReader
from allennlp_multitask.models import MultiTaskModel
from allennlp_multitask.predictors import MultiTaskPredictor

WORDS = [f"w{index}" for index in range(2000)]


def mixed_json(names: List[str], count: int, rng: random.Random) -> List[Dict[str, str]]:
    """`count` inputs, the tasks in turn, each a sentence of 8 to 24 words (text_classifier's JSON)."""
    return [
        {"task": names[index % len(names)], "sentence": " ".join(rng.choices(WORDS, k=rng.randint(8, 24)))}
        for index in range(count)
    ]


def build_predictors(
    names: List[str], width: int, backbone_kind: str
) -> Tuple[MultiTaskPredictor, AllenNlpMultiTaskPredictor]:
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(WORDS, "tokens")
    backbone = build_backbone(backbone_kind, vocab, width, vocab.get_vocab_size("tokens"))
    heads = build_heads(vocab, names, width)
    reader = MultiTaskDatasetReader({name: LabeledTextJsonReader() for name in names})
    ours = MultiTaskPredictor(MultiTaskModel(vocab, backbone, heads).eval(), reader)
    theirs = AllenNlpMultiTaskPredictor(AllenNlpMultiTaskModel(vocab, backbone, heads).eval(), reader)
    return ours, theirs


def allennlp_order(instances: List[Instance]) -> List[int]:
    """The input positions in the order AllenNLP's predictor returns outputs: grouped by task."""
    groups: Dict[str, List[int]] = {}
    for position, instance in enumerate(instances):
        groups.setdefault(instance["task"].metadata, []).append(position)
    return [position for positions in groups.values() for position in positions]


def largest_difference(ours: List[Dict[str, Any]], theirs: List[Dict[str, Any]], instances: List[Instance]) -> float:
    """The largest difference between the two predictors' probabilities for the same instance."""
    by_position = dict(zip(allennlp_order(instances), theirs))
    differences = []
    for position, (instance, output) in enumerate(zip(instances, ours)):
        key = f"{instance['task'].metadata}_probs"
        differences.append(numpy.abs(numpy.array(output[key]) - numpy.array(by_position[position][key])).max())
    return float(max(differences))


def allennlp_json_error(predictor: AllenNlpMultiTaskPredictor, inputs: List[Dict[str, str]]) -> str:
    try:
        predictor.predict_batch_json([dict(json) for json in inputs[:2]])
    except Exception as error:  # Whatever it raises is the finding.
        return f"{type(error).__name__}"
    return "works"


def measure_case(names: List[str], width: int, args: argparse.Namespace) -> List[str]:
    """One table row: both predictors' throughput on the same mixed-task batches, and their agreement."""
    torch.manual_seed(args.seed)
    ours, theirs = build_predictors(names, width, args.backbone)
    inputs = mixed_json(names, args.instances, random.Random(args.seed))
    instances = [ours._json_to_instance(dict(json)) for json in inputs]
    starts = range(0, len(instances), args.batch_size)
    batches = [(instances[at : at + args.batch_size], inputs[at : at + args.batch_size]) for at in starts]
    runs = {
        "ours": lambda instance_batch, json_batch: ours.predict_batch_instance(instance_batch),
        "allennlp": lambda instance_batch, json_batch: theirs.predict_batch_instance(instance_batch),
        "ours JSON": lambda instance_batch, json_batch: ours.predict_batch_json([dict(json) for json in json_batch]),
    }
    times: Dict[str, List[float]] = {name: [] for name in runs}
    clock = CLOCKS[args.clock]
    for pass_index in range(args.passes + 1):  # The first pass warms up.
        for instance_batch, json_batch in batches:
            for name, run in runs.items():
                start = clock()
                run(instance_batch, json_batch)
                if pass_index:
                    times[name].append(clock() - start)
    first = batches[0][0]
    difference = largest_difference(ours.predict_batch_instance(first), theirs.predict_batch_instance(first), first)
    rate = {name: args.batch_size / statistics.median(values) for name, values in times.items()}
    return [
        str(len(names)),
        str(width),
        f"{rate['ours']:.0f}",
        f"{rate['allennlp']:.0f}",
        f"{rate['ours'] / rate['allennlp']:.2f}x",
        f"{rate['ours JSON']:.0f}",
        f"fails ({allennlp_json_error(theirs, inputs)})",
        f"{difference:.1e}",
    ]


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cpu_timing_arguments(parser)
    parser.add_argument("--instances", type=int, default=512, help="inputs per pass, in batches")
    parser.add_argument("--passes", type=int, default=10, help="timed passes over the inputs")
    args = parser.parse_args(arguments)

    torch.set_num_threads(args.threads)
    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} thread(s); {args.clock} clock; "
        f"{args.backbone} backbone; {args.instances} mixed-task inputs in batches of {args.batch_size}; "
        f"median batch of {args.passes} passes.",
        flush=True,
    )
    header = [
        "heads",
        "width",
        "ours inst/s",
        "allennlp inst/s",
        "ours/allennlp",
        "ours JSON inst/s",
        "allennlp JSON",
        "max |probs diff|",
    ]
    rows = []
    for count, width in CASES:
        rows.append(measure_case(head_names(count), width, args))
        print(f"  measured {count} heads, width {width}", flush=True)
    print()
    print_table(header, rows)


if __name__ == "__main__":
    main()
