#!/usr/bin/env bash
# The main job: train the bundled two-task example with `allennlp train`, then predict a mixed-task
# JSON-lines file with the trained archive. Run from the repository root:
#   uv run --locked bash examples/train_and_predict.sh [serialization_dir]
set -euo pipefail
run_dir="${1:-runs/sentiment_and_topic}"
allennlp train examples/sentiment_and_topic.jsonnet -s "$run_dir" -f --include-package allennlp_multitask
allennlp predict "$run_dir/model.tar.gz" examples/data/predict_inputs.jsonl \
  --include-package allennlp_multitask --output-file "$run_dir/predictions.jsonl" --silent
echo "Per-head validation metrics ($run_dir/metrics.json):"
grep -E '"validation_.*_accuracy"' "$run_dir/metrics.json"
echo "Predictions ($run_dir/predictions.jsonl):"
cat "$run_dir/predictions.jsonl"
