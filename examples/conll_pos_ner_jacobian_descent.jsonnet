// The CoNLL example (POS + NER on every sentence, news topics on their own) trained by Jacobian descent:
// the backbone gets UPGrad's aggregation of the three heads' gradients instead of their sum. A step of two
// batches sees a CoNLL batch (rows "pos" and "ner") and a topic batch (row "topic"). Needs TorchJD:
//   pip install "allennlp-multitask[jd]"
//   allennlp train examples/conll_pos_ner_jacobian_descent.jsonnet -s /tmp/run --include-package allennlp_multitask
local conll = import "conll_pos_ner.jsonnet";

conll + {
  "trainer"+: {
    "num_gradient_accumulation_steps": 2,
    "callbacks": [{"type": "jacobian_descent", "aggregator": {"type": "upgrad"}}],
  },
}
