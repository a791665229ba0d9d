"""
The sweep's tables (see `tests/allennlp_registries.py`) for what analyses a model rather than trains it:
fairness's bias directions and mitigators, interpretation's attackers and interpreters, span extractors, and
the vision modules of AllenNLP's vision-and-language models.
"""

from collections import OrderedDict

import torch
from allennlp.data import DatasetReader
from allennlp.fairness.bias_direction_wrappers import BiasDirectionWrapper
from allennlp.fairness.bias_mitigator_wrappers import BiasMitigatorWrapper
from allennlp.interpret.attackers import Attacker
from allennlp.interpret.influence_interpreters import InfluenceInterpreter
from allennlp.interpret.saliency_interpreters import SaliencyInterpreter
from allennlp.modules.span_extractors import SpanExtractor
from allennlp.modules.vision.grid_embedder import GridEmbedder
from allennlp.modules.vision.image2image import Image2ImageModule
from allennlp.modules.vision.region_detector import RegionDetector
from allennlp.predictors import Predictor

from tests.allennlp_registries import (
    MASK,
    PCA,
    SEED_VOCABULARY,
    SEEDS,
    TEXT_READER,
    WHITESPACE,
    Bench,
    Case,
    Excluded,
    Registry,
    classifier_model,
    smooth_scores,
    typed,
)

# Fairness: bias directions and mitigators from the bench's seed words (see `SEEDS`).

PAIRS = {"seed_word_pairs_file": "seed_word_pairs.json", "tokenizer": WHITESPACE, "direction_vocab": SEED_VOCABULARY}


def seed_embedding() -> torch.nn.Embedding:
    """A word embedding of the bench vocabulary's size (padding, OOV and four words)."""
    torch.manual_seed(0)
    return torch.nn.Embedding(6, 4)


def run_bias_direction(bench: Bench, name: str, case: Case) -> None:
    direction = BiasDirectionWrapper.from_params(bench.params(typed(name, case)))
    assert direction(seed_embedding()).shape == (4,), name


BIAS_DIRECTIONS = Registry(
    BiasDirectionWrapper,
    run_bias_direction,
    {
        "classification_normal": Case(PAIRS),
        "paired_pca": Case(PAIRS),
        "pca": Case(SEEDS),
        "two_means": Case(PAIRS),
    },
)


def run_bias_mitigator(bench: Bench, name: str, case: Case) -> None:
    embedding = seed_embedding()
    # As `bias_mitigator_applicator` builds and hooks it: on its model's embedding layer's output.
    mitigator = BiasMitigatorWrapper.from_params(bench.params(typed(name, case)), embedding_layer=embedding)
    words = torch.tensor([[2, 3, 4], [5, 2, 0]])
    assert mitigator(embedding, (words,), embedding(words)).shape == (2, 3, 4), name


MITIGATOR_PAIRS = {"seed_word_pairs_file": "seed_word_pairs.json", "tokenizer": WHITESPACE}

BIAS_MITIGATORS = Registry(
    BiasMitigatorWrapper,
    run_bias_mitigator,
    {
        "hard": Case(
            {
                "bias_direction": PCA,
                "equalize_word_pairs_file": "seed_word_pairs.json",
                "tokenizer": WHITESPACE,
                "mitigator_vocab": SEED_VOCABULARY,
            }
        ),
        "inlp": Case({**MITIGATOR_PAIRS, "mitigator_vocab": SEED_VOCABULARY}),
        "linear": Case({"bias_direction": PCA}),
        "oscar": Excluded(
            "AllenNLP 2.10.1's own bug on any torch, left as it is: its constructor calls the second bias "
            "direction, keeps the tensor it returns as `bias_direction2`, then calls that tensor (TypeError)"
        ),
    },
)


# Interpretation: an attack or a saliency map of an untrained classifier's prediction, through its predictor.


def classifier_predictor(bench: Bench) -> Predictor:
    reader = DatasetReader.from_params(bench.params(TEXT_READER))
    return Predictor.by_name("text_classifier")(classifier_model(bench.vocabulary()), reader)


SENTENCE = {"sentence": "the film was great"}


def run_attacker(bench: Bench, name: str, case: Case) -> None:
    attacker = Attacker.from_params(bench.params(typed(name, case)), predictor=classifier_predictor(bench))
    attacker.initialize()
    attack = attacker.attack_from_json(SENTENCE, "tokens", "grad_input_1")
    assert attack["final"] and attack["original"], name


