"""
MkDocs hooks (mkdocs.yml `hooks:`): the pages generated from the code, so that they cannot drift from it.

A page holds each generated part between a line `<!-- generated: NAME -->` and a line
`<!-- end generated: NAME -->`, filled with `GENERATORS[NAME]()`. The pages are committed filled, so that
they read whole where the repository is browsed; the build fills them again, and `tests/test_docs.py` fails
when a committed page differs from what the code now gives (`uv run --locked python docs/hooks.py` fills
them in place):

- `configuration-reference`: every component our package registers with AllenNLP (walking
  `Registrable._registry` after `import allennlp_multitask`), with its base class, the parameters of the
  constructor AllenNLP builds it with (names, types, defaults), its docstring's `# Parameters` section and
  an example. A registered component without a `# Parameters` section fails the build.
  Subcommands (`allennlp merge-adapters`, ...) are no configuration component: their section gives their
  command-line arguments instead, from the parser they build. Then AllenNLP's own components that multitask
  configs use most (`STOCK_COMPONENTS`), documented the same way from AllenNLP's code.
- `import-changes`: `allennlp_multitask.common.import_changes` and `allennlp_multitask_compat.FIXES`.

`tests/test_docs.py` calls these generators too, without MkDocs.
"""

import argparse
import inspect
import json
import os
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

os.environ.setdefault("OMP_NUM_THREADS", "1")

GENERATED = re.compile(
    r"^(<!-- generated: ([a-z-]+) -->\n).*?^(<!-- end generated: \2 -->)$", flags=re.MULTILINE | re.DOTALL
)
DOCS = os.path.dirname(os.path.abspath(__file__))
RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?![a-z]+:|#)[^)]*\)")

# Constructor parameters that AllenNLP supplies itself; a configuration does not give them.
SUPPLIED_BY_ALLENNLP = {
    "vocab",
    "head_names",
    "serialization_dir",
    "model_parameters",
    "local_rank",
    "batch_weight_key",
}
# ... and those it supplies to a component of one base class (`TrainModel` builds the trainer with these).
SUPPLIED_TO: Dict[str, set] = {"Trainer": {"model", "data_loader", "validation_data_loader"}}


def supplied(component: "Component") -> set:
    return SUPPLIED_BY_ALLENNLP | SUPPLIED_TO.get(component.base.__name__, set())


# Where a component of each base class goes in a configuration: the snippet around `{...}`.
PLACES: Dict[str, str] = {
    "Model": '"model": {...}',
    "Backbone": '"model": {"type": "multitask", "backbone": {...}}',
    "Head": '"model": {"type": "multitask", "heads": {"my_task": {...}}}',
    "LossWeighting": '"model": {"type": "multitask", "loss_weighting": {...}}',
    "DatasetReader": '"dataset_reader": {...}',
    "DataLoader": '"data_loader": {...}',
    "MultiTaskEpochSampler": '"data_loader": {"type": "multitask", "sampler": {...}}',
    "TokenEmbedder": '"text_field_embedder": {"token_embedders": {"tokens": {...}}}',
    "Trainer": '"trainer": {...}',
    "Checkpointer": '"trainer": {"checkpointer": {...}}',
    "Optimizer": '"trainer": {"optimizer": {...}}',
    "TrainerCallback": '"trainer": {"callbacks": [{...}]}',
    "Metric": '"some_metric": {...}  // wherever a component takes a Metric',
    # Not a configuration key: the default predictor of a multitask model, or `--predictor multitask`.
    "Predictor": "// allennlp predict model.tar.gz inputs.jsonl --predictor multitask",
    "TrainModel": "{...}  // the configuration's top-level keys",
    "TextFieldEmbedder": '"backbone": {"type": "embedder", "text_field_embedder": {...}}',
    "Seq2SeqEncoder": '"backbone": {"type": "embedder", "encoder": {...}}',
    "Seq2VecEncoder": '"heads": {"my_task": {"type": "classifier", "seq2vec_encoder": {...}}}',
    "Tokenizer": '"dataset_reader": {"readers": {"my_task": {"tokenizer": {...}}}}',
    "TokenIndexer": '"dataset_reader": {"readers": {"my_task": {"token_indexers": {"tokens": {...}}}}}',
    "MultiTaskScheduler": '"data_loader": {"type": "multitask", "scheduler": {...}}',
    "LearningRateScheduler": '"trainer": {"learning_rate_scheduler": {...}}',
}

