"""
AllenNLP 2.10.1 on today's Hugging Face libraries, and its command line with `--include-package`: every
compatibility fix, applied as AllenNLP's modules load.

AllenNLP was written against transformers 4.20 and huggingface-hub 0.x. Some of the names it uses were
removed since, and two of them are looked up while AllenNLP's modules are being imported, so that
`import allennlp` (and so every `allennlp` command, which imports them all before any plugin) fails
before `--include-package allennlp_multitask` could do anything. This module therefore ships at the top
of our wheel beside `allennlp_multitask_compat.pth`, a file Python's `site` runs at start-up; it imports
nothing but `sys` (and `__future__`), and only puts a finder on `sys.meta_path`. The finder does nothing
until one of the modules named in `FIXES` is first imported; it then applies that module's fix, just
before the module runs (`before`) or just after (`after`), and forgets it. A process that never imports AllenNLP never
triggers it. Importing `allennlp_multitask` installs the finder too, and applies at once the fixes of
modules already imported, for environments where the `.pth` file was not run (`python -S`).

One fix is not about Hugging Face: `allennlp.commands` builds its parser of subcommands before it imports
the packages named by `--include-package`, so a plugin's subcommands (ours, `merge-adapters` and
`export-adapters`) existed only for a `.allennlp_plugins` file; that cannot wait for our package either.

Each fix is idempotent and does nothing on the releases that still have what AllenNLP expects; the test
for each (tests/test_allennlp_multitask_compat.py) fails when it is removed.
"""

from __future__ import annotations

import sys

# Start-up stays cheap: annotation names are imported for type checkers only (not even collections.abc).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Fix:
    """
    One compatibility fix: why it is needed and since which release (`reason`), and what it does: `before`
    runs just before its module runs, `after` just after, with the module.
    """

    def __init__(
        self, reason: str, before: Callable[[], None] | None = None, after: Callable[[object], None] | None = None
    ) -> None:
        self.reason = reason
        self.before = before
        self.after = after


