"""The predictor `allennlp serve` serves, loaded from its archive as `allennlp predict` loads it."""

from allennlp.common.checks import ConfigurationError, check_for_gpu
from allennlp.common.util import import_module_and_submodules
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

from allennlp_multitask.predictors.multitask import MultiTaskPredictor
from allennlp_multitask.serving.settings import ServeSettings


def load_predictor(settings: ServeSettings) -> MultiTaskPredictor:
    """
    The archive's predictor, with the heads of `settings.active_heads` active (all where `None`). Imports the
    `--include-package` packages first: a worker process of `--workers` starts with none of them imported.
    """
    for package in settings.include_package:
        import_module_and_submodules(package)
    check_for_gpu(settings.cuda_device)
    archive = load_archive(settings.archive_path, cuda_device=settings.cuda_device)
    predictor = Predictor.from_archive(archive, settings.predictor)
    if not isinstance(predictor, MultiTaskPredictor):
        raise ConfigurationError(
            f"allennlp serve serves allennlp_multitask's multitask predictor; --predictor {settings.predictor} "
            f"made a {type(predictor).__name__}."
        )
    if settings.active_heads is not None:
        predictor._model.set_active_heads(settings.active_heads)
    return predictor
