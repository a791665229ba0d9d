"""
Configuration pieces for multitask models on a transformer: a labelled-text reader and a classifier head.
"""


def reader(model_name: str, text_key: str, label_key: str) -> dict:
    return {
        "type": "labeled_text_json",
        "text_key": text_key,
        "label_key": label_key,
        "label_namespace": f"{label_key}_labels",
        "tokenizer": {"type": "pretrained_transformer", "model_name": model_name},
        "token_indexers": {"tokens": {"type": "pretrained_transformer", "model_name": model_name}},
    }


def classifier(namespace: str) -> dict:
    return {
        "type": "classifier",
        "seq2vec_encoder": {"type": "cls_pooler", "embedding_dim": 16},
        "label_namespace": namespace,
    }
