// Two classification tasks with their own field names and label namespaces, sharing one
// embedder + LSTM backbone. AllenNLP batches only instances with the same field names, so each batch
// holds one task (the "homogeneous_roundrobin" scheduler alternates between them) and
// arg_name_mapping renames each task's fields for the backbone and its head.
//   allennlp train examples/sentiment_and_topic.jsonnet -s /tmp/run --include-package allennlp_multitask
local data_dir = "examples/data/";
local embedding_dim = 32;
local hidden_dim = 32;

local classifier(namespace) = {
  "type": "classifier",
  "seq2vec_encoder": {"type": "boe", "embedding_dim": 2 * hidden_dim, "averaged": true},
  "label_namespace": namespace,
};

local reader(text_key, label_key) = {
  "type": "labeled_text_json",
  "text_key": text_key,
  "label_key": label_key,
  "label_namespace": label_key + "_labels",
};

{
  "dataset_reader": {
    "type": "multitask",
    "readers": {
      "sentiment": reader("sentence", "sentiment"),
      "topic": reader("question", "topic"),
    },
  },
  "data_loader": {
    "type": "multitask",
    "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 16},
  },
  // Validation reads its data in file order.
  "validation_data_loader": {
    "type": "multitask",
    "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 16},
    "shuffle": false,
  },
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
    "backbone": {
      "type": "embedder",
      "text_field_embedder": {
        "token_embedders": {"tokens": {"type": "embedding", "embedding_dim": embedding_dim}},
      },
      "encoder": {"type": "lstm", "input_size": embedding_dim, "hidden_size": hidden_dim, "bidirectional": true},
    },
    "heads": {
      "sentiment": classifier("sentiment_labels"),
      "topic": classifier("topic_labels"),
    },
    "arg_name_mapping": {
      "backbone": {"sentence": "text", "question": "text"},
      "sentiment": {"sentiment": "label"},
      "topic": {"topic": "label"},
    },
    "loss_weights": {"sentiment": 1.0},
  },
  "trainer": {
    "optimizer": {"type": "adam", "lr": 0.01, "fused": true},
    "num_epochs": 5,
    "patience": 5,  // early stopping, after 5 epochs without a better validation_metric: none here
    "validation_metric": "+topic_accuracy",
  },
}
