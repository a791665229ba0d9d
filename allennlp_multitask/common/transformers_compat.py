"""
Keeps AllenNLP 2.10's transformer tokenizers working on the `transformers` releases that run on today's
PyTorch.

AllenNLP's `PretrainedTransformerTokenizer` loads its tokenizers with
`cached_transformers.get_tokenizer(name, add_special_tokens=...)`, which passes `add_special_tokens` on
to `AutoTokenizer.from_pretrained` as a constructor argument. Releases of `transformers` before 4.34
stored and ignored it; later ones refuse it ("add_special_tokens conflicts with the method
add_special_tokens"). AllenNLP adds special tokens explicitly when it encodes, so dropping the argument
changes nothing but the crash.
"""
from typing import Any

import transformers
from allennlp.common import cached_transformers

_load_tokenizer = cached_transformers.get_tokenizer


def get_tokenizer(model_name: str, **kwargs: Any) -> transformers.PreTrainedTokenizer:
    """AllenNLP's `cached_transformers.get_tokenizer`, without the constructor `add_special_tokens`."""
    kwargs.pop("add_special_tokens", None)
    return _load_tokenizer(model_name, **kwargs)


cached_transformers.get_tokenizer = get_tokenizer
