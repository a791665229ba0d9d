from typing import Any, Dict, Optional

from allennlp.commands.train import TrainModel as AllenNlpTrainModel
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import is_distributed
from allennlp.data import DataLoader
from allennlp.models import Model
from allennlp.training import Trainer

from allennlp_multitask.commands.label_namespaces import (
    check_heads_read_their_tasks_labels,
    check_separate_label_namespaces,
)
from allennlp_multitask.common.registration import replace_registration


@replace_registration(AllenNlpTrainModel, "default", constructor="from_partial_objects")
class TrainModel(AllenNlpTrainModel):
    """
    AllenNLP's `TrainModel`, what `allennlp train` builds from a whole configuration, with three changes:

    - It refuses, when it is built, tasks whose labels would silently merge: two tasks whose
      `labeled_text_json` readers share a label namespace that one of them leaves at its default
      (`"labels"`), and a `classifier` head whose `label_namespace` is not its task's reader's. Archives
      load, and `evaluate` and `predict` run, unchanged: only training checks.

    - It refuses `evaluate_on_test` under distributed training when it is built, before training starts.
      AllenNLP evaluates the test data after distributed training on the primary worker alone: its data
      loader reads only that worker's share of the test data, and metrics that sum their counts across
      workers (accuracy, F1) wait for workers that have finished, so the run fails (gloo) or hangs (NCCL)
      once training is over, and a model whose metrics do not communicate gets a wrong result. Under
      distributed training, evaluate the archive with `allennlp evaluate` instead.
    - Once training ends, the trainer's callbacks let go of the trainer. AllenNLP's callbacks keep the
      trainer that started them, and the trainer keeps its callbacks and data loaders: a reference cycle,
      which held every training and validation instance in memory after `train_model` had returned, until
      the garbage collector's next full pass (for `allennlp train`, at the interpreter's exit, where that
      pass took 0.9 s of CPU for 66,000 sentences).

    Registered as the default `TrainModel`, replacing AllenNLP's registration; built, like AllenNLP's,
    by `from_partial_objects`, whose parameters are the configuration's top-level keys.

    # Parameters

    serialization_dir : `str`
    model : `Model`
    trainer : `Trainer`
    evaluation_data_loader : `DataLoader`, optional (default = `None`)
        The loader of `test_data_path`.
    evaluate_on_test : `bool`, optional (default = `False`)
        Evaluates the best model on the test data after training; not under distributed training.
    batch_weight_key : `str`, optional (default = `""`)
    """

    def __init__(
        self,
        serialization_dir: str,
        model: Model,
        trainer: Trainer,
        evaluation_data_loader: Optional[DataLoader] = None,
        evaluate_on_test: bool = False,
        batch_weight_key: str = "",
    ) -> None:
        if evaluate_on_test and evaluation_data_loader is not None and is_distributed():
            raise ConfigurationError(
                "'evaluate_on_test' does not work under distributed training: AllenNLP would evaluate the test "
                "data on the primary worker alone, which reads only its share of the data while the metrics "
                "wait for the other workers. Remove 'evaluate_on_test' and, once training is done, run "
                f"`allennlp evaluate {serialization_dir}/model.tar.gz TEST_DATA --include-package "
                "allennlp_multitask`, with your test_data_path as TEST_DATA (for a multitask reader, a JSON "
                "object of task names to files)."
            )
        readers = getattr(getattr(trainer, "data_loader", None), "readers", None)
        if isinstance(readers, dict):
            task_readers = {task: getattr(reader, "inner", reader) for task, reader in readers.items()}
            check_separate_label_namespaces(task_readers)
            check_heads_read_their_tasks_labels(task_readers, model)
        super().__init__(
            serialization_dir=serialization_dir,
            model=model,
            trainer=trainer,
            evaluation_data_loader=evaluation_data_loader,
            evaluate_on_test=evaluate_on_test,
            batch_weight_key=batch_weight_key,
        )

    def run(self) -> Dict[str, Any]:
        """Trains, as AllenNLP's `TrainModel.run`; then the callbacks let go of the trainer."""
        try:
            return super().run()
        finally:
            for callback in getattr(self.trainer, "_callbacks", []):
                if getattr(callback, "trainer", None) is self.trainer:
                    callback.trainer = None
