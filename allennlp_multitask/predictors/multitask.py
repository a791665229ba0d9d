import inspect
import json
from typing import Any, Callable, Dict, List, Optional, cast

from allennlp.common.checks import ConfigurationError
from allennlp.common.util import JsonDict, sanitize
from allennlp.data import DatasetReader, Instance
from allennlp.data.dataset_readers import MultiTaskDatasetReader
from allennlp.data.fields import MetadataField
from allennlp.data.tokenizers import Token
from allennlp.models.heads import ClassifierHead, Head
from allennlp.predictors import Predictor

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.data.dataset_readers.labeled_text_json import LabeledTextJsonReader
from allennlp_multitask.data.json_lines import parse_json_object
from allennlp_multitask.models.multitask import MultiTaskModel

TASK = "task"
ID = "id"

JsonToInstance = Callable[[JsonDict], Instance]

# The JSON keys that AllenNLP's predictors which our heads may name take (for `MultiTaskPredictor.input_keys`).
_PREDICTOR_INPUT_KEYS = {"text_classifier": ["sentence"], "sentence_tagger": ["sentence"]}

# What readers and predictors raise for inputs they cannot take (a number where text belongs, tags of
# the wrong length, ...); a JSON input that causes one is named in the error.
INPUT_ERRORS = (AttributeError, ConfigurationError, KeyError, TypeError, ValueError)


def _shown(value: Any) -> str:
    """A JSON value as it was given, cut short."""
    return json.dumps(value)[:200]


def _predictor_of_head(head: Head) -> Optional[str]:
    """The head's default predictor; AllenNLP's `classifier` head, which names none, takes `text_classifier`'s."""
    if head.default_predictor is not None:
        return head.default_predictor
    return "text_classifier" if isinstance(head, ClassifierHead) else None


def _through_predictor(task: str, name: str, predictor: Predictor) -> JsonToInstance:
    """Turns JSON into an instance as the predictor registered as `name` does."""

    def json_to_instance(json_dict: JsonDict) -> Instance:
        try:
            return predictor._json_to_instance(json_dict)
        except KeyError as error:
            raise ValueError(
                f"JSON for task '{task}' lacks the key {error}, which predictor '{name}' (that of the "
                f"task's heads) needs; got keys {sorted(json_dict)}."
            ) from error
        except INPUT_ERRORS as error:
            raise ValueError(
                f"JSON for task '{task}' makes no instance through predictor '{name}' (that of the task's "
                f"heads): {error} (input: {_shown(json_dict)})."
            ) from error

    return json_to_instance


def _through_reader(task: str, reader: DatasetReader) -> JsonToInstance:
    """
    Turns JSON into an instance by calling `reader.text_to_instance` with the JSON's keys as keywords.
    JSON holds no `Token`s: a list of strings given for a `List[Token]` parameter becomes one of tokens
    (anything else there is refused).
    """
    signature = inspect.signature(reader.text_to_instance)
    token_lists = {
        name for name, parameter in signature.parameters.items() if parameter.annotation in (List[Token], list[Token])
    }

    def json_to_instance(json_dict: JsonDict) -> Instance:
        try:
            signature.bind(**json_dict)
        except TypeError as error:
            raise ValueError(
                f"JSON for task '{task}', whose heads name no common predictor, must hold keyword arguments "
                f"of {type(reader).__name__}.text_to_instance{signature}; got keys {sorted(json_dict)} ({error})."
            ) from error
        for name in token_lists & json_dict.keys():
            value = json_dict[name]
            if not isinstance(value, list) or not all(isinstance(text, str) for text in value):
                raise ValueError(
                    f"JSON for task '{task}' needs a list of strings (tokens) under '{name}', got {_shown(value)}."
                )
        keywords = {
            name: [Token(text) for text in value] if name in token_lists else value for name, value in json_dict.items()
        }
        try:
            return reader.text_to_instance(**keywords)
        except INPUT_ERRORS as error:
            raise ValueError(
                f"JSON for task '{task}' makes no instance through {type(reader).__name__}.text_to_instance: "
                f"{error} (input: {_shown(json_dict)})."
            ) from error

    return json_to_instance


