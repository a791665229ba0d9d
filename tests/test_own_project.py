"""
A user's own project, outside the repository, as the README's "Use it in your own project" describes:
our wheel is built from a copy of the checkout, a new uv project on the newest Python found takes the
README's `[tool.uv]` lines and `uv add`s the wheel, then the bundled example trains and predicts there
(`examples/train_and_predict.sh`) and `allennlp evaluate` reads the archive through `.allennlp_plugins`.
A second project also depends on today's Hugging Face tools and fine-tunes the transformer example on an
architecture that transformers 4.49 lacks. A third is AllenNLP-era code: it pins `overrides==3.1.0` and
decorates its own reader and head with `@overrides`. Nothing is written into the repository. Slow (a new
environment each), but uv's cache is shared.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from tests.conftest import REPO_ROOT
from tests.huggingface_models import SMALL, save_tiny_model

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

SUPPORTED = ["3.13", "3.12", "3.11"]


def find_python(version: str) -> Optional[str]:
    """An interpreter of `version` ("3.11") on this machine (pyenv's versions too), as a path."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
    found = shutil.which(f"python{version}")
    for candidate in [*map(str, candidates), *([found] if found else [])]:
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
        if probe.returncode == 0 and probe.stdout.decode().strip() == str(tuple(map(int, version.split(".")))):
            return candidate
    return None


def newest_python() -> str:
    """The newest supported interpreter on this machine, as a path."""
    return next((found for version in SUPPORTED if (found := find_python(version))), sys.executable)


def readme_uv_recipe() -> str:
    """The README's `[tool.uv]` block for a user's `pyproject.toml`, as text."""
    blocks = re.findall(r"```toml\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.DOTALL)
    recipes = [block for block in blocks if "override-dependencies" in block]
    assert len(recipes) == 1
    return recipes[0]


def git_status() -> Optional[str]:
    if not (REPO_ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def run(command: List[str], cwd: Path, env: Dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout


def users_project(directory: Path, requirements: List[str], python: Optional[str] = None) -> Tuple[str, Dict[str, str]]:
    """
    A new uv project in `directory` with the README's `[tool.uv]` lines, `uv add`ing `requirements`, and
    the bundled examples copied in, on `python` (the newest supported interpreter by default). Returns uv
    and the environment the user's commands run with.
    """
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed (the README's test command runs under `uv run`, which sets $UV)"
    # The user's processes know nothing of ours: no active environment, project or interpreter settings.
    ours = ("VIRTUAL_ENV", "UV_PROJECT", "UV_PYTHON", "PYTHONPATH")
    env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    env.update(UV_PYTHON=python or newest_python(), OMP_NUM_THREADS="1")
    directory.mkdir()
    run([uv, "init", "--bare", "--name", directory.name], directory, env)
    with (directory / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n" + readme_uv_recipe())
    run([uv, "add", *requirements], directory, env)
    shutil.copytree(REPO_ROOT / "examples", directory / "examples")
    return uv, env


def test_a_new_uv_project_installs_the_wheel_and_trains_evaluates_and_predicts(tmp_path: Path, built_wheel: Path):
    status_before = git_status()
    project = tmp_path / "my-project"
    uv, env = users_project(project, [str(built_wheel)])

    where = run([uv, "run", "python", "-c", "import allennlp_multitask as m; print(m.__file__)"], project, env)
    assert str(project / ".venv") in where and str(REPO_ROOT) not in where, where

    printed = run([uv, "run", "bash", "examples/train_and_predict.sh", "runs/example"], project, env)
    run_dir = project / "runs" / "example"
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == len((project / "examples/data/predict_inputs.jsonl").read_text().splitlines())
    assert all(any(key.endswith("_label") for key in output) for output in predictions), printed

    (project / ".allennlp_plugins").write_text("allennlp_multitask\n")
    data = {task: f"examples/data/{task}_validation.jsonl" for task in ["sentiment", "topic"]}
    archive = str(run_dir / "model.tar.gz")
    evaluate = ["allennlp", "evaluate", archive, json.dumps(data), "--output-file", "runs/metrics.json"]
    run([uv, "run", *evaluate], project, env)
    metrics = json.loads((project / "runs" / "metrics.json").read_text())
    assert 0.0 <= metrics["sentiment_accuracy"] <= 1.0 and 0.0 <= metrics["topic_accuracy"] <= 1.0, metrics

    assert git_status() == status_before, "the test wrote into the repository"


VERSIONS = "import importlib.metadata as m; print(*(m.version(n) for n in ['transformers', 'huggingface-hub']))"


def test_a_project_with_todays_hugging_face_tools_fine_tunes_a_transformer_4_49_lacks(
    tmp_path: Path, built_wheel: Path
):
    status_before = git_status()
    project = tmp_path / "hf-project"
    tools = ["sentence-transformers", "peft", "datasets", "accelerate", "transformers>=5.20", "huggingface-hub>=2"]
    uv, env = users_project(project, [str(built_wheel), *tools])
    transformers_version, hub_version = run([uv, "run", "python", "-c", VERSIONS], project, env).split()
    assert int(transformers_version.split(".")[0]) >= 5 and int(hub_version.split(".")[0]) >= 2
    run([uv, "run", "python", "-c", "import sentence_transformers, peft, datasets, accelerate"], project, env)
    # A tiny random-init GTE (new in transformers 5), saved where the user's project loads it by path.
    save_tiny_model("gte", project / "runs" / "tiny-gte")
    env.update(TRANSFORMER_MODEL="runs/tiny-gte", TRANSFORMER_HIDDEN_SIZE=str(SMALL["hidden_size"]))
    plugin = ["--include-package", "allennlp_multitask"]
    config = "examples/transformer_sentiment_and_topic.jsonnet"
    run(
        [uv, "run", "allennlp", "train", config, "-s", "runs/gte", *plugin, "-o", '{"trainer.num_epochs": 2}'],
        project,
        env,
    )
    data = {task: f"examples/data/{task}_validation.jsonl" for task in ["sentiment", "topic"]}
    evaluate = ["allennlp", "evaluate", "runs/gte/model.tar.gz", json.dumps(data), "--output-file", "runs/metrics.json"]
    run([uv, "run", *evaluate, *plugin], project, env)
    metrics = json.loads((project / "runs" / "metrics.json").read_text())
    assert 0.0 <= metrics["sentiment_accuracy"] <= 1.0 and 0.0 <= metrics["topic_accuracy"] <= 1.0, metrics
    predict = ["allennlp", "predict", "runs/gte/model.tar.gz", "examples/data/predict_inputs.jsonl", "--silent"]
    run([uv, "run", *predict, *plugin, "--output-file", "runs/predictions.jsonl"], project, env)
    predictions = [json.loads(line) for line in (project / "runs" / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == len((project / "examples/data/predict_inputs.jsonl").read_text().splitlines())
    assert all(any(key.endswith("_label") for key in output) for output in predictions)
    assert git_status() == status_before, "the test wrote into the repository"


# AllenNLP-era code, as projects wrote it for AllenNLP 2.x with `overrides` 3.1 (whose decorator checks only
# that the method exists in a base class; overrides 7 rejects both classes at import). overrides 3.1 reads
# the class body's bytecode to find the base classes, which fails on Python 3.12's ("IndexError: tuple index
# out of range" at `@overrides`): such code runs on Python 3.11 only, whatever else it depends on.
LEGACY_TASKS = """
import json
from typing import Dict, Iterable, Optional

import torch
from allennlp.data import DatasetReader, Instance, Vocabulary
from allennlp.data.fields import LabelField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import WhitespaceTokenizer
from allennlp.models.heads import Head
from allennlp.modules import Seq2VecEncoder
from allennlp.training.metrics import CategoricalAccuracy
from overrides import overrides


@DatasetReader.register("legacy_sentences")
class LegacySentences(DatasetReader):
    def __init__(self, text_key: str, label_key: str, label_namespace: str = "labels", **kwargs) -> None:
        super().__init__(**kwargs)
        self.text_key, self.label_key, self.label_namespace = text_key, label_key, label_namespace
        self.tokenizer = WhitespaceTokenizer()
        self.indexers = {"tokens": SingleIdTokenIndexer()}

    @overrides
    def _read(self, file_path: str) -> Iterable[Instance]:
        with open(file_path) as lines:
            for line in lines:
                example = json.loads(line)
                yield self.text_to_instance(example[self.text_key], example[self.label_key])

    @overrides
    def text_to_instance(self, text: str, label: Optional[str] = None) -> Instance:
        fields = {self.text_key: TextField(self.tokenizer.tokenize(text), self.indexers)}
        if label is not None:
            fields[self.label_key] = LabelField(label, label_namespace=self.label_namespace)
        return Instance(fields)


@Head.register("legacy_classifier")
class LegacyClassifier(Head):
    def __init__(self, vocab: Vocabulary, seq2vec_encoder: Seq2VecEncoder, label_namespace: str = "labels") -> None:
        super().__init__(vocab)
        self.encoder = seq2vec_encoder
        self.output = torch.nn.Linear(seq2vec_encoder.get_output_dim(), vocab.get_vocab_size(label_namespace))
        self.accuracy = CategoricalAccuracy()

    @overrides
    def forward(self, encoded_text, encoded_text_mask, label=None) -> Dict[str, torch.Tensor]:
        logits = self.output(self.encoder(encoded_text, encoded_text_mask))
        outputs = {"logits": logits}
        if label is not None:
            outputs["loss"] = torch.nn.functional.cross_entropy(logits, label)
            self.accuracy(logits, label)
        return outputs

    @overrides
    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        return {"accuracy": self.accuracy.get_metric(reset)}
"""


def test_an_allennlp_era_project_pinning_overrides_3_1_trains_its_own_reader_and_head(
    tmp_path: Path, built_wheel: Path
):
    python_3_11 = find_python("3.11")
    if python_3_11 is None:
        pytest.skip("overrides 3.1 works on Python 3.11 only, and this machine has none")
    status_before = git_status()
    project = tmp_path / "legacy-project"
    uv, env = users_project(project, [str(built_wheel), "overrides==3.1.0"], python_3_11)
    version = "import importlib.metadata as m; print(m.version('overrides'))"
    assert run([uv, "run", "python", "-c", version], project, env).split() == ["3.1.0"]
    (project / "legacy_tasks").mkdir()
    (project / "legacy_tasks" / "__init__.py").write_text(LEGACY_TASKS)
    # The bundled example with the legacy reader and head for its sentiment task.
    overrides = {
        "dataset_reader.readers.sentiment.type": "legacy_sentences",
        "model.heads.sentiment.type": "legacy_classifier",
        "trainer.num_epochs": 1,
    }
    plugins = ["--include-package", "legacy_tasks", "--include-package", "allennlp_multitask"]
    train = ["allennlp", "train", "examples/sentiment_and_topic.jsonnet", "-s", "runs/legacy", *plugins]
    run([uv, "run", *train, "-o", json.dumps(overrides)], project, env)
    metrics = json.loads((project / "runs" / "legacy" / "metrics.json").read_text())
    assert 0.0 <= metrics["validation_sentiment_accuracy"] <= 1.0, metrics
    assert git_status() == status_before, "the test wrote into the repository"
