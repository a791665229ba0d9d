"""
allennlp_multitask_compat: AllenNLP 2.10.1 imports and works on the locked Hugging Face stack, without our
package being imported, through the start-up file installed with the project (editable here; the wheel in
test_own_project.py and below); each fix has a test that fails without it on the releases that need it.
"""

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import torch
from allennlp.common import Params
from allennlp.data import Instance, Token, Vocabulary
from allennlp.data.data_loaders.data_collator import DataCollator
from allennlp.data.fields import TextField
from allennlp.data.token_indexers import PretrainedTransformerIndexer
from allennlp.data.tokenizers import PretrainedTransformerTokenizer
from allennlp.training.optimizers import Optimizer

import allennlp_multitask_compat
from tests.huggingface_goldens import TEXTS, WRITTEN_BY_TRANSFORMERS_5, load_goldens, token_data

OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def python(code: str, executable: str = sys.executable) -> str:
    done = subprocess.run([executable, "-c", code], capture_output=True, text=True, env=OFFLINE)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.subprocess
def test_allennlp_and_all_its_commands_import_in_a_process_that_never_imports_our_package():
    printed = python(
        "import sys, allennlp.commands, allennlp.training.optimizers as optimizers\n"
        "print(optimizers.HuggingfaceAdamWOptimizer.__mro__[2].__name__, 'allennlp_multitask' in sys.modules)"
    )
    assert printed.split() == ["AdamW", "False"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_start_up_imports_nothing_but_the_finder_and_applies_nothing_until_allennlp_loads():
    printed = python(
        "import sys, json, email.parser\n"
        "finder = next(f for f in sys.meta_path if type(f).__name__ == 'CompatFinder')\n"
        "heavy = [m for m in ('typing', 'torch', 'transformers', 'huggingface_hub') if m in sys.modules]\n"
        "from importlib.machinery import PathFinder\n"
        "print(sys.meta_path.index(finder) < sys.meta_path.index(PathFinder), len(finder.pending), heavy)"
    )
    assert printed.split(maxsplit=2) == ["True", str(len(allennlp_multitask_compat.FIXES)), "[]\n"]


@pytest.mark.slow
def test_a_fix_applied_after_its_module_loads_waits_for_the_load_not_for_a_look_up():
    # `importlib.util.find_spec` asks the finders for a module without loading it.
    printed = python(
        "import importlib.util, sys, allennlp.common\n"
        "assert 'allennlp.common.cached_transformers' not in sys.modules\n"
        "importlib.util.find_spec('allennlp.common.cached_transformers')\n"
        "from allennlp.common import cached_transformers\n"
        "print(getattr(cached_transformers.get_tokenizer, 'drops_add_special_tokens', False))"
    )
    assert printed.split() == ["True"]


def allennlp(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    """The environment's `allennlp` program, run in `cwd` (which has no `.allennlp_plugins` file)."""
    assert not (cwd / ".allennlp_plugins").exists()
    program = str(Path(sys.executable).parent / "allennlp")
    return subprocess.run([program, *arguments], cwd=cwd, capture_output=True, text=True, env=OFFLINE)


GREETINGS_PLUGIN = """
from allennlp.commands.subcommand import Subcommand


@Subcommand.register("greet")
class Greet(Subcommand):
    def add_subparser(self, parser):
        subparser = parser.add_parser(self.name, description="Prints a greeting.")
        subparser.set_defaults(func=lambda arguments: print("hello from a plugin"))
        return subparser
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_allennlp_help_lists_the_subcommands_of_the_included_package(tmp_path: Path):
    finished = allennlp("--help", "--include-package", "allennlp_multitask", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "merge-adapters" in finished.stdout and "export-adapters" in finished.stdout


@pytest.mark.slow
@pytest.mark.subprocess
def test_any_included_packages_subcommand_runs_whichever_way_the_option_is_written(tmp_path: Path):
    (tmp_path / "greetings").mkdir()
    (tmp_path / "greetings" / "__init__.py").write_text(GREETINGS_PLUGIN)
    included = ["--include-package", "allennlp_multitask", "--include-package=greetings"]
    finished = allennlp("greet", *included, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.split("\n")[-2] == "hello from a plugin"


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_package_that_fails_to_import_fails_an_added_subcommand_as_it_fails_allennlps_own(tmp_path: Path):
    included = ["--include-package", "allennlp_multitask", "--include-package", "no_such_package"]
    added = allennlp("merge-adapters", "model.tar.gz", "merged.tar.gz", *included, cwd=tmp_path)
    allennlps_own = allennlp("evaluate", "model.tar.gz", "data.jsonl", *included, cwd=tmp_path)
    assert allennlps_own.stderr.splitlines()[-1] == "ModuleNotFoundError: No module named 'no_such_package'"
    assert (added.returncode, added.stderr.splitlines()[-1]) == (1, allennlps_own.stderr.splitlines()[-1])


def test_every_fix_says_why_and_names_a_module_of_allennlp():
    for module, fix in allennlp_multitask_compat.FIXES.items():
        assert module.startswith("allennlp."), module
        assert len(fix.reason) > 80 and (fix.before or fix.after), module


def test_the_hub_names_allennlp_imports_exist_and_push_to_hf_explains_what_to_do_instead(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    import huggingface_hub
    from allennlp.common.push_to_hf import HfFolder, Repository

    assert HfFolder.get_token() == huggingface_hub.get_token() == "hf_not_a_real_token"
    if not hasattr(huggingface_hub.Repository, "git_pull"):  # huggingface-hub 1.0 and later
        with pytest.raises(RuntimeError, match="hf upload"):
            Repository("/tmp/nowhere", clone_from="user/model")


@pytest.mark.parametrize("correct_bias", [True, False])
def test_huggingface_adamw_builds_and_steps(correct_bias: bool):
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(3, 2))
    before = weight.detach().clone()
    optimizer = Optimizer.by_name("huggingface_adamw")(
        [("weight", weight)], lr=0.1, weight_decay=0.01, correct_bias=correct_bias
    )
    weight.sum().backward()
    optimizer.step()
    first_step = 0.1 if correct_bias else 0.1 * (1 - 0.9) / (1 - 0.999) ** 0.5
    # The first Adam step moves each weight by about lr (bias-corrected) against its gradient's sign.
    moved = before - weight.detach()
    assert torch.allclose(moved, torch.full_like(moved, first_step) + 0.1 * 0.01 * weight.detach(), rtol=1e-3)


def test_allennlps_transformer_tokenizer_loads_and_adds_special_tokens(tiny_bert_dir):
    tokenizer = PretrainedTransformerTokenizer(str(tiny_bert_dir))
    assert [token.text for token in tokenizer.tokenize("the film was great")] == [
        "[CLS]",
        "the",
        "film",
        "was",
        "great",
        "[SEP]",
    ]


def test_a_tokenizer_saved_by_transformers_5_loads_and_tokenizes_as_4_49s():
    """
    transformers 5 saves the tiny ModernBERT's plain tokenizer as `TokenizersBackend`, a class 4.x lacks
    (the "allennlp.data.tokenizers" fix); it tokenizes as the one 4.49 saved.
    """
    tokenizer = PretrainedTransformerTokenizer(str(WRITTEN_BY_TRANSFORMERS_5))
    observed = json.loads(json.dumps([token_data(tokenizer.tokenize(text)) for text in TEXTS]))
    assert observed == load_goldens()["modernbert"]["tokenize"]


def test_the_indexer_puts_special_tokens_around_every_max_length_segment(tiny_bert_dir):
    tokenizer = PretrainedTransformerTokenizer(str(tiny_bert_dir))
    indexer = PretrainedTransformerIndexer(str(tiny_bert_dir), max_length=4)
    tokens = tokenizer.tokenize("the film was great what a film")
    ids = indexer.tokens_to_indices(tokens, Vocabulary())["token_ids"]
    texts = tokenizer.tokenizer.convert_ids_to_tokens(ids)
    assert texts == [
        "[CLS]",
        "the",
        "film",
        "[SEP]",
        "[CLS]",
        "was",
        "great",
        "[SEP]",
        "[CLS]",
        "what",
        "a",
        "[SEP]",
        "[CLS]",
        "film",
        "[SEP]",
    ]
    assert all(isinstance(token, Token) for token in tokens)


def test_the_language_model_collator_masks_every_word_piece_at_mlm_probability_one(tiny_bert_dir):
    collator = DataCollator.from_params(
        Params({"type": "language_model", "model_name": str(tiny_bert_dir), "mlm_probability": 1.0})
    )
    tokens = PretrainedTransformerTokenizer(str(tiny_bert_dir)).tokenize("the film was great")
    indexer = PretrainedTransformerIndexer(str(tiny_bert_dir))
    instances = [Instance({"source": TextField(tokens, {"tokens": indexer})}) for _ in range(2)]
    for instance in instances:
        instance.index_fields(Vocabulary())
    labels = collator(instances)["source"]["tokens"]["labels"]
    # Every word piece is a target, the special tokens ([CLS], [SEP]) none.
    assert (labels[:, 1:-1] != -100).all() and (labels[:, [0, -1]] == -100).all()


def test_a_wheel_installed_by_pip_applies_the_fixes_at_start_up(built_wheel: Path, tmp_path: Path):
    environment = tmp_path / "pip-env"
    venv.create(environment, with_pip=True)
    pip_python = str(environment / "bin" / "python")
    subprocess.run([pip_python, "-m", "pip", "install", "-q", "--no-deps", str(built_wheel)], check=True, env=OFFLINE)
    # Everything else comes from this environment's site-packages, added after the new one's, whose .pth
    # files are not run: only the wheel's start-up file can apply the fixes.
    site_packages = next((environment / "lib").glob("python3.*/site-packages"))
    (site_packages / "zz_test_environment.pth").write_text(torch.__file__.rsplit("/torch/", 1)[0] + "\n")
    printed = python(
        "import sys, allennlp.commands, allennlp_multitask_compat\n"
        "print(allennlp_multitask_compat.__file__.startswith(sys.prefix), 'allennlp_multitask' in sys.modules)",
        pip_python,
    )
    assert printed.split() == ["True", "False"]
