"""
Every `allennlp` command of the README and of the documentation's pages runs, as written, as a real
`allennlp` process: from a directory of its own that has no `.allennlp_plugins` file, so that only the
`--include-package allennlp_multitask` the docs give brings our package in. The docs' paths are relative
to the repository root; that directory links the repository's `examples/` and writes its own `runs/`.

What runs differs from the docs only where stated here: commands that need what the tests lack (GPUs,
several machines, Slurm, a user's own project and config) are `NOT_RUN`, each with why and where else it is
tested; `bert-base-uncased` from the Hugging Face Hub is a tiny BERT saved on disk; the two nodes on one
machine meet on a free port rather than 29500, which other processes may hold; and the tests train the
LoRA run that the adapter commands read (`runs/lora`), which the docs leave to the reader.
"""

import json
import re
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from allennlp.common.util import find_open_port

from tests.commands.peft_runs import peft_config
from tests.conftest import REPO_ROOT
from tests.documented_commands import Block, bash_blocks, in_test_environment, program_environment

# Documented command lines (continuation lines joined, runs of spaces as one) that the tests do not run here,
# and why.
NOT_RUN: Dict[str, str] = {
    "uv run --locked --extra test pytest": "the test suite itself",
    "uv run allennlp train my_multitask.jsonnet -s runs/my_run": (
        "a user's own project and config: tests/test_own_project.py builds one and runs allennlp there"
    ),
    "srun allennlp train my.jsonnet -s runs/my_run $([ -f runs/my_run/config.json ] && echo -r) "
    "--include-package allennlp_multitask": "Slurm: tests/commands/test_preemption.py sends the signal it asks for",
    "uv run --locked allennlp train examples/sentiment_and_topic.jsonnet -s runs/ddp --include-package "
    'allennlp_multitask --overrides \'{"distributed": {"cuda_devices": [0, 1, 2, 3]}}\'': (
        "four GPUs: the same training on two CPU workers is the next block of the page, which runs"
    ),
    "uv run --locked allennlp train examples/sentiment_and_topic.jsonnet -s runs/gpu --include-package "
    "allennlp_multitask -o '{\"trainer.cuda_device\": 0}'": "a GPU: the same training on the CPU is the quick start's",
    "uv run --locked allennlp serve --archive-path runs/sentiment_and_topic/model.tar.gz --include-package "
    "allennlp_multitask": (
        "a server runs until stopped: tests/serving/test_page.py starts this command and drives it from a browser"
    ),
    "OMP_NUM_THREADS=1 uv run --locked allennlp serve --archive-path runs/sentiment_and_topic/model.tar.gz "
    "--include-package allennlp_multitask --host 0.0.0.0 --workers 4": (
        "a server runs until stopped, on every address: tests/commands/test_serve.py runs workers on loopback"
    ),
    "uv run --locked allennlp train config.jsonnet -s runs/ddp --include-package allennlp_multitask --node-rank 0"
    " # on 10.0.0.1": "two machines: the page's next block runs both nodes on this one",
    "uv run --locked allennlp train config.jsonnet -s runs/ddp --include-package allennlp_multitask --node-rank 1"
    " # on the other": "two machines: the page's next block runs both nodes on this one",
}

# The Hub model of the transformer example, and what the tests load instead (no network): the tiny BERT.
HUB_MODEL = "TRANSFORMER_MODEL=bert-base-uncased TRANSFORMER_HIDDEN_SIZE=768"

# The two nodes' meeting port in the docs, for one that is free here.
PRIMARY_PORT = '"primary_port": 29500'

# Run directories that documented commands read and that no documented command names with `-s`: the block
# that writes each (the quick start's script defaults to it).
WRITTEN_BY = {"sentiment_and_topic": "examples/train_and_predict.sh"}

ALLENNLP_COMMAND = re.compile(r"(^|\s)allennlp [a-z]|examples/train_and_predict\.sh")


def not_run(command: str) -> bool:
    return " ".join(command.split()) in NOT_RUN


def runs_allennlp(command: str) -> bool:
    return not command.lstrip().startswith("#") and ALLENNLP_COMMAND.search(command) is not None


