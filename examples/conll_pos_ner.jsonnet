// One instance, several heads: every CoNLL-2003 sentence feeds both a part-of-speech tagger and a
// named-entity tagger (a CRF, scored by span F1), through `task_heads`; a separate news-topic
// classification task shares the same backbone. The `conll_tags` reader gives each sentence
// `pos_tags` and `ner_tags` fields (IOB1 NER tags, as written), which arg_name_mapping hands to each
// tagger as its `tags`; to predict, the tokens alone do: {"task": "conll", "tokens": ["Lena", "Berg"]}.
//   allennlp train examples/conll_pos_ner.jsonnet -s /tmp/run --include-package allennlp_multitask
local data_dir = "examples/data/";
local embedding_dim = 32;
local hidden_dim = 32;
local encoded_dim = 2 * hidden_dim;

{
  "dataset_reader": {
    "type": "multitask",
    "readers": {
      "conll": {"type": "conll_tags", "tag_columns": {"pos_tags": 1, "ner_tags": 3}},
      "topic": {
        "type": "labeled_text_json",
        "text_key": "sentence",
        "label_key": "topic",
        "label_namespace": "topic_labels",
      },
    },
  },
  "data_loader": {
    "type": "multitask",
    "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 8},
  },
  "train_data_path": {
    "conll": data_dir + "conll_train.txt",
    "topic": data_dir + "news_topic_train.jsonl",
  },
  "validation_data_path": {
    "conll": data_dir + "conll_validation.txt",
    "topic": data_dir + "news_topic_validation.jsonl",
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
      "pos": {"type": "tagger", "input_dim": encoded_dim, "label_namespace": "pos_tags"},
      "ner": {
        "type": "tagger",
        "input_dim": encoded_dim,
        "label_namespace": "ner_tags",
        "label_encoding": "IOB1",
        "use_crf": true,
      },
      "topic": {
        "type": "classifier",
        "seq2vec_encoder": {"type": "boe", "embedding_dim": encoded_dim, "averaged": true},
        "label_namespace": "topic_labels",
      },
    },
    // Sentences of the "conll" task go to both taggers; "topic" goes to the head of its name.
    "task_heads": {"conll": ["pos", "ner"]},
    "arg_name_mapping": {
      "backbone": {"tokens": "text", "sentence": "text"},
      "pos": {"pos_tags": "tags"},
      "ner": {"ner_tags": "tags"},
      "topic": {"topic": "label"},
    },
  },
  "trainer": {
    "optimizer": {"type": "adam", "lr": 0.03, "fused": true},
    "num_epochs": 6,
    "patience": 6,  // early stopping, after 6 epochs without a better validation_metric: none here
    // The archived epoch is the best by the sum of both taggers' scores: NER alone ties at 1.0 early.
    "validation_metric": ["+ner_f1-measure-overall", "+pos_accuracy"],
  },
}
