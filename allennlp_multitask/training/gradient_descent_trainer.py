from typing import Dict

import torch
from allennlp.data import TensorDict
from allennlp.training import Trainer
from allennlp.training.gradient_descent_trainer import GradientDescentTrainer as AllenNlpGradientDescentTrainer

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.models.multitask import MultiTaskModel


@replace_registration(Trainer, "gradient_descent", constructor="from_partial_objects")
class GradientDescentTrainer(AllenNlpGradientDescentTrainer):
    """
    AllenNLP's `GradientDescentTrainer`, built from the same configuration, with this change:

    - A training batch whose outputs have no `"loss"` fails with the model's account of why, for our
      `MultiTaskModel`: the batch's tasks and what each head got (labels missing, e.g. under a
      `label_key` that matches nothing). AllenNLP's trainer said only that the outputs have no `"loss"`
      key. The model's `forward` itself returns its outputs without a loss, as AllenNLP's does.

    Registered as a `Trainer` with name "gradient_descent" (AllenNLP's default `Trainer`), replacing
    AllenNLP's registration; built, like AllenNLP's, by `from_partial_objects`.
    """

    def batch_outputs(self, batch: TensorDict, for_training: bool) -> Dict[str, torch.Tensor]:
        """
        The model's outputs on `batch`; for training, with the model's regularization penalty added to
        the loss (as `"reg_loss"` too). A training batch without a loss raises `ValueError` (for a
        `MultiTaskModel`, naming the tasks and the heads' arguments) or `RuntimeError`.
        """
        outputs = self._pytorch_model(**batch)
        if not for_training:
            return outputs
        if "loss" not in outputs:
            raise self._no_loss_error(batch)
        penalty = self.model.get_regularization_penalty()
        if penalty is not None:
            outputs["reg_loss"] = penalty
            outputs["loss"] += penalty
        return outputs

    def _no_loss_error(self, batch: TensorDict) -> Exception:
        if isinstance(self.model, MultiTaskModel):
            return self.model.no_loss_error(batch)
        # AllenNLP's words, for other models.
        return RuntimeError(
            "The model you are trying to optimize does not contain a 'loss' key in the output of "
            "model.forward(inputs)."
        )