# AllenNLP's own components that a multitask configuration uses most, documented from AllenNLP's code beside
# ours: (base class name, registered name).
STOCK_COMPONENTS: List[Tuple[str, str]] = [
    ("Head", "classifier"),
    ("TextFieldEmbedder", "basic"),
    ("TokenEmbedder", "embedding"),
    ("Seq2SeqEncoder", "lstm"),
    ("Seq2VecEncoder", "boe"),
    ("Seq2VecEncoder", "cls_pooler"),
    ("Tokenizer", "whitespace"),
    ("Tokenizer", "pretrained_transformer"),
    ("TokenIndexer", "single_id"),
    ("TokenIndexer", "pretrained_transformer"),
    ("TokenIndexer", "pretrained_transformer_mismatched"),
    ("MultiTaskScheduler", "homogeneous_roundrobin"),
    ("MultiTaskScheduler", "roundrobin"),
    ("MultiTaskEpochSampler", "uniform"),
    ("MultiTaskEpochSampler", "weighted"),
    ("MultiTaskEpochSampler", "proportional"),
    ("Optimizer", "huggingface_adamw"),
    ("LearningRateScheduler", "slanted_triangular"),
    ("LearningRateScheduler", "linear_with_warmup"),
]


class MissingParametersError(Exception):
    """A registered component cannot be documented (no `# Parameters` section in its docstring)."""


@dataclass(frozen=True)
class Component:
    base: type
    name: str
    cls: type
    constructor: Optional[str]

    @property
    def build(self) -> Callable[..., Any]:
        """What AllenNLP calls to build it from a configuration: the class, or its `constructor` method."""
        return getattr(self.cls, self.constructor) if self.constructor else self.cls

    @property
    def qualified_name(self) -> str:
        return f"{self.cls.__module__}.{self.cls.__qualname__}"


def registered_components() -> List[Component]:
    """Every component `import allennlp_multitask` registers, by base class name, then name."""
    from allennlp.common import Registrable

    import allennlp_multitask  # noqa: F401  (registers)

    components = [
        Component(base, name, cls, constructor)
        for base, names in Registrable._registry.items()
        for name, (cls, constructor) in names.items()
        if cls.__module__.startswith("allennlp_multitask")
    ]
    return sorted(components, key=lambda component: (component.base.__name__, component.name))


def stock_components() -> List[Component]:
    """AllenNLP's components in `STOCK_COMPONENTS`, as registered."""
    from allennlp.common import Registrable

    import allennlp_multitask  # noqa: F401  (imports what registers them)

    bases = {base.__name__: base for base in Registrable._registry}
    return [
        Component(bases[base_name], name, *Registrable._registry[bases[base_name]][name])
        for base_name, name in STOCK_COMPONENTS
    ]


def parameters_section(docstring: str) -> Optional[str]:
    """The text of a docstring's `# Parameters` section (AllenNLP's docstring style), or None."""
    found = re.search(r"^# Parameters\s*\n(.*?)(?=^# |\Z)", docstring, flags=re.MULTILINE | re.DOTALL)
    return found.group(1).strip("\n") if found else None


def docstring_parameters(component: Component) -> str:
    """The `# Parameters` section of the constructor's docstring, else of the class's."""
    for documented in (component.build, component.cls):
        section = parameters_section(inspect.getdoc(documented) or "")
        if section is not None:
            return section
    if component.cls.__module__.startswith("allennlp."):  # AllenNLP's own, documented beside ours
        return "AllenNLP's docstring describes no parameters."
    raise MissingParametersError(
        f"{component.base.__name__} '{component.name}' ({component.qualified_name}) has no '# Parameters' "
        "section in its docstring: add one (the configuration reference is generated from it)."
    )


def render_parameters_section(section: str) -> str:
    """An AllenNLP `# Parameters` section as a Markdown definition list (prose where it lists no parameter)."""
    entries: List[Tuple[str, List[str]]] = []
    prose: List[str] = []
    for line in textwrap.dedent(section).splitlines():
        if line and not line[0].isspace() and re.match(r"^\*{0,2}[A-Za-z_]\w*\s*(:|$)", line):
            entries.append((line, []))
        elif entries:
            entries[-1][1].append(line)
        else:
            prose.append(line)
    rendered = ["\n".join(prose).strip()] if "".join(prose).strip() else []
    for term, description in entries:
        name, _, kind = term.partition(":")
        rendered.append(f"`{name.strip()}` : {kind.strip()}".rstrip(" :"))
        text = textwrap.dedent("\n".join(description)).strip()
        if text:
            rendered[-1] += "\n" + textwrap.indent(text, "    ").replace("    ", ":   ", 1)
    return "\n\n".join(rendered)


