"""
`allennlp train` of the bundled example as two nodes of one CPU worker each (`"num_nodes": 2`, one
`allennlp train` per node with its `--node-rank`, gloo), simulated on this machine: what a run that
outgrows one machine does, against the same two workers on one node.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from allennlp.commands.train import train_model_from_file
from allennlp.common.util import find_open_port

from tests.conftest import EXAMPLE_CONFIG

# Two `allennlp train` processes, then the same run on one node: tens of seconds.
pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.subprocess]

NODE_TIMEOUT_S = 300  # a hang guard for the nodes, not a performance check


def trained_metrics(run: Path) -> Dict[str, Any]:
    """The run's metrics that training determines (not its durations or memory)."""
    metrics = json.loads((run / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if "duration" not in key and "memory" not in key}


def test_two_nodes_of_one_cpu_worker_train_as_two_workers_on_one_node(in_repo_root, tmp_path):
    single = tmp_path / "single_node"
    train_model_from_file(
        str(EXAMPLE_CONFIG),
        str(single),
        overrides=json.dumps({"distributed": {"cuda_devices": [-1, -1]}, "trainer.num_epochs": 1}),
        include_package=["allennlp_multitask"],
    )

    port = find_open_port()
    distributed = {"num_nodes": 2, "cuda_devices": [-1], "primary_address": "127.0.0.1", "primary_port": port}
    overrides = json.dumps({"distributed": distributed, "trainer.num_epochs": 1})
    train = [sys.executable, "-m", "allennlp", "train", str(EXAMPLE_CONFIG), "--include-package", "allennlp_multitask"]
    nodes = [
        subprocess.Popen(
            [*train, "-s", str(tmp_path / f"node{rank}"), "--node-rank", str(rank), "-o", overrides],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    for rank, node in enumerate(nodes):
        output, _ = node.communicate(timeout=NODE_TIMEOUT_S)
        assert node.returncode == 0, f"node {rank}:\n{output[-3000:]}"

    # Node 0 holds the primary worker, which writes the metrics and the archive.
    assert trained_metrics(tmp_path / "node0") == trained_metrics(single)
    assert (tmp_path / "node0" / "model.tar.gz").exists()