ATTACKERS = Registry(Attacker, run_attacker, {"hotflip": Case({}), "input-reduction": Case({})})


def run_saliency_interpreter(bench: Bench, name: str, case: Case) -> None:
    interpreter = SaliencyInterpreter.from_params(
        bench.params(typed(name, case)), predictor=classifier_predictor(bench)
    )
    saliency = interpreter.saliency_interpret_from_json(SENTENCE)
    assert len(saliency["instance_1"]["grad_input_1"]) == 4, name


SALIENCY_INTERPRETERS = Registry(
    SaliencyInterpreter,
    run_saliency_interpreter,
    {name: Case({}) for name in ["integrated-gradient", "simple-gradient", "smooth-gradient"]},
)


def run_influence_interpreter(bench: Bench, name: str, case: Case) -> None:
    model = classifier_model(bench.vocabulary())
    interpreter = InfluenceInterpreter.from_params(bench.params(typed(name, case)), model=model)
    (influence,) = interpreter.interpret_instances(bench.instances()[:1], k=2)
    assert len(influence.top_k) == 2, name


INFLUENCE_INTERPRETERS = Registry(
    InfluenceInterpreter,
    run_influence_interpreter,
    {
        "simple-influence": Case(
            {"train_data_path": "text.jsonl", "train_dataset_reader": TEXT_READER, "recursion_depth": 2}
        )
    },
)


# Span extractors: two spans of each of two padded sequences become span representations.


def run_span_extractor(bench: Bench, name: str, case: Case) -> None:
    extractor = SpanExtractor.from_params(bench.params(typed(name, case)))
    spans = torch.tensor([[[0, 1], [2, 2]], [[0, 0], [0, 1]]])
    extracted = extractor(smooth_scores(2, 3, 4), spans, MASK, torch.ones(2, 2, dtype=torch.bool))
    assert extracted.shape == (2, 2, extractor.get_output_dim()), name


SPAN_EXTRACTORS = Registry(
    SpanExtractor,
    run_span_extractor,
    {name: Case({"input_dim": 4}) for name in ["bidirectional_endpoint", "endpoint", "max_pooling", "self_attentive"]},
)


# Vision: a batch of two small RGB images (and their sizes) through the module.

IMAGES = smooth_scores(2, 3, 8, 8)
SIZES = torch.tensor([[8, 8], [8, 8]])
FASTER_RCNN = (
    "builds torchvision's Faster R-CNN with pretrained=True, which downloads its ResNet-50 weights (160 MB) from "
    "PyTorch's servers at construction: no network here, and no text task takes images"
)


def run_grid_embedder(bench: Bench, name: str, case: Case) -> None:
    embedder = GridEmbedder.from_params(bench.params(typed(name, case)))
    features = embedder(IMAGES, SIZES)
    assert list(features) == list(embedder.get_feature_names()), name


def run_image_to_image(bench: Bench, name: str, case: Case) -> None:
    module = Image2ImageModule.from_params(bench.params(typed(name, case)))
    assert module(IMAGES, SIZES).shape == IMAGES.shape, name


def run_region_detector(bench: Bench, name: str, case: Case) -> None:
    detector = RegionDetector.from_params(bench.params(typed(name, case)))
    regions = detector(IMAGES, SIZES, OrderedDict({"0": IMAGES}))
    assert len(regions.features) == 2 and len(regions.boxes) == 2, name


GRID_EMBEDDERS = Registry(GridEmbedder, run_grid_embedder, {"null": Case({}), "resnet_backbone": Excluded(FASTER_RCNN)})
IMAGE_TO_IMAGE_MODULES = Registry(
    Image2ImageModule, run_image_to_image, {"normalize": Case({"means": [0.5] * 3, "stds": [0.2] * 3})}
)
REGION_DETECTORS = Registry(
    RegionDetector, run_region_detector, {"faster_rcnn": Excluded(FASTER_RCNN), "random": Case({"seed": 0})}
)

ANALYSIS_REGISTRIES = (
    BIAS_DIRECTIONS,
    BIAS_MITIGATORS,
    ATTACKERS,
    SALIENCY_INTERPRETERS,
    INFLUENCE_INTERPRETERS,
    SPAN_EXTRACTORS,
    GRID_EMBEDDERS,
    IMAGE_TO_IMAGE_MODULES,
    REGION_DETECTORS,
)
