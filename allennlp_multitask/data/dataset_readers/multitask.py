from os import PathLike
from typing import Dict, Iterator, Optional, Union

from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Instance
from allennlp.data.dataset_readers import MultiTaskDatasetReader as AllenNlpMultiTaskDatasetReader

from allennlp_multitask.common.registration import replace_registration


@replace_registration(DatasetReader, "multitask")
class MultiTaskDatasetReader(AllenNlpMultiTaskDatasetReader):
    """
    AllenNLP's multitask dataset reader, a dictionary of the tasks' readers (each instance gets a `task`
    `MetadataField`), that names the known tasks when asked to read for an unknown one (`allennlp predict
    --use-dataset-reader --multitask-head TASK`), where AllenNLP's raised a bare `KeyError`.

    Registered as a `DatasetReader` with name "multitask", replacing AllenNLP's.

    # Parameters

    readers : `Dict[str, DatasetReader]`
        The reader of each task, by task name.
    """

    def read(  # type: ignore[override]
        self,
        file_paths: Union[PathLike, str, Dict[str, Union[PathLike, str]]],
        *,
        force_task: Optional[str] = None,
    ) -> Union[Iterator[Instance], Dict[str, Iterator[Instance]]]:
        if force_task is not None and force_task not in self.readers:
            raise ConfigurationError(
                f"The multitask dataset reader has no task '{force_task}' (--multitask-head); "
                f"known tasks: {sorted(self.readers)}."
            )
        return super().read(file_paths, force_task=force_task)
