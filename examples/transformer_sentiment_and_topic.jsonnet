// The two tasks of sentiment_and_topic.jsonnet, fine-tuning one pretrained transformer for both, as most
// AllenNLP multitask configs do: a `pretrained_transformer` tokenizer, indexer and backbone, a classifier
// head per task on the first token's vector, `huggingface_adamw` and `slanted_triangular`.
// The transformer comes from the environment: a Hugging Face model name or a saved model's directory, and
// its hidden size. For BERT-base, on a machine that reaches the Hugging Face hub:
//   TRANSFORMER_MODEL=bert-base-uncased TRANSFORMER_HIDDEN_SIZE=768 \
//     allennlp train examples/transformer_sentiment_and_topic.jsonnet -s runs/bert --include-package allennlp_multitask
local transformer_model = std.extVar("TRANSFORMER_MODEL");
local hidden_size = std.parseInt(std.extVar("TRANSFORMER_HIDDEN_SIZE"));
local max_length = 128;
local data_dir = "examples/data/";

local reader(text_key, label_key) = {
  "type": "labeled_text_json",
  "text_key": text_key,
  "label_key": label_key,
  "label_namespace": label_key + "_labels",
  "tokenizer": {"type": "pretrained_transformer", "model_name": transformer_model, "max_length": max_length},
  "token_indexers": {"tokens": {"type": "pretrained_transformer", "model_name": transformer_model}},
};

local classifier(namespace) = {
  "type": "classifier",
  "seq2vec_encoder": {"type": "cls_pooler", "embedding_dim": hidden_size},
  "dropout": 0.1,
  "label_namespace": namespace,
};

local loader(shuffle) = {
  "type": "multitask",
  "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 16},
  "shuffle": shuffle,
};

{
  "dataset_reader": {
    "type": "multitask",
    "readers": {
      "sentiment": reader("sentence", "sentiment"),
      "topic": reader("question", "topic"),
    },
  },
  "data_loader": loader(true),
  "validation_data_loader": loader(false),
  "train_data_path": {
    "sentiment": data_dir + "sentiment_train.jsonl",
    "topic": data_dir + "topic_train.jsonl",
  },
  "validation_data_path": {
    "sentiment": data_dir + "sentiment_validation.jsonl",
    "topic": data_dir + "topic_validation.jsonl",
  },
  "model": {
    "type": "multitask",
    "backbone": {"type": "pretrained_transformer", "model_name": transformer_model},
    "heads": {
      "sentiment": classifier("sentiment_labels"),
      "topic": classifier("topic_labels"),
    },
    "arg_name_mapping": {
      "backbone": {"sentence": "text", "question": "text"},
      "sentiment": {"sentiment": "label"},
      "topic": {"topic": "label"},
    },
  },
  "trainer": {
    "optimizer": {
      "type": "huggingface_adamw",
      "lr": 5e-5,
      "weight_decay": 0.01,
      "parameter_groups": [[["bias", "LayerNorm\\.weight", "layer_norm\\.weight"], {"weight_decay": 0}]],
    },
    "learning_rate_scheduler": {"type": "slanted_triangular", "cut_frac": 0.1},
    "grad_norm": 1.0,
    "num_epochs": 3,
    "patience": 3,  // early stopping, after 3 epochs without a better validation_metric: none here
    "validation_metric": "+topic_accuracy",
  },
}
