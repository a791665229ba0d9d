#!/usr/bin/env bash
# The main job: train the bundled two-task example with `allennlp train`, then predict a mixed-task
# JSON-lines file with the trained archive. Run from the repository root:
#   uv run --locked bash examples/train_and_predict.sh [serialization_dir]
set -euo pipefail
# One intra-op thread unless you say otherwise: this small model runs its epochs 25-150x faster on a
# shared 2-core machine with one thread than with PyTorch's default of one per core (README, CPU machines).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# AllenNLP's warnings and progress bars only; ALLENNLP_LOG_LEVEL=INFO shows its whole log (every
# configuration value, then each epoch's metrics); AllenNLP writes the same to $run_dir/out.log.
export ALLENNLP_LOG_LEVEL="${ALLENNLP_LOG_LEVEL:-WARNING}"
run_dir="${1:-runs/sentiment_and_topic}"
allennlp train examples/sentiment_and_topic.jsonnet -s "$run_dir" -f --include-package allennlp_multitask
allennlp predict "$run_dir/model.tar.gz" examples/data/predict_inputs.jsonl \
  --include-package allennlp_multitask --output-file "$run_dir/predictions.jsonl" --silent
# model.tar.gz holds the best epoch's weights (by the config's validation_metric), not the last epoch's.
echo "Validation metrics of the archived model, $run_dir/model.tar.gz ($run_dir/metrics.json):"
grep -E '"best_epoch"|"best_validation_.*_accuracy"' "$run_dir/metrics.json"
echo "Predicted labels (full outputs in $run_dir/predictions.jsonl):"
python - "$run_dir/predictions.jsonl" <<'PYTHON'
import json
import sys

with open(sys.argv[1]) as predictions:
    for line in predictions:
        output = json.loads(line)
        print({key: value for key, value in output.items() if key.endswith("_label")})
PYTHON
