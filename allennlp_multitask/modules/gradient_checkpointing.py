"""
Gradient (activation) checkpointing of a Hugging Face transformer, for the `gradient_checkpointing` option of
the `pretrained_transformer` backbone and embedders.

AllenNLP's embedders set `gradient_checkpointing` in the transformer's configuration, which transformers 4.35
stopped reading: the option did nothing. This turns it on through `gradient_checkpointing_enable`.
"""

from transformers import PreTrainedModel


def enable_gradient_checkpointing(transformer: PreTrainedModel) -> None:
    """
    Makes `transformer`'s layers keep no activations in training and recompute them in the backward pass.
    Non-reentrant (`use_reentrant=False`), which works with frozen weights (PEFT adapters) and needs no
    input that requires a gradient.
    """
    options = {"use_reentrant": False}
    if hasattr(transformer, "activation_checkpointing_enable"):  # Its name from transformers 5.x on.
        transformer.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        transformer.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
