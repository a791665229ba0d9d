"""
The plumbing of a multitask model, kept pure: which arguments reach which component, which rows of a
batch belong to which head, and how a batch is sliced for one head.

Nothing here knows about trainers, vocabularies or metrics; `MultiTaskModel` composes these pieces.
"""

import array
import inspect
import itertools
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

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
                # "duplicate argument {name}" is AllenNLP's wording, which code may match.
                raise ValueError(
                    f"Component '{self.component}' got duplicate argument {name}: two inputs, "
                    f"'{sources[name]}' and '{key}', map onto it (after arg_name_mapping). Each batch may "
                    "carry only one input that maps onto a name."
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


class HeadRows:
    """
    The rows of a batch that each head receives, and the cutting of batch-shaped values into each head's
    part, without touching the original.

    # Parameters

    rows_of_heads : `Mapping[str, List[int]]`
        Each head's rows, ascending, by head.
    batch_size : `int`
        The number of rows in the whole batch.

    Cutting rules (`split`), applied at any depth:

    - a tensor whose first dimension is `batch_size`: a head with every row gets the tensor itself, a
      head with contiguous rows a view; the other heads share one `index_select` of all their rows,
      split into one view per head (one gather, and one gradient op in the backward pass, however many
      heads gather);
    - a dict is rebuilt with each value cut;
    - a list or tuple made only of tensors (or of containers of tensors) is rebuilt with each item cut;
      any other list or tuple of length `batch_size` holds one item per instance, and each head gets
      its rows' items;
    - anything else (scalars, strings, tensors of other shapes) is not per-instance and passes unchanged.
    """

    def __init__(self, rows_of_heads: Mapping[str, List[int]], batch_size: int) -> None:
        self.batch_size = batch_size
        self._rows = dict(rows_of_heads)
        # Whether some head receives only some of the rows.
        self.cuts_rows = any(len(rows) != batch_size for rows in self._rows.values())
        # How to cut values for each set of heads asked for, with its index tensor: made once per set.
        self._cuts: Dict[Tuple[str, ...], _Cut] = {}

    @property
    def heads(self) -> List[str]:
        """The heads that receive rows, in order."""
        return list(self._rows)

    def rows_of(self, head: str) -> Optional[List[int]]:
        """The rows `head` receives, ascending; `None` if it receives the whole batch."""
        rows = self._rows[head]
        return None if len(rows) == self.batch_size else rows

    def split(self, value: Any, heads: Sequence[str]) -> Dict[str, Any]:
        """
        `value` cut down to each of `heads`' rows (heads of this batch), by head. `value` itself is never
        modified; heads that receive every row get it as it is.
        """
        key = tuple(heads)
        cut = self._cuts.get(key)
        if cut is None:
            cut = self._cuts[key] = _Cut([(head, self._rows[head]) for head in key], self.batch_size)
        parts = iter(cut.parts_of(value)) if cut.heads else iter(())
        return {head: next(parts) if is_cut else value for head, is_cut in cut.is_cut}


class _Cut:
    """
    Cuts batch-shaped values into the parts of those of some heads that do not receive the whole batch
    (see `HeadRows`); `is_cut` tells, for each of the heads in order, whether it is one of them.
    """

    def __init__(self, rows_of_heads: List[Tuple[str, List[int]]], batch_size: int) -> None:
        self.batch_size = batch_size
        self.is_cut = [(head, len(rows) != batch_size) for head, rows in rows_of_heads]
        cut = [(head, rows) for head, rows in rows_of_heads if len(rows) != batch_size]
        self.heads = [head for head, _ in cut]
        self._rows = [rows for _, rows in cut]
        # Per head, the start of its contiguous rows, or None if it gathers.
        self._starts = [_start_if_contiguous(rows) for rows in self._rows]
        self._gathered_rows = [rows for rows, start in zip(self._rows, self._starts) if start is None]
        self._gathered_lengths = [len(rows) for rows in self._gathered_rows]
        self._indices: Dict[torch.device, torch.Tensor] = {}

    def parts_of(self, value: Any) -> List[Any]:
        """`value` cut down to each head's rows, in the order of `heads`."""
        count = len(self.heads)
        if isinstance(value, torch.Tensor):
            if value.dim() == 0 or value.size(0) != self.batch_size:
                return [value] * count
            return self._tensor_parts(value)
        if isinstance(value, dict):
            cut_items = [self.parts_of(item) for item in value.values()]
            if not cut_items:
                return [{} for _ in range(count)]
            return [dict(zip(value.keys(), parts)) for parts in zip(*cut_items)]
        if isinstance(value, (list, tuple)):
            if _holds_only_tensors(value):
                return [type(value)(parts) for parts in zip(*(self.parts_of(item) for item in value))]
            if len(value) == self.batch_size:
                return [type(value)(value[row] for row in rows) for rows in self._rows]
        return [value] * count

    def _tensor_parts(self, tensor: torch.Tensor) -> List[torch.Tensor]:
        gathered: Iterator[torch.Tensor] = iter(())
        if self._gathered_rows:
            indices = self._indices.get(tensor.device)
            if indices is None:
                indices = self._indices[tensor.device] = _index_tensor(self._gathered_rows, tensor.device)
            gathered = iter(tensor.index_select(0, indices).split(self._gathered_lengths))
        return [
            next(gathered) if start is None else tensor.narrow(0, start, len(rows))
            for start, rows in zip(self._starts, self._rows)
        ]


def _start_if_contiguous(rows: List[int]) -> Optional[int]:
    """The first of `rows` if they are consecutive numbers (0 if there are none), else `None`."""
    if not rows:
        return 0
    # The first test settles most scattered rows without building a list.
    consecutive = rows[-1] - rows[0] == len(rows) - 1 and rows == list(range(rows[0], rows[-1] + 1))
    return rows[0] if consecutive else None


def _index_tensor(rows_lists: List[List[int]], device: torch.device) -> torch.Tensor:
    """The rows of all lists, one after another, as a tensor on `device`."""
    # From machine integers: several times faster than `torch.tensor` of a list of Python ints.
    indices = torch.frombuffer(array.array("q", itertools.chain(*rows_lists)), dtype=torch.long)
    if device.type != "cpu":
        # A pinned, non-blocking copy keeps routing free of host-device synchronisation.
        indices = indices.pin_memory().to(device, non_blocking=True)
    return indices


def head_arguments(
    head_rows: HeadRows, head_plans: Mapping[str, List[Tuple[str, str]]], available: Mapping[str, Any]
) -> Dict[str, Dict[str, Any]]:
    """
    Each head's arguments, by head: for each `(key, name)` pair of its plan (see `ArgumentRouter.plan`),
    `available[key]` cut to the head's rows, under `name`. Each input is cut once for all the heads
    that take it, so a mixed batch costs one gather per input, however many heads gather.
    """
    if not head_rows.cuts_rows:
        return {head: {name: available[key] for key, name in plan} for head, plan in head_plans.items()}
    takers: Dict[str, List[str]] = {}
    for head, plan in head_plans.items():
        for key, _ in plan:
            takers.setdefault(key, []).append(head)
    parts = {key: head_rows.split(available[key], heads) for key, heads in takers.items()}
    return {head: {name: parts[key][head] for key, name in plan} for head, plan in head_plans.items()}