def commands_to_run(block: Block) -> List[str]:
    """The block's command lines less those `NOT_RUN`; none where no `allennlp` command is left."""
    commands = [command for command in block.commands if not not_run(command)]
    return commands if any(runs_allennlp(command) for command in commands) else []


ALLENNLP_BLOCKS = [block for block in bash_blocks() if any(runs_allennlp(command) for command in block.commands)]
RUN_BLOCKS = [block for block in ALLENNLP_BLOCKS if commands_to_run(block)]


class Workspace:
    """A directory to run documented commands from, as from the repository root; each block runs once."""

    def __init__(self, directory: Path, tiny_bert_dir: Path) -> None:
        self.directory = directory
        self.tiny_bert_dir = tiny_bert_dir
        (directory / "examples").symlink_to(REPO_ROOT / "examples", target_is_directory=True)
        (directory / "runs").mkdir()
        self.finished: Dict[str, subprocess.CompletedProcess] = {}

    def run(self, block: Block) -> subprocess.CompletedProcess:
        commands = "\n".join(commands_to_run(block))
        if commands not in self.finished:
            for run_dir in self.runs_read(commands):
                self.provide(run_dir)
            tiny_model = f"TRANSFORMER_MODEL={self.tiny_bert_dir} TRANSFORMER_HIDDEN_SIZE=16"
            free_port = f'"primary_port": {find_open_port()}'
            here = in_test_environment(commands).replace(HUB_MODEL, tiny_model).replace(PRIMARY_PORT, free_port)
            self.finished[commands] = self.bash(here)
        return self.finished[commands]

    @staticmethod
    def runs_read(commands: str) -> List[str]:
        """The run directories (`runs/NAME/...`) the commands read, less those they write (`-s runs/NAME`)."""
        written = set(re.findall(r"-s runs/([\w.-]+)", commands))
        return sorted(set(re.findall(r"runs/([\w.-]+)/", commands)) - written)

    def provide(self, run_dir: str) -> None:
        if (self.directory / "runs" / run_dir).exists():
            return
        if run_dir == "lora":
            self.train_lora()
            return
        writes = WRITTEN_BY.get(run_dir, f"-s runs/{run_dir} ")
        (writer,) = {"\n".join(commands_to_run(block)): block for block in RUN_BLOCKS if writes in block.text}.values()
        finished = self.run(writer)
        assert finished.returncode == 0, (writer.page, writer.line, finished.stderr[-3000:])

    def train_lora(self) -> None:
        """`runs/lora`: the bundled example's two tasks on the tiny BERT with a LoRA block, by `allennlp train`."""
        config = self.directory / "runs" / "lora_config.json"
        config.write_text(json.dumps(peft_config(self.tiny_bert_dir)))
        finished = self.bash(f"allennlp train {config} -s runs/lora --include-package allennlp_multitask")
        assert finished.returncode == 0, finished.stderr[-3000:]

    def bash(self, commands: str) -> subprocess.CompletedProcess:
        assert not (self.directory / ".allennlp_plugins").exists()
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", commands],
            cwd=self.directory,
            env=program_environment(),
            capture_output=True,
            text=True,
            timeout=1200,
        )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("documented_commands"), tiny_bert_dir)


@pytest.mark.slow
@pytest.mark.once
@pytest.mark.subprocess
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[f"{block.page}:{block.line}" for block in RUN_BLOCKS])
def test_documented_command_runs_from_a_directory_without_a_plugins_file(block: Block, workspace: Workspace):
    finished = workspace.run(block)
    assert finished.returncode == 0, (block.page, block.line, finished.stderr[-3000:])
    assert not (workspace.directory / ".allennlp_plugins").exists()


def test_every_documented_allennlp_command_is_run_or_said_why_not():
    documented = {" ".join(command.split()) for block in ALLENNLP_BLOCKS for command in block.commands}
    assert sorted(set(NOT_RUN) - documented) == []
    run = [command for block in RUN_BLOCKS for command in commands_to_run(block)]
    left_out = [command for block in ALLENNLP_BLOCKS for command in block.commands if command not in run]
    assert [command for command in left_out if runs_allennlp(command) and not not_run(command)] == []
    assert all(HUB_MODEL in command for command in run if "TRANSFORMER_MODEL=" in command)
    assert all(PRIMARY_PORT in command for command in run if "primary_port" in command)
