"""
Run as a script: prints, as JSON, what `import allennlp_multitask` changes in a process that has already
imported AllenNLP's commands, models, data and training (so their own registrations are in place before).
Used by test_import_changes.py, which needs a process that has not imported our package yet (so the
patches to look at come as JSON on standard input: `[{"target": ..., "used_by": [...]}, ...]`).
"""

import atexit
import importlib
import inspect
import json
import sys
from typing import Any, Callable, Dict, List


def resolve(path: str) -> Any:
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(path)


def qualified(value: Any) -> str:
    return value.__name__ if inspect.ismodule(value) else f"{value.__module__}.{value.__qualname__}"


def registry() -> Dict[str, List[Any]]:
    from allennlp.common import Registrable

    return {
        f"{qualified(base)} {name}": [qualified(cls), constructor, cls]
        for base, names in Registrable._registry.items()
        for name, (cls, constructor) in names.items()
    }


def patch_targets(patches: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    shapes = {}
    for patch in patches:
        value = resolve(patch["target"])
        attribute = patch["target"].rsplit(".", 1)[1]
        shapes[patch["target"]] = {
            "value": qualified(value),
            "parameters": list(inspect.signature(value).parameters) if callable(value) else [],
            "looked_up_by": [user for user in patch["used_by"] if attribute in resolve(user).__code__.co_names],
        }
    return shapes


def main() -> None:
    patches = json.load(sys.stdin)
    registered: List[Callable[..., Any]] = []
    register = atexit.register

    def recording_register(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        registered.append(function)
        return register(function, *args, **kwargs)

    atexit.register = recording_register  # type: ignore[assignment]
    import allennlp.commands
    import allennlp.data
    import allennlp.models.archival
    import allennlp.predictors
    import allennlp.training  # noqa: F401

    assert "allennlp_multitask" not in sys.modules
    registry_before, patches_before, exit_hooks_before = registry(), patch_targets(patches), len(registered)

    import allennlp_multitask  # noqa: F401
    import allennlp_multitask_compat

    registry_after = registry()
    changed = {
        key: {
            "before": registry_before[key][:2],
            "after": value[:2],
        }
        for key, value in registry_after.items()
        if key in registry_before and value[:2] != registry_before[key][:2]
    }
    added = {key: value[:2] for key, value in registry_after.items() if key not in registry_before}
    finders = [finder for finder in sys.meta_path if isinstance(finder, allennlp_multitask_compat.CompatFinder)]
    print(
        json.dumps(
            {
                "changed_registrations": changed,
                "added_registrations": added,
                "patches_before": patches_before,
                "patches_after": {target: shape["value"] for target, shape in patch_targets(patches).items()},
                "exit_hooks": [qualified(function) for function in registered[exit_hooks_before:]],
                "compat_finders": len(finders),
                # Fixes not yet applied, though their module was imported (each should apply as it loads).
                "compat_fixes_missed": sorted(set(finders[0].pending) & set(sys.modules)) if finders else None,
            }
        )
    )


if __name__ == "__main__":
    main()
