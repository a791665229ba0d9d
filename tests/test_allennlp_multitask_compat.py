import json

from allennlp.data.tokenizers import PretrainedTransformerTokenizer

from tests.huggingface_goldens import TEXTS, WRITTEN_BY_TRANSFORMERS_5, load_goldens, token_data


def test_allennlps_transformer_tokenizer_loads_and_adds_special_tokens(tiny_bert_dir):
    tokenizer = PretrainedTransformerTokenizer(str(tiny_bert_dir))
    assert [token.text for token in tokenizer.tokenize("the film was great")] == [
        "[CLS]", "the", "film", "was", "great", "[SEP]"
    ]


def test_tokenizer_saved_by_transformers_5_loads_and_tokenizes_as_4_49s():
    """
    transformers 5 saves the tiny ModernBERT's plain tokenizer as `TokenizersBackend`, a class 4.x lacks
    (allennlp_multitask_compat's "allennlp.data.tokenizers" fix); it tokenizes as the one 4.49 saved.
    """
    tokenizer = PretrainedTransformerTokenizer(str(WRITTEN_BY_TRANSFORMERS_5))
    observed = json.loads(json.dumps([token_data(tokenizer.tokenize(text)) for text in TEXTS]))
    assert observed == load_goldens()["modernbert"]["tokenize"]
