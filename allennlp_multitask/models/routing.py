"""
The plumbing of a multitask model, kept pure: which arguments reach which component, which rows of a
batch belong to which head, and how a batch is sliced for one head.

Nothing here knows about trainers, vocabularies or metrics; `MultiTaskModel` composes these pieces.
"""

import array
import inspect
import itertools
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import torch


def get_forward_arguments(module: torch.nn.Module) -> Set[str]:
    """
    The names of the parameters of `module.forward`, as AllenNLP's function of the same name returns
    them (a `**kwargs` parameter appears under its own name).
    """
    signature = inspect.signature(module.forward)
    return {name for name in signature.parameters if name != "self"}


def accepts_any_argument(module: torch.nn.Module) -> bool:
    """Whether `module.forward` takes `**kwargs`, and so can be given every available argument."""
    return any(
        parameter.kind is inspect.Parameter.VAR_KEYWORD
        for parameter in inspect.signature(module.forward).parameters.values()
    )


def get_required_arguments(module: torch.nn.Module) -> Set[str]:
    """The parameters of `module.forward` that have no default value."""
    named_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        name
        for name, parameter in inspect.signature(module.forward).parameters.items()
        if name != "self" and parameter.kind in named_kinds and parameter.default is inspect.Parameter.empty
    }


class ArgumentRouter:
    """
    Picks, renames and checks the arguments one component (the backbone or a head) receives.

    # Parameters

    component : `str`
        The component's name, used in error messages ("backbone" or a head's name).
    allowed : `Optional[Set[str]]`
        The argument names the component accepts after renaming; `None` accepts every argument.
    required : `Set[str]`
        The argument names the component cannot do without.
    name_mapping : `Mapping[str, str]`
        Renames available arguments (`{"question": "text"}`) before they are matched against `allowed`.
    """

    def __init__(
        self,
        component: str,
        allowed: Optional[Set[str]],
        required: Set[str],
        name_mapping: Mapping[str, str],
    ) -> None:
        self.component = component
        self.allowed = allowed
        self.required = required
        self.name_mapping = dict(name_mapping)
        # For each sequence of available keys seen, which keys the component takes, under which names:
        # a model sees few such sequences, so `select` checks and renames each sequence once.
        self._plans: Dict[Tuple[str, ...], List[Tuple[str, str]]] = {}

    def select(self, available: Mapping[str, Any]) -> Dict[str, Any]:
        """
        Returns the arguments for the component, renamed, from `available` (which is never changed).
        Raises `ValueError` if two inputs land on one name, or a required argument is missing.
        """
        return {name: available[key] for key, name in self.plan(tuple(available))}

    def plan(self, keys: Tuple[str, ...]) -> List[Tuple[str, str]]:
        """
        The `(key, argument name)` pairs that `select` takes from inputs with these `keys`, in order;
        raises as `select` does. Checked once per sequence of keys, then looked up.
        """
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = self._plan(keys)
        return plan

    def _plan(self, keys: Sequence[str]) -> List[Tuple[str, str]]:
        sources: Dict[str, str] = {}
        for key in keys:
            name = self.name_mapping.get(key, key)
            if self.allowed is not None and name not in self.allowed:
                continue
            if name in sources:
                raise ValueError(
                    f"Component '{self.component}' got two inputs for its argument '{name}': "
                    f"'{sources[name]}' and '{key}' (after arg_name_mapping). Each batch may carry "
                    "only one input that maps onto a name."
                )
            sources[name] = key
        missing = self.required - sources.keys()
        if missing:
            renamed = sorted(self.name_mapping.get(key, key) for key in keys)
            raise ValueError(
                f"Component '{self.component}' needs argument(s) {sorted(missing)}, but the batch "
                f"offers only {renamed} after arg_name_mapping."
            )
        return [(key, name) for name, key in sources.items()]


def route_tasks(
    tasks: Sequence[str], task_heads: Mapping[str, Sequence[str]], active_heads: Iterable[str]
) -> Dict[str, List[int]]:
    """
    Maps each active head to the batch rows it serves, in batch order, given each row's task.

    Heads come out in the order of `active_heads`; heads with no rows are left out. A task that no
    head serves raises `ValueError` naming the task and the known tasks.
    """
    task_rows: Dict[str, List[int]] = {}
    if tasks and tasks.count(tasks[0]) == len(tasks):  # One task, as most batches have: no Python loop.
        task_rows[tasks[0]] = list(range(len(tasks)))
    else:
        for row, task in enumerate(tasks):
            rows = task_rows.get(task)
            if rows is None:
                task_rows[task] = [row]
            else:
                rows.append(row)
    unknown = [task for task in task_rows if task not in task_heads]
    if unknown:
        raise ValueError(
            f"Batch has instances of task(s) {unknown} that no head serves; known tasks: {sorted(task_heads)}."
        )
    # Each head's rows: those of its first task, merged below with those of its other tasks, if any.
    first_rows: Dict[str, List[int]] = {}
    rows_of_tasks: Dict[str, List[List[int]]] = {}
    for task, rows in task_rows.items():
        for head in task_heads[task]:
            held = first_rows.setdefault(head, rows)
            if held is not rows:
                rows_lists = rows_of_tasks.setdefault(head, [held])
                if rows_lists[-1] is not rows:  # A head listed twice for a task serves it once.
                    rows_lists.append(rows)
    for head, rows_lists in rows_of_tasks.items():
        first_rows[head] = sorted(itertools.chain(*rows_lists))
    return {head: first_rows[head] for head in active_heads if head in first_rows}