def _through_reader_keys(task: str, reader: LabeledTextJsonReader, otherwise: JsonToInstance) -> JsonToInstance:
    """
    Turns JSON holding the reader's `text_key` into an instance as the reader reads a line of its data, less
    the label (a line copied from the training data predicts); other JSON goes to `otherwise`.
    """

    def json_to_instance(json_dict: JsonDict) -> Instance:
        if reader.text_key not in json_dict:
            try:
                return otherwise(json_dict)
            except ValueError as error:
                raise ValueError(
                    f"{error} Lines like the task's training data work too: its reader's text_key is "
                    f"'{reader.text_key}'."
                ) from error
        try:
            return reader.text_to_instance(json_dict[reader.text_key])
        except INPUT_ERRORS as error:
            raise ValueError(
                f"JSON for task '{task}' makes no instance through its reader ({type(reader).__name__}, "
                f"text_key '{reader.text_key}'): {error} (input: {_shown(json_dict)})."
            ) from error

    return json_to_instance


@replace_registration(Predictor, "multitask")
class MultiTaskPredictor(Predictor):
    """
    Predicts with a `MultiTaskModel` from JSON or instances of any mix of tasks, and returns one output
    per input, in input order: the `{head}_` outputs (human-readable ones included, e.g. `sentiment_label`)
    of the active heads that serve the input's task, and the backbone's outputs. A batch runs as one
    forward pass, or one per group of instances with the same fields where tasks' fields differ.

    JSON inputs name their task under `"task"`, and may carry an `"id"` (any JSON value); each output
    names its input's task under `"task"` and echoes its `"id"`. The rest becomes an instance the way
    the task's training data does when it holds the text key of the task's `labeled_text_json` reader
    (`{"task": "intent", "utterance": ...}` for `text_key` "utterance"; a label there is left out), else
    the way the task's heads expect (the heads that serve it, by the model's `task_heads`): through their
    default predictor when they agree on one (AllenNLP's `classifier` head takes `text_classifier`'s
    `{"sentence": ...}`), else through the task's dataset reader, whose `text_to_instance` gets the
    remaining keys as keywords.
    An input line that is not a JSON object, or JSON that makes no instance (a missing key, a number
    where text belongs), raises `ValueError` showing the input and naming its task.
    Instances (e.g. from `allennlp predict --use-dataset-reader --multitask-head TASK`) need the `task`
    `MetadataField` that `MultiTaskDatasetReader` adds.

    Registered as a `Predictor` with name "multitask", replacing AllenNLP's registration.

    # Parameters

    model : `MultiTaskModel`
        The model; heads it leaves inactive (`active_heads`) give no outputs.
    dataset_reader : `MultiTaskDatasetReader`
        Its readers, by task, make the instances of each task and index their tokens.
    """

    def __init__(self, model: MultiTaskModel, dataset_reader: MultiTaskDatasetReader) -> None:
        if not isinstance(model, MultiTaskModel):
            raise ConfigurationError(
                f"The multitask predictor needs allennlp_multitask's MultiTaskModel, got {type(model).__name__}."
            )
        if not isinstance(dataset_reader, MultiTaskDatasetReader):
            raise ConfigurationError(
                "The multitask predictor needs a MultiTaskDatasetReader (dataset reader type "
                f'"multitask"), got {type(dataset_reader).__name__}.'
            )
        super().__init__(model, dataset_reader)
        self._readers = dataset_reader.readers
        task_heads = model.task_heads
        self._json_to_instance_of_task: Dict[str, JsonToInstance] = {
            task: self._json_to_instance_for(task) for task in self._readers if task in task_heads
        }

    @property
    def tasks(self) -> List[str]:
        """The tasks this predictor takes: those with a dataset reader and a head to serve them."""
        return list(self._json_to_instance_of_task)

    def input_keys(self, task: str) -> List[str]:
        """
        The JSON keys (besides `"task"` and `"id"`) an input of `task` holds: its reader's `text_key`, the keys of
        its heads' predictor, or the parameters of its reader's `text_to_instance` that have no default.
        """
        reader = self._readers[self._task_of(task, "input_keys")].inner
        if isinstance(reader, LabeledTextJsonReader):
            return [reader.text_key]
        name = self._common_predictor(task)
        if name is not None:
            return _PREDICTOR_INPUT_KEYS.get(name, [])
        parameters = inspect.signature(reader.text_to_instance).parameters.values()
        return [
            parameter.name
            for parameter in parameters
            if parameter.default is inspect.Parameter.empty
            and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]

    def _common_predictor(self, task: str) -> Optional[str]:
        """The default predictor that all the heads serving `task` name, if they agree on one."""
        model = cast(MultiTaskModel, self._model)
        predictor_names = {_predictor_of_head(model._heads[head]) for head in model.task_heads[task]}
        return predictor_names.pop() if len(predictor_names) == 1 else None

    def _json_to_instance_for(self, task: str) -> JsonToInstance:
        reader = self._readers[task].inner
        name = self._common_predictor(task)
        if name is not None:
            predictor = Predictor.by_name(name)(self._model, reader)  # type: ignore[call-arg]
            through_heads = _through_predictor(task, name, predictor)
        else:
            through_heads = _through_reader(task, reader)
        if isinstance(reader, LabeledTextJsonReader):
            return _through_reader_keys(task, reader, through_heads)
        return through_heads

    def _task_of(self, task: Optional[str], source: str) -> str:
        if task not in self._json_to_instance_of_task:
            problem = f"names the unknown task '{task}'" if task is not None else "names no task"
            raise ValueError(f"{source} {problem}; known tasks: {self.tasks}.")
        return task

    def load_line(self, line: str) -> JsonDict:
        return parse_json_object(line, "Input line")

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        if not isinstance(json_dict, dict):
            raise ValueError(f"JSON input must be an object, got {type(json_dict).__name__}: {_shown(json_dict)}.")
        task = self._task_of(json_dict.get(TASK), f'JSON input (key "{TASK}")')
        task_json = {key: value for key, value in json_dict.items() if key not in (TASK, ID)}
        instance = self._json_to_instance_of_task[task](task_json)
        instance.add_field(TASK, MetadataField(task))
        return instance

    def _index(self, instance: Instance) -> str:
        """Indexes the instance's tokens with its task's reader; returns the task."""
        task_field = instance.fields.get(TASK)
        named = task_field.metadata if isinstance(task_field, MetadataField) else None
        task = self._task_of(named, f'Instance (MetadataField "{TASK}")')
        self._readers[task].apply_token_indexers(instance)
        return task

    def predict_instance(self, instance: Instance) -> JsonDict:
        return self.predict_batch_instance([instance])[0]

    def predict_batch_instance(self, instances: List[Instance]) -> List[JsonDict]:
        tasks = [self._index(instance) for instance in instances]
        outputs = sanitize(self._model.forward_on_instances(instances))
        return [{TASK: task, **output} for task, output in zip(tasks, outputs)]

    def predict_json(self, inputs: JsonDict) -> JsonDict:
        return self.predict_batch_json([inputs])[0]

    def predict_batch_json(self, inputs: List[JsonDict]) -> List[JsonDict]:
        outputs = super().predict_batch_json(inputs)
        return [with_id(json_dict, output) for json_dict, output in zip(inputs, outputs)]


def with_id(json_dict: JsonDict, output: JsonDict) -> JsonDict:
    """`output`, the prediction for the JSON input `json_dict`, led by the input's `"id"` where it has one."""
    return {ID: json_dict[ID], **output} if isinstance(json_dict, dict) and ID in json_dict else output
