"""
Hatchling build hook: editable installs get `allennlp_multitask_compat.pth` too.

A wheel ships the file at its top (see `only-include` in pyproject.toml), so that Python runs it at start-up
(see allennlp_multitask_compat.py). An editable wheel holds only hatchling's own `.pth` that puts the
checkout on `sys.path`, unless a hook adds a file to it, as this one does.
"""

from typing import Any, Dict

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STARTUP_FILE = "allennlp_multitask_compat.pth"


class CompatStartupFileHook(BuildHookInterface):
    def initialize(self, version: str, build_data: Dict[str, Any]) -> None:
        if version == "editable":
            build_data.setdefault("force_include_editable", {})[STARTUP_FILE] = STARTUP_FILE