def _holds_only_tensors(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return bool(value) and all(_holds_only_tensors(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_holds_only_tensors(item) for item in value)
    return False


class RowSelection:
    """
    Some rows of a batch, and the means to cut any batch-shaped value down to them without touching
    the original.

    # Parameters

    rows : `List[int]`
        The rows to keep, ascending.
    batch_size : `int`
        The number of rows in the whole batch.

    Slicing rules, applied at any depth:

    - a tensor whose first dimension is `batch_size` keeps the selected rows: the same tensor when
      every row is selected, a view when the rows are contiguous, else one `index_select`;
    - a dict is rebuilt with each value sliced;
    - a list or tuple made only of tensors (or of containers of tensors) is rebuilt with each item
      sliced; any other list or tuple of length `batch_size` holds one item per instance, and keeps the
      selected items;
    - anything else (scalars, strings, tensors of other shapes) is not per-instance and passes unchanged.
    """

    __slots__ = ("_indices", "_is_contiguous", "_position", "_shared_indices", "batch_size", "is_whole_batch", "rows")

    def __init__(self, rows: List[int], batch_size: int) -> None:
        self.rows = rows
        self.batch_size = batch_size
        self.is_whole_batch = len(rows) == batch_size
        # The last test is what counts; the ones before settle most batches without building a list.
        self._is_contiguous = (
            self.is_whole_batch
            or not rows
            or (rows[-1] - rows[0] == len(rows) - 1 and rows == list(range(rows[0], rows[-1] + 1)))
        )
        # This selection's rows are part `_position` of `_shared_indices`; `_indices`, that part on the
        # device last asked for.
        self._shared_indices: Optional[_RowIndices] = None
        self._position = 0
        self._indices: Optional[torch.Tensor] = None

    @classmethod
    def for_heads(cls, head_rows: Mapping[str, List[int]], batch_size: int) -> Dict[str, "RowSelection"]:
        """
        A selection for each head's rows. The heads that gather rows share one index tensor, so that a
        batch costs one index tensor and one host-to-device copy however many heads gather.
        """
        selections = {head: cls(rows, batch_size) for head, rows in head_rows.items()}
        gathering = [selection for selection in selections.values() if not selection._is_contiguous]
        if gathering:
            shared = _RowIndices([selection.rows for selection in gathering])
            for position, selection in enumerate(gathering):
                selection._shared_indices, selection._position = shared, position
        return selections

    def take(self, value: Any) -> Any:
        """Returns `value` restricted to the selected rows; `value` itself is never modified."""
        if self.is_whole_batch:
            return value
        if isinstance(value, torch.Tensor):
            if value.dim() == 0 or value.size(0) != self.batch_size:
                return value
            if self._is_contiguous:
                return value.narrow(0, self.rows[0], len(self.rows))
            indices = self._indices
            if indices is None or indices.device != value.device:
                indices = self._indices = self._indices_on(value.device)
            return value.index_select(0, indices)
        if isinstance(value, dict):
            return {key: self.take(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            if _holds_only_tensors(value):
                return type(value)(self.take(item) for item in value)
            if len(value) == self.batch_size:
                return type(value)(value[row] for row in self.rows)
        return value

    def _indices_on(self, device: torch.device) -> torch.Tensor:
        """The row indices on `device`, from the index tensor shared with other heads if there is one."""
        if self._shared_indices is None:
            self._shared_indices = _RowIndices([self.rows])
        return self._shared_indices.on(device)[self._position]


class _RowIndices:
    """
    The row indices of several selections in one tensor, built and moved to each device once, and
    handed out as one view per selection.
    """

    def __init__(self, rows_lists: List[List[int]]) -> None:
        self._rows = list(itertools.chain(*rows_lists))
        self._lengths = [len(rows) for rows in rows_lists]
        self._parts: Dict[torch.device, Tuple[torch.Tensor, ...]] = {}

    def on(self, device: torch.device) -> Tuple[torch.Tensor, ...]:
        parts = self._parts.get(device)
        if parts is None:
            # From machine integers: several times faster than `torch.tensor` of a list of Python ints.
            indices = torch.frombuffer(array.array("q", self._rows), dtype=torch.long)
            if device.type != "cpu":
                # A pinned, non-blocking copy keeps routing free of host-device synchronisation.
                indices = indices.pin_memory().to(device, non_blocking=True)
            parts = self._parts[device] = indices.split(self._lengths)
        return parts