def _annotation(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    text = inspect.formatannotation(annotation)
    return re.sub(r"\b(allennlp_multitask|allennlp|torch|typing)\.(\w+\.)*", "", text)


def _default(value: Any) -> str:
    """A default as Python writes it, objects without a readable repr (AllenNLP's `Lazy`) by their class."""
    text = repr(value)
    return f"{type(value).__name__}(...)" if " object at 0x" in text else text


def _configurable(parameter: inspect.Parameter, component: Component) -> bool:
    return parameter.name not in ("self", "cls", *supplied(component)) and parameter.kind not in (
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    )


def parameter_table(component: Component) -> str:
    """The constructor's parameters: name, type, default (or "required")."""
    rows = ["| parameter | type | default |", "| --- | --- | --- |"]
    for parameter in inspect.signature(component.build).parameters.values():
        if parameter.name in ("self", "cls"):
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            default = "other keys, passed on"
        elif parameter.name in supplied(component):
            default = "given by AllenNLP"
        elif parameter.default is inspect.Parameter.empty:
            default = "required"
        else:
            default = f"`{_default(parameter.default)}`"
        prefix = "**" if parameter.kind is inspect.Parameter.VAR_KEYWORD else ""
        kind = _annotation(parameter.annotation).replace("|", "\\|")
        rows.append(f"| `{prefix}{parameter.name}` | {f'`{kind}`' if kind else ''} | {default} |")
    return "\n".join(rows)


def example(component: Component) -> str:
    """A configuration snippet: the component in its place, with its required parameters as placeholders."""
    required = {
        parameter.name: f"<{_annotation(parameter.annotation) or 'value'}>"
        for parameter in inspect.signature(component.build).parameters.values()
        if _configurable(parameter, component) and parameter.default is inspect.Parameter.empty
    }
    fields = required if component.base.__name__ == "TrainModel" else {"type": component.name, **required}
    body = json.dumps(fields, indent=2)
    place = PLACES.get(component.base.__name__, "{...}")
    snippet = place.replace("{...}", body) if "{...}" in place else f"{place}\n{body}"
    return f"```jsonnet\n{snippet}\n```"


def _last(dotted: str) -> str:
    return dotted.rsplit(".", 1)[1]


def _replaced() -> Dict[Tuple[str, str], Any]:
    from allennlp_multitask.common.import_changes import REPLACED_REGISTRATIONS

    return {(_last(entry.base), entry.name): entry for entry in REPLACED_REGISTRATIONS}


def subcommand_section(component: Component) -> str:
    """A `Subcommand`'s section: its usage and its command-line arguments (name, help, default)."""
    subparsers = argparse.ArgumentParser(prog="allennlp").add_subparsers()
    parser = component.cls().add_subparser(subparsers)
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=1000)  # one line, on every build
    rows = ["| argument | help | default |", "| --- | --- | --- |"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = ", ".join(action.option_strings) or action.dest
        default = "required" if action.required or not action.option_strings else f"`{action.default!r}`"
        rows.append(f"| `{name}` | {action.help or ''} | {default} |")
    lines = [
        f'### {component.base.__name__} `"{component.name}"`',
        "",
        f"Class: `{component.qualified_name}`. A command of the `allennlp` command line, not a configuration key.",
        "",
        parser.description or "",
        "",
        "\n".join(rows),
        "",
        "Usage:",
        "",
        f"```text\n{parser.format_usage().removeprefix('usage: ').strip()}\n```",
        "",
    ]
    return "\n".join(lines)


def component_section(component: Component, heading: str = "###") -> str:
    from allennlp.commands.subcommand import Subcommand

    base = component.base
    if issubclass(base, Subcommand):
        return subcommand_section(component)
    replaced = _replaced().get((base.__name__, component.name))
    built = f", built by `{component.constructor}`" if component.constructor else ""
    lines = [
        f'{heading} {base.__name__} `"{component.name}"`',
        "",
        f"Base class: `{base.__module__}.{base.__qualname__}`. Class: `{component.qualified_name}`{built}.",
    ]
    if replaced is not None:
        lines.append(f"Replaces AllenNLP's `{replaced.replaces}` under this name: {replaced.reason}")
    summary = (inspect.getdoc(component.cls) or "").split("\n\n")[0].replace("\n", " ")
    lines += [
        "",
        summary,
        "",
        parameter_table(component),
        "",
        render_parameters_section(docstring_parameters(component)),
    ]
    lines += ["", "Example:", "", example(component), ""]
    # AllenNLP's docstrings link to pages of AllenNLP's own site by relative paths: their text only here.
    return RELATIVE_LINK.sub(r"\1", "\n".join(lines))


def configuration_reference() -> str:
    """The configuration reference: one section per registered component, grouped by base class."""
    sections = _by_base(registered_components())
    sections += [
        "## AllenNLP's components in multitask configurations\n",
        "AllenNLP's own components that multitask configurations use most, documented from AllenNLP 2.10.1's "
        "code as ours are; every other AllenNLP component is as AllenNLP's documentation describes it.\n",
    ]
    sections += _by_base(stock_components(), level="###")
    return "\n".join(sections)


def _by_base(components: List[Component], level: str = "##") -> List[str]:
    sections: List[str] = []
    for base_name in sorted({component.base.__name__ for component in components}):
        sections.append(f"{level} {base_name}\n")
        sections += [
            component_section(component, level + "#")
            for component in components
            if component.base.__name__ == base_name
        ]
    return sections


def import_changes() -> str:
    """The page on what importing the package changes, from `allennlp_multitask.common.import_changes`."""
    import allennlp_multitask_compat
    from allennlp_multitask.common.import_changes import (
        ADDED_SUBCOMMANDS,
        EXIT_HOOKS,
        PATCHES,
        REPLACED_REGISTRATIONS,
    )

    lines = [
        "## Registrations replaced",
        "",
        "| base class | name | ours | AllenNLP's | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f'| `{_last(entry.base)}` | `"{entry.name}"` | `{entry.ours}` | `{entry.replaces}` | {entry.reason} |'
        for entry in REPLACED_REGISTRATIONS
    ]
    lines += ["", "## Attributes patched", "", "| attribute | replaced by | why |", "| --- | --- | --- |"]
    lines += [f"| `{patch.target}` | `{patch.replacement}` | {patch.reason} |" for patch in PATCHES]
    lines += ["", "## At exit", "", "| function registered with `atexit` | why |", "| --- | --- |"]
    lines += [f"| `{hook.function}` | {hook.reason} |" for hook in EXIT_HOOKS]
    lines += ["", "## Commands added", "", "| `allennlp` command | ours | what it does |", "| --- | --- | --- |"]
    lines += [f"| `{command.name}` | `{command.ours}` | {command.reason} |" for command in ADDED_SUBCOMMANDS]
    lines += [
        "",
        "## Compatibility fixes, applied as AllenNLP's modules load",
        "",
        "These come from `allennlp_multitask_compat.FIXES`, applied by the start-up file "
        "`allennlp_multitask_compat.pth` in every process that imports AllenNLP, whether or not it includes "
        "our package (see [Transformer backbones](guides/transformers.md)).",
        "",
        "| AllenNLP module | fix |",
        "| --- | --- |",
    ]
    lines += [f"| `{module}` | {fix.reason} |" for module, fix in allennlp_multitask_compat.FIXES.items()]
    new = [
        component
        for component in registered_components()
        if (component.base.__name__, component.name) not in _replaced() and component.base.__name__ != "Subcommand"
    ]
    lines += [
        "",
        "## New names",
        "",
        "Registered under names AllenNLP does not use (see the [configuration reference](reference/configuration.md)):",
        "",
    ]
    lines += [f'- {component.base.__name__} `"{component.name}"`: `{component.qualified_name}`' for component in new]
    return "\n".join(lines) + "\n"


GENERATORS: Dict[str, Callable[[], str]] = {
    "configuration-reference": configuration_reference,
    "import-changes": import_changes,
}


def filled(markdown: str) -> str:
    """`markdown` with each generated part made anew by its generator."""
    return GENERATED.sub(
        lambda found: found.group(1) + GENERATORS[found.group(2)]().rstrip("\n") + "\n" + found.group(3), markdown
    )


def pages_with_generated_parts() -> List[str]:
    """The paths of the pages under docs/ that hold a generated part."""
    pages = [os.path.join(root, name) for root, _, names in os.walk(DOCS) for name in names if name.endswith(".md")]
    return sorted(page for page in pages if GENERATED.search(open(page).read()))


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook: each generated part of the page, made anew."""
    return filled(markdown)


if __name__ == "__main__":
    for page in pages_with_generated_parts():
        with open(page) as opened:
            markdown = filled(opened.read())
        with open(page, "w") as opened:
            opened.write(markdown)