def _restore_hub_names() -> None:
    import huggingface_hub

    if not hasattr(huggingface_hub, "HfFolder"):

        class HfFolder:
            """The token look-up of huggingface-hub 0.x's `HfFolder`, which `allennlp push-to-hf` uses."""

            @staticmethod
            def get_token() -> str | None:
                return huggingface_hub.get_token()

        huggingface_hub.HfFolder = HfFolder
    if not hasattr(huggingface_hub, "Repository"):

        class Repository:
            """Stands in for huggingface-hub 0.x's git-based `Repository`, gone since 1.0."""

            def __init__(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError(
                    "`allennlp push-to-hf` clones the model's repository with git through "
                    "huggingface_hub.Repository, which huggingface-hub 1.0 removed. Upload the archive's "
                    "files instead: `hf upload REPO_ID DIRECTORY`, or huggingface_hub.HfApi().upload_folder()."
                )

        huggingface_hub.Repository = Repository


def _restore_transformers_adamw() -> None:
    import transformers

    if "AdamW" not in vars(transformers):
        transformers.AdamW = huggingface_adamw_class()


def huggingface_adamw_class() -> type:
    """
    The AdamW that transformers 4.x shipped (`transformers.AdamW`, removed in 4.50), which AllenNLP's
    `"huggingface_adamw"` optimizer subclasses: the same update, operation for operation, so that runs
    are bit-identical to those on transformers 4.49 (tested against a recording of 4.49's updates).
    It differs from `torch.optim.AdamW` by `correct_bias` (False: no bias correction, as in the original
    BERT) and by applying the weight decay after the Adam step, with `eps` added outside the square root.
    """
    import math

    import torch

    class AdamW(torch.optim.Optimizer):
        def __init__(
            self,
            params: object,
            lr: float = 1e-3,
            betas: tuple = (0.9, 0.999),
            eps: float = 1e-6,
            weight_decay: float = 0.0,
            correct_bias: bool = True,
        ) -> None:
            if lr < 0.0 or eps < 0.0 or not all(0.0 <= beta < 1.0 for beta in betas):
                raise ValueError(f"Invalid AdamW settings: lr={lr}, betas={betas}, eps={eps}")
            defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
            super().__init__(params, {**defaults, "correct_bias": correct_bias})

        @torch.no_grad()
        def step(self, closure: Callable[[], object] | None = None) -> object:
            loss = closure() if closure is not None else None
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                for parameter in group["params"]:
                    if parameter.grad is None:
                        continue
                    if parameter.grad.is_sparse:
                        raise RuntimeError("AdamW does not support sparse gradients; use torch.optim.SparseAdam.")
                    state = self.state[parameter]
                    if not state:
                        state["step"] = 0
                        state["exp_avg"] = torch.zeros_like(parameter)
                        state["exp_avg_sq"] = torch.zeros_like(parameter)
                    state["step"] += 1
                    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                    exp_avg.mul_(beta1).add_(parameter.grad, alpha=1.0 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(parameter.grad, parameter.grad, value=1.0 - beta2)
                    denominator = exp_avg_sq.sqrt().add_(group["eps"])
                    step_size = group["lr"]
                    if group["correct_bias"]:
                        step = state["step"]
                        step_size = step_size * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
                    parameter.addcdiv_(exp_avg, denominator, value=-step_size)
                    if group["weight_decay"] > 0.0:
                        parameter.add_(parameter, alpha=-group["lr"] * group["weight_decay"])
            return loss

    AdamW.__module__ = "transformers"
    AdamW.__qualname__ = "AdamW"
    return AdamW


def _drop_tokenizer_constructor_flag(cached_transformers: object) -> None:
    load_tokenizer = cached_transformers.get_tokenizer
    if getattr(load_tokenizer, "drops_add_special_tokens", False):
        return

    def get_tokenizer(model_name: str, **kwargs: object) -> object:
        """AllenNLP's `cached_transformers.get_tokenizer`, without the constructor `add_special_tokens`."""
        kwargs.pop("add_special_tokens", None)
        return load_tokenizer(model_name, **kwargs)

    get_tokenizer.drops_add_special_tokens = True  # type: ignore[attr-defined]
    cached_transformers.get_tokenizer = get_tokenizer


def _restore_encode_plus() -> None:
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    if not hasattr(PreTrainedTokenizerBase, "encode_plus"):

        def encode_plus(self: object, *args: object, **kwargs: object) -> object:
            """transformers 4.x's `encode_plus`: what calling the tokenizer on one text (or pair) returns."""
            return self(*args, **kwargs)

        PreTrainedTokenizerBase.encode_plus = encode_plus


def _load_transformers_5_tokenizer_files() -> None:
    import transformers

    if not hasattr(transformers, "TokenizersBackend"):
        from transformers import PreTrainedTokenizerFast

        transformers.TokenizersBackend = PreTrainedTokenizerFast


def surround(start: list[int], end: list[int], token_ids: list[int]) -> list[int]:
    """`token_ids` with a single sequence's special tokens around them."""
    return [*start, *token_ids, *end]


def _give_indexer_tokenizers_special_tokens(indexer_module: object) -> None:
    import functools

    indexer_class = indexer_module.PretrainedTransformerIndexer
    initialise = indexer_class.__init__
    if getattr(initialise, "gives_special_tokens", False):
        return

    @functools.wraps(initialise)
    def __init__(self: object, *args: object, **kwargs: object) -> None:
        initialise(self, *args, **kwargs)
        if not hasattr(self._tokenizer, "build_inputs_with_special_tokens"):
            tokenizer = self._allennlp_tokenizer
            start = [token.text_id for token in tokenizer.single_sequence_start_tokens]
            end = [token.text_id for token in tokenizer.single_sequence_end_tokens]
            self._tokenizer.build_inputs_with_special_tokens = functools.partial(surround, start, end)

    __init__.gives_special_tokens = True  # type: ignore[attr-defined]
    indexer_class.__init__ = __init__


def included_packages(arguments: list[str]) -> list[str]:
    """The packages that `arguments` name with `--include-package X` or `--include-package=X`, in order."""
    packages = []
    for argument, following in zip(arguments, [*arguments[1:], None]):
        if argument == "--include-package" and following is not None:
            packages.append(following)
        elif argument.startswith("--include-package="):
            packages.append(argument.partition("=")[2])
    return packages


def _import_included_packages_with_plugins(commands_module: object) -> None:
    import_plugins = commands_module.import_plugins
    if getattr(import_plugins, "imports_included_packages", False):
        return

    def import_plugins_and_included_packages() -> None:
        """
        AllenNLP's `import_plugins`, then the packages the command line names with `--include-package`, as
        `allennlp.commands.main` imports them (`import_module_and_submodules`), so their subcommands register.
        """
        from allennlp.common.util import import_module_and_submodules

        import_plugins()
        for package in included_packages(sys.argv[1:]):
            import_module_and_submodules(package)

    import_plugins_and_included_packages.imports_included_packages = True  # type: ignore[attr-defined]
    commands_module.import_plugins = import_plugins_and_included_packages


def _build_language_model_collators_by_keyword(collator_module: object) -> None:
    import functools

    collator_class = collator_module.LanguageModelingDataCollator
    if getattr(collator_class.__init__, "builds_by_keyword", False):
        return

    @functools.wraps(collator_class.__init__)
    def __init__(
        self: object,
        model_name: str,
        mlm: bool = True,
        mlm_probability: float = 0.15,
        filed_name: str = "source",
        namespace: str = "tokens",
    ) -> None:
        """AllenNLP's `LanguageModelingDataCollator.__init__`, giving Hugging Face's collator keywords."""
        from allennlp.common import cached_transformers

        self._field_name = filed_name
        self._namespace = namespace
        tokenizer = cached_transformers.get_tokenizer(model_name)
        self._collator = collator_module.DataCollatorForLanguageModeling(
            tokenizer=tokenizer, mlm=mlm, mlm_probability=mlm_probability
        )
        self._mask_tokens = getattr(self._collator, "mask_tokens", None) or self._collator.torch_mask_tokens

    __init__.builds_by_keyword = True  # type: ignore[attr-defined]
    collator_class.__init__ = __init__


FIXES: dict[str, Fix] = {
    "allennlp.common.push_to_hf": Fix(
        "huggingface-hub 1.0 removed `HfFolder` and `Repository`, which this module imports: `import allennlp` "
        "failed. `HfFolder.get_token` comes back as the hub's `get_token`; `Repository` as a stand-in that "
        "explains how to upload instead, for `allennlp push-to-hf` only.",
        before=_restore_hub_names,
    ),
    "allennlp.training.optimizers": Fix(
        "transformers 4.50 removed `transformers.AdamW`, which this module subclasses for `huggingface_adamw`: "
        "`import allennlp.training` failed. It comes back, with 4.49's update (`huggingface_adamw_class`).",
        before=_restore_transformers_adamw,
    ),
    "allennlp.common.cached_transformers": Fix(
        "transformers 4.34 refuses `add_special_tokens` as a constructor argument ('conflicts with the method "
        "add_special_tokens'), which `PretrainedTransformerTokenizer` passes to `get_tokenizer`; earlier "
        "releases stored and ignored it, and AllenNLP adds special tokens when it encodes. It is dropped.",
        after=_drop_tokenizer_constructor_flag,
    ),
    "allennlp.data.tokenizers.pretrained_transformer_tokenizer": Fix(
        "transformers 5.0 removed `encode_plus`, by which `PretrainedTransformerTokenizer` encodes; it comes "
        "back as what it always was, a call of the tokenizer on one text or a pair.",
        before=_restore_encode_plus,
    ),
    "allennlp.data.tokenizers": Fix(
        "transformers 5.0 saves a tokenizer that has no class of its own (ModernBERT's, any plain tokenizer.json) "
        "as `tokenizer_class: TokenizersBackend`, which transformers 4.x does not know ('Tokenizer class "
        "TokenizersBackend does not exist'), so a model saved with 5.x did not load on 4.x. On 4.x the name "
        "means what it does on 5.x: the tokenizer that tokenizer.json describes (`PreTrainedTokenizerFast`).",
        before=_load_transformers_5_tokenizer_files,
    ),
    "allennlp.data.data_loaders.data_collator": Fix(
        "transformers 5 declares `whole_word_mask` as `DataCollatorForLanguageModeling`'s third field, where "
        "`mlm_probability` was: AllenNLP's `language_model` collator passes it third, so every batch asked for "
        "whole-word masking without word offsets (IndexError in `torch_mask_tokens`) and its `mlm_probability` "
        "was ignored. The collator is built again with keywords, as AllenNLP meant it.",
        after=_build_language_model_collators_by_keyword,
    ),
    "allennlp.data.token_indexers.pretrained_transformer_indexer": Fix(
        "transformers 5.0's tokenizers have no `build_inputs_with_special_tokens`, by which "
        "`PretrainedTransformerIndexer` puts special tokens around each `max_length` segment. An indexer's "
        "tokenizer gets one that adds the special tokens AllenNLP found around a single sequence.",
        after=_give_indexer_tokenizers_special_tokens,
    ),
    "allennlp.commands": Fix(
        "`allennlp` builds its subcommand parser before it imports the packages named by `--include-package`, "
        "so their subcommands (ours: `merge-adapters`, `export-adapters`) were 'invalid choice' unless a "
        "`.allennlp_plugins` file named the package. `parse_args` imports plugins to find subcommands it does "
        "not know (and for `--help`); it now imports the `--include-package` packages of the command line "
        "there too, as `main` would just after, so any plugin's subcommands work and `--help` lists them.",
        after=_import_included_packages_with_plugins,
    ),
}


class _RunAfter:
    """A loader that runs a module as `loader` would, then `after` on it."""

    def __init__(self, loader: object, after: Callable[[object], None]) -> None:
        self.loader = loader
        self.after = after

    def create_module(self, spec: object) -> object:
        return self.loader.create_module(spec)

    def exec_module(self, module: object) -> None:
        module.__loader__ = self.loader
        self.loader.exec_module(module)
        self.after(module)

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)


class CompatFinder:
    """A `sys.meta_path` finder that applies each of `FIXES` when its module is first imported."""

    def __init__(self, fixes: dict[str, Fix]) -> None:
        self.pending = dict(fixes)

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        fix = self.pending.get(name)
        if fix is None:
            return None
        if fix.before is not None:
            fix.before()
        if fix.after is None:
            del self.pending[name]
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            # The fix stays pending until the module runs: `importlib.util.find_spec` finds without loading.
            spec.loader = _RunAfter(spec.loader, lambda module: self._apply_after(name, module))
        return spec

    def _apply_after(self, name: str, module: object) -> None:
        fix = self.pending.pop(name, None)
        if fix is not None and fix.after is not None:
            fix.after(module)

    def apply_to_imported(self) -> None:
        """Applies at once the fixes of modules imported before the finder was installed."""
        for name in [name for name in self.pending if name in sys.modules]:
            fix = self.pending.pop(name)
            if fix.before is not None:
                fix.before()
            if fix.after is not None:
                fix.after(sys.modules[name])


def install() -> CompatFinder:
    """Puts the finder first on `sys.meta_path`, once a process; returns it."""
    for finder in sys.meta_path:
        if isinstance(finder, CompatFinder):
            return finder
    finder = CompatFinder(FIXES)
    sys.meta_path.insert(0, finder)
    finder.apply_to_imported()
    return finder


install()
