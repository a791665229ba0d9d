"""
The benchmark scripts under benchmarks/ run end to end (a few steps each, on the CPU) and print a full
table: what they measure is in the README; here only that they still run and measure every case.
"""

import importlib
import re
import sys
from pathlib import Path
from typing import List

import pytest
import torch

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

CASE_ROWS = 4  # 3 and 16 heads, each with a homogeneous and a mixed batch (prediction: 2, by head count).


@pytest.fixture
def benchmarks(monkeypatch: pytest.MonkeyPatch):
    """Imports a script the way `python benchmarks/<script>.py` does: with its folder first on the path."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    threads = torch.get_num_threads()
    yield importlib.import_module
    torch.set_num_threads(threads)  # The scripts set one intra-op thread.
    for name in [
        "workload",
        "routing_overhead",
        "routing_overhead_cuda",
        "predict_throughput",
        "jacobian_descent",
        "train_end_to_end",
        "plain_train",
        "phase_clock",
        "step_page_faults",
        "kill_and_resume",
        "peft_multitask",
        "loss_weighting_step",
        "loss_weighting_comparison",
        "precision_and_memory",
        "serve_throughput",
    ]:
        sys.modules.pop(name, None)


def table_rows(printed: str) -> List[List[str]]:
    """The body rows of the last Markdown table printed."""
    lines = [line for line in printed.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_routing_overhead_measures_every_variant_in_every_case(benchmarks, capsys):
    benchmarks("routing_overhead").main(["--steps", "2", "--warmup", "1", "--batch-size", "16", "--tokens", "6"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[:3] for row in rows] == [
        ["3", "128", "homogeneous"],
        ["3", "128", "mixed"],
        ["16", "32", "homogeneous"],
        ["16", "32", "mixed"],
    ]
    for row in rows:
        assert re.fullmatch(r"\d+\.\d{3}", row[3]), row  # The direct call's median, in ms.
        # Each other variant against it: ours, AllenNLP's, the noise and the price of 20 us of Python.
        assert len(row) == 11 and all(re.fullmatch(r"[+-]\d+ µs \([+-]\d+\.\d\d%\)", cell) for cell in row[4:]), row


def test_gpu_routing_benchmark_tries_out_on_the_cpu(benchmarks, capsys):
    arguments = ["--device", "cpu", "--tiny", "--steps", "1", "--warmup", "0", "--batch-size", "16", "--tokens", "8"]
    benchmarks("routing_overhead_cuda").main([*arguments, "--vocab-size", "100"])
    printed = capsys.readouterr().out
    assert "a trial run; no GPU figures" in printed
    assert len(table_rows(printed)) == CASE_ROWS


def test_prediction_throughput_compares_with_allennlps_predictor(benchmarks, capsys):
    benchmarks("predict_throughput").main(["--instances", "32", "--passes", "1", "--batch-size", "16"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[:2] for row in rows] == [["3", "128"], ["16", "32"]]
    for row in rows:
        assert row[6].startswith("fails (") and float(row[7]) < 1e-5, row  # AllenNLP's JSON; same probabilities.


def test_jacobian_descent_benchmark_times_and_weighs_each_level_against_plain_training(benchmarks, capsys):
    arguments = ["--heads", "2", "--steps", "1", "--warmup", "0", "--batch-size", "8", "--tokens", "6", "--width", "16"]
    options = ["--backbones", "transformer", "--vocab-size", "100", "--memory-repeats", "1"]
    benchmarks("jacobian_descent").main([*arguments, *options])
    rows = table_rows(capsys.readouterr().out)
    assert [row[:2] for row in rows] == [["transformer", "2"]]
    for row in rows:
        assert re.fullmatch(r"\d+\.\d", row[2]) and re.fullmatch(r"\d+\.\d", row[6]), row  # plain: ms, MB
        # exact, exact with chunk 1, representation: each as a ratio to plain.
        assert all(re.fullmatch(r"\d+\.\d \(x\d+\.\d\d\)", cell) for cell in row[3:6] + row[7:]), row


def test_end_to_end_benchmark_times_allennlp_train_and_the_plain_script_on_the_same_job(benchmarks, capsys):
    benchmarks("train_end_to_end").main(["--sentences", "40", "--runs", "1", "--variants", "fused"])
    totals_table, phases_table = capsys.readouterr().out.strip().split("\n\n")[-2:]
    totals = table_rows(totals_table)
    assert [row[:2] for row in totals] == [["fused", "allennlp"], ["fused", "plain"]]
    # Same batches, model, seeds and fused Adam: the two programs' training losses agree.
    assert float(totals[0][-1]) == pytest.approx(float(totals[1][-1]), rel=1e-5)
    phases = table_rows(phases_table)
    assert [row[:2] for row in phases] == [row[:2] for row in totals]
    assert all(re.fullmatch(r"-?\d+\.\d\d / -?\d+\.\d\d", cell) for row in phases for cell in row[2:]), phases


def test_page_fault_benchmark_steps_both_models_on_the_same_batches(benchmarks, capsys):
    benchmarks("step_page_faults").main(["--sentences", "100", "--batches", "3", "--rounds", "2"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["allennlp", "plain"]
    assert rows[1][2] == "1.000"
    assert all(re.fullmatch(r"\d+\.\d+", cell) for row in rows for cell in row[1:]), rows


def test_a_run_killed_at_random_moments_and_resumed_ends_as_an_uninterrupted_run(benchmarks, capsys):
    benchmarks("kill_and_resume").main(["--kills", "2", "--sigterms", "0", "--epochs", "4", "--seed", "1"])
    printed = capsys.readouterr().out
    assert "| SIGKILL | 2 | yes |" in printed, printed


def test_peft_benchmark_sets_each_lora_variant_beside_full_fine_tuning(benchmarks, capsys):
    arguments = ["--tasks", "2", "--layers", "1", "--width", "64", "--vocab-size", "100", "--tokens", "8"]
    benchmarks("peft_multitask").main([*arguments, "--steps", "1", "--warmup", "0"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[:2] for row in rows] == [
        ["2", "full"],
        ["2", "shared LoRA"],
        ["2", "per-task LoRA"],
        ["2", "per-task LoRA, mixed"],
    ]
    shares = [float(re.fullmatch(r"[\d,]+ \((\d+\.\d)%\)", row[2]).group(1)) for row in rows]
    assert shares[0] == 100.0 and all(share < 100.0 for share in shares[1:]), rows
    assert all(re.fullmatch(r"\d+\.\d\d", row[4]) and re.fullmatch(r"\d+\.\d \(x\d+\.\d\d\)", row[5]) for row in rows)


def test_loss_weighting_benchmark_times_every_weighting_against_static(benchmarks, capsys):
    module = benchmarks("loss_weighting_step")
    module.main(["--steps", "1", "--warmup", "0", "--batch-size", "6", "--tokens", "6", "--width", "16"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == [*module.WEIGHTINGS, module.NO_GRAD_FORWARD]
    assert all(re.fullmatch(r"\d+\.\d\d", row[1]) and re.fullmatch(r"x\d+\.\d{3}", row[2]) for row in rows), rows


@pytest.mark.once  # alike on every stack, and long
def test_loss_weighting_comparison_trains_the_conll_example_with_every_method(benchmarks, capsys):
    module = benchmarks("loss_weighting_comparison")
    module.main(["--tiny"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == list(module.METHODS)
    for row in rows:  # One seed: the three heads' validation metrics, the training and the command's seconds.
        assert all(re.fullmatch(r"[01]\.\d{3}", cell) for cell in row[1:4]), row
        assert all(re.fullmatch(r"\d+\.\d", cell) for cell in row[4:]), row


@pytest.mark.once  # alike on every stack, and long
def test_precision_benchmark_sets_bfloat16_checkpointing_and_compile_beside_float32(benchmarks, capsys):
    module = benchmarks("precision_and_memory")
    arguments = ["--device", "cpu", "--layers", "1", "--width", "64", "--vocab-size", "100", "--batch-size", "2"]
    # aot_eager: Dynamo and AOTAutograd as with inductor, without its minute of code generation.
    module.main([*arguments, "--seq-len", "8", "--steps", "1", "--warmup", "1", "--compile-backend", "aot_eager"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == list(module.VARIANTS)
    assert rows[0][2] == "x1.00" and rows[0][4] in ("x1.00", "-")  # float32 against itself
    assert all(re.fullmatch(r"\d+", row[1]) and re.fullmatch(r"x\d+\.\d\d", row[2]) for row in rows), rows


@pytest.mark.once  # alike on every stack, and long
def test_serving_benchmark_loads_the_server_both_ways_and_checks_every_answer(
    benchmarks, capsys, example_archive: Path
):
    arguments = ["--models", "example", "--example-archive", str(example_archive), "--clients", "1", "4"]
    benchmarks("serve_throughput").main([*arguments, "--seconds", "1"])
    rows = table_rows(capsys.readouterr().out)
    assert [row[:3] for row in rows] == [
        ["example", "1", "one at a time (--batch-size 1)"],
        ["example", "4", "one at a time (--batch-size 1)"],
        ["example", "1", "dynamic (--batch-size 32)"],
        ["example", "4", "dynamic (--batch-size 32)"],
    ]
    for row in rows:
        assert int(row[3]) > 0 and all(re.fullmatch(r"\d+\.\d", cell) for cell in row[5:7]), row
        assert re.fullmatch(r"x\d+\.\d\d", row[7]) and row[8:] == ["0", "0"], row  # none lost, none wrong
