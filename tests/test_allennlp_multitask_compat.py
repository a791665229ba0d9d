from allennlp.data.tokenizers import PretrainedTransformerTokenizer


def test_allennlps_transformer_tokenizer_loads_and_adds_special_tokens(tiny_bert_dir):
    tokenizer = PretrainedTransformerTokenizer(str(tiny_bert_dir))
    assert [token.text for token in tokenizer.tokenize("the film was great")] == [
        "[CLS]", "the", "film", "was", "great", "[SEP]"
    ]
