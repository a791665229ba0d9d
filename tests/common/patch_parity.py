"""
Calls each function that importing `allennlp_multitask` patches (`import_changes.PATCHES`) the ways a
user's code can, and records what each call returned or raised and what it left on disk.

Run as `python -m tests.common.patch_parity original|ours DIRECTORY`: with `ours`, the process imports the
package first, so every call goes to our replacement; with `original`, to AllenNLP's (or the library's)
own. It runs every scenario under each of `UMASKS`, in a new directory of its own under DIRECTORY (also
the working directory, for relative paths), and prints the records as JSON, which
`test_patch_parity.py` compares.

A scenario is a function of the patched function and its directory; it prepares what it needs with plain
Python, calls the patched function (looked up by its target at call time, where the process has it), and
returns what the call returned. A scenario with `differs` is one where ours departs from the original
on purpose, for the reason it gives: there, the records must differ.
"""

import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

UMASKS = (0o022, 0o002, 0o077)


@dataclass(frozen=True)
class Scenario:
    target: str
    call: Callable[[Any, Path], Any]
    differs: Optional[str] = None


SCENARIOS: Dict[str, Scenario] = {}


def scenario(*targets: str, differs: Optional[str] = None) -> Callable[[Callable], Callable]:
    """Registers the decorated call as a scenario of each of `targets` (the same function, looked up there)."""

    def register(call: Callable[[Any, Path], Any]) -> Callable[[Any, Path], Any]:
        for target in targets:
            SCENARIOS[f"{target}: {call.__name__}"] = Scenario(target, call, differs)
        return call

    return register


# What the scenarios write with, made once per call with plain Python.


def _params() -> Any:
    from allennlp.common import Params

    return Params({"model": {"type": "multitask", "heads": {"b": 1, "a": 2}}, "trainer": {"num_epochs": 1}})


def _meta() -> Any:
    from allennlp.common.meta import Meta

    return Meta.new()


def _vocabulary(*tokens: str) -> Any:
    from allennlp.data import Vocabulary

    vocabulary = Vocabulary()
    vocabulary.add_tokens_to_namespace(list(tokens), "tokens")
    vocabulary.add_tokens_to_namespace(["positive", "negative"], "sentiment_labels")
    return vocabulary


def _serialization_dir(directory: Path) -> Path:
    """What `archive_model` archives: a run's config, weights and vocabulary."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model": {"type": "multitask"}}))
    (directory / "best.th").write_bytes(b"weights")
    (directory / "vocabulary").mkdir(exist_ok=True)
    (directory / "vocabulary" / "tokens.txt").write_text("a\nb\n")
    return directory


def _tar(path: Path, members: Dict[str, int], links: Optional[Dict[str, str]] = None) -> Path:
    """A `.tar.gz` with `members` (names ending in `/` are directories) of those modes, and symbolic `links`."""
    with tarfile.open(path, "w:gz") as archive:
        for name, mode in members.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mode = mode
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                data = f"contents of {name}".encode()
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


_MODEL_MEMBERS = {"config.json": 0o644, "weights.th": 0o664, "vocabulary/": 0o775, "vocabulary/tokens.txt": 0o640}
_ESCAPING_LINKS = {"escape": "../../outside"}


# Params.to_file, Meta.to_file

_PARAMS_TO_FILE = "allennlp.common.params.Params.to_file"
_META_TO_FILE = "allennlp.common.meta.Meta.to_file"


@scenario(_PARAMS_TO_FILE)
def params_to_a_new_file(to_file: Any, work: Path) -> Any:
    return to_file(_params(), str(work / "config.json"))


@scenario(_PARAMS_TO_FILE)
def params_to_a_relative_path_with_preference_orders(to_file: Any, work: Path) -> Any:
    return to_file(_params(), "config.json", [["trainer", "model"]])


def _over_an_existing_file_of_its_own_mode(to_file: Any, value: Any, work: Path) -> Any:
    (work / "out.json").write_text("old")
    os.chmod(work / "out.json", 0o640)
    return to_file(value, str(work / "out.json"))


@scenario(_PARAMS_TO_FILE)
def params_over_an_existing_file_of_its_own_mode(to_file: Any, work: Path) -> Any:
    return _over_an_existing_file_of_its_own_mode(to_file, _params(), work)


@scenario(_META_TO_FILE)
def meta_over_an_existing_file_of_its_own_mode(to_file: Any, work: Path) -> Any:
    return _over_an_existing_file_of_its_own_mode(to_file, _meta(), work)


@scenario(_PARAMS_TO_FILE)
def params_in_a_directory_that_does_not_exist(to_file: Any, work: Path) -> Any:
    return to_file(_params(), str(work / "new" / "config.json"))


@scenario(_META_TO_FILE)
def meta_to_a_relative_path(to_file: Any, work: Path) -> Any:
    return to_file(_meta(), "meta.json")


# Vocabulary.save_to_files

_SAVE_VOCABULARY = "allennlp.data.vocabulary.Vocabulary.save_to_files"


@scenario(_SAVE_VOCABULARY)
def vocabulary_in_new_nested_directories(save_to_files: Any, work: Path) -> Any:
    return save_to_files(_vocabulary("a", "b"), str(work / "run" / "new" / "vocabulary"))


@scenario(_SAVE_VOCABULARY)
def vocabulary_to_a_relative_path(save_to_files: Any, work: Path) -> Any:
    return save_to_files(_vocabulary("a"), "vocabulary")


@scenario(_SAVE_VOCABULARY)
def vocabulary_over_an_existing_one_with_other_files(save_to_files: Any, work: Path) -> Any:
    save_to_files(_vocabulary("old", "tokens", "here"), str(work / "vocabulary"))
    os.chmod(work / "vocabulary", 0o750)
    (work / "vocabulary" / "old_namespace.txt").write_text("kept\n")
    (work / "vocabulary" / "notes.md").write_text("a user's file\n")
    return save_to_files(_vocabulary("new"), str(work / "vocabulary"))


# dump_metrics, where each of AllenNLP's modules looks it up

_DUMP_METRICS = (
    "allennlp.common.util.dump_metrics",
    "allennlp.evaluation.evaluator.dump_metrics",
    "allennlp.training.util.dump_metrics",
)
_METRICS = {"best_epoch": 1, "validation_topic_accuracy": 0.75, "training_loss": 1.5}


@scenario(*_DUMP_METRICS)
def metrics_to_a_new_file(dump_metrics: Any, work: Path) -> Any:
    return dump_metrics(str(work / "metrics.json"), _METRICS, log=True)


@scenario(*_DUMP_METRICS)
def metrics_to_a_relative_path_over_an_existing_file(dump_metrics: Any, work: Path) -> Any:
    (work / "metrics.json").write_text("{}")
    os.chmod(work / "metrics.json", 0o600)
    return dump_metrics("metrics.json", _METRICS)


@scenario(*_DUMP_METRICS)
def metrics_to_no_file(dump_metrics: Any, work: Path) -> Any:
    return dump_metrics(None, _METRICS, log=True)


@scenario(*_DUMP_METRICS)
def metrics_in_a_directory_that_does_not_exist(dump_metrics: Any, work: Path) -> Any:
    return dump_metrics(str(work / "new" / "metrics.json"), _METRICS)


# archive_model, where each of AllenNLP's modules looks it up

_ARCHIVE_MODEL = (
    "allennlp.models.archival.archive_model",
    "allennlp.models.archive_model",
    "allennlp.commands.train.archive_model",
)


@scenario(*_ARCHIVE_MODEL)
def archive_in_the_serialization_directory(archive_model: Any, work: Path) -> Any:
    return archive_model(str(_serialization_dir(work / "run")))


@scenario(*_ARCHIVE_MODEL)
def archive_to_a_relative_directory_over_an_old_archive(archive_model: Any, work: Path) -> Any:
    _serialization_dir(work / "run")
    (work / "out").mkdir()
    (work / "out" / "model.tar.gz").write_bytes(b"an old archive")
    os.chmod(work / "out" / "model.tar.gz", 0o640)
    return archive_model("run", archive_path="out")


@scenario(*_ARCHIVE_MODEL)
def archive_to_a_file_with_other_weights_and_files(archive_model: Any, work: Path) -> Any:
    run = _serialization_dir(work / "run")
    (run / "model_state_e1_b0.th").write_bytes(b"epoch one")
    (run / "extra.txt").write_text("included")
    return archive_model(str(run), "model_state_e1_b0.th", str(work / "chosen.tar.gz"), ["extra.txt"])


@scenario(*_ARCHIVE_MODEL)
def archive_without_its_weights(archive_model: Any, work: Path) -> Any:
    run = _serialization_dir(work / "run")
    (run / "best.th").unlink()
    return archive_model(str(run))


# hardlink_or_copy, as the trainer links best.th to the checkpoint just saved


@scenario("allennlp.training.gradient_descent_trainer.hardlink_or_copy")
def link_to_a_new_path(hardlink_or_copy: Any, work: Path) -> Any:
    (work / "model_state_e1_b0.th").write_bytes(b"weights")
    os.chmod(work / "model_state_e1_b0.th", 0o640)
    return hardlink_or_copy(str(work / "model_state_e1_b0.th"), "best.th")


@scenario(
    "allennlp.training.gradient_descent_trainer.hardlink_or_copy",
    differs="ours replaces an existing target in one step, where AllenNLP's raises FileExistsError (its trainer "
    "removes best.th first, leaving none for a moment)",
)
def link_over_an_existing_file(hardlink_or_copy: Any, work: Path) -> Any:
    (work / "model_state_e1_b0.th").write_bytes(b"new weights")
    (work / "best.th").write_bytes(b"old weights")
    return hardlink_or_copy(str(work / "model_state_e1_b0.th"), str(work / "best.th"))


# Extracting archives

_EXTRACTALL = "tarfile.TarFile.extractall"
_REFUSED = "ours refuses a member that would land outside the directory; the original writes it"


def _extract(extractall: Any, archive: Path, path: Any, **kwargs: Any) -> Any:
    with tarfile.open(archive) as opened:
        return extractall(opened, path, **kwargs)


@scenario(_EXTRACTALL)
def extract_a_model_archive_into_a_new_directory(extractall: Any, work: Path) -> Any:
    return _extract(extractall, _tar(work / "model.tar.gz", _MODEL_MEMBERS), str(work / "new" / "extracted"))


@scenario(_EXTRACTALL)
def extract_to_a_relative_existing_directory_with_files(extractall: Any, work: Path) -> Any:
    (work / "extracted").mkdir(mode=0o750)
    (work / "extracted" / "config.json").write_text("old")
    (work / "extracted" / "kept.txt").write_text("kept")
    return _extract(extractall, _tar(work / "model.tar.gz", _MODEL_MEMBERS), "extracted")


@scenario(_EXTRACTALL)
def extract_some_members(extractall: Any, work: Path) -> Any:
    archive = _tar(work / "model.tar.gz", _MODEL_MEMBERS)
    with tarfile.open(archive) as opened:
        members = [member for member in opened.getmembers() if member.name.startswith("vocabulary")]
        return extractall(opened, str(work / "extracted"), members)


@scenario(_EXTRACTALL)
def extract_with_a_filter_given(extractall: Any, work: Path) -> Any:
    return _extract(extractall, _tar(work / "model.tar.gz", _MODEL_MEMBERS), str(work / "out"), filter="data")


@scenario(_EXTRACTALL)
def extract_a_link_inside(extractall: Any, work: Path) -> Any:
    archive = _tar(work / "model.tar.gz", _MODEL_MEMBERS, {"weights_link.th": "weights.th"})
    return _extract(extractall, archive, str(work / "extracted"))


@scenario(_EXTRACTALL, differs=_REFUSED)
def extract_a_link_leaving_the_directory(extractall: Any, work: Path) -> Any:
    return _extract(extractall, _tar(work / "model.tar.gz", _MODEL_MEMBERS, _ESCAPING_LINKS), str(work / "x"))


_CHECK_TARFILE = "cached_path._cached_path.check_tarfile"


@scenario(_CHECK_TARFILE)
def check_a_model_archive(check_tarfile: Any, work: Path) -> Any:
    with tarfile.open(_tar(work / "model.tar.gz", _MODEL_MEMBERS)) as opened:
        return check_tarfile(opened)


@scenario(_CHECK_TARFILE, differs="ours leaves the check to our extractall, which names the member it refuses")
def check_an_archive_with_a_link_leaving_it(check_tarfile: Any, work: Path) -> Any:
    with tarfile.open(_tar(work / "model.tar.gz", _MODEL_MEMBERS, _ESCAPING_LINKS)) as opened:
        return check_tarfile(opened)


_EXTRACTED_ARCHIVE = "allennlp.models.archival.extracted_archive"


def _in_temporary_directory(work: Path, call: Callable[[], Any]) -> Any:
    """`call()` with `tempfile`'s directory in `work`, where the tree records what it leaves."""
    (work / "tmp").mkdir()
    tempfile.tempdir = str(work / "tmp")
    try:
        return call()
    finally:
        tempfile.tempdir = None
        for index, left in enumerate(sorted((work / "tmp").iterdir())):  # named at random: renamed in order
            left.rename(work / "tmp" / f"temporary_{index}")


@scenario(_EXTRACTED_ARCHIVE)
def extracted_and_cleaned_up(extracted_archive: Any, work: Path) -> Any:
    def call() -> Any:
        with extracted_archive(str(_tar(work / "model.tar.gz", _MODEL_MEMBERS))) as directory:
            return tree(Path(directory))

    return _in_temporary_directory(work, call)


@scenario(_EXTRACTED_ARCHIVE)
def extracted_and_kept(extracted_archive: Any, work: Path) -> Any:
    def call() -> Any:
        with extracted_archive(str(_tar(work / "model.tar.gz", _MODEL_MEMBERS)), cleanup=False) as directory:
            return tree(Path(directory))

    return _in_temporary_directory(work, call)


@scenario(_EXTRACTED_ARCHIVE, differs="ours removes the temporary directory when extraction fails")
def extraction_that_fails(extracted_archive: Any, work: Path) -> Any:
    def call() -> Any:
        (work / "model.tar.gz").write_bytes(b"not an archive")
        with extracted_archive(str(work / "model.tar.gz"), cleanup=False) as directory:
            return directory

    return _in_temporary_directory(work, call)


# torch.load


def _saved(path: Path) -> Path:
    import torch

    torch.save({"weight": torch.arange(6.0).view(2, 3), "step": 3, "names": ["a", "b"]}, path)
    return path


@scenario("torch.load")
def load_weights_from_a_path(load: Any, work: Path) -> Any:
    return load(str(_saved(work / "weights.th")), map_location="cpu")


@scenario("torch.load")
def load_weights_from_a_relative_path_mapped_by_a_function(load: Any, work: Path) -> Any:
    _saved(work / "weights.th")
    return load("weights.th", map_location=lambda storage, location: storage)


@scenario("torch.load")
def load_weights_from_an_open_file(load: Any, work: Path) -> Any:
    with open(_saved(work / "weights.th"), "rb") as opened:
        return load(opened)


@scenario("torch.load")
def load_weights_memory_mapped(load: Any, work: Path) -> Any:
    return load(str(_saved(work / "weights.th")), mmap=True, map_location="cpu")


@scenario("torch.load")
def load_code_when_asked(load: Any, work: Path) -> Any:
    import datetime

    import torch

    torch.save({"when": datetime.date(2022, 1, 2)}, work / "state.th")
    return load(work / "state.th", weights_only=False)


@scenario("torch.load")
def load_code_when_not_asked(load: Any, work: Path) -> Any:
    import datetime

    import torch

    torch.save({"when": datetime.date(2022, 1, 2)}, work / "state.th")
    return load(work / "state.th")


# The trainer's mixed precision (`amp`, a module)

_TRAINER_AMP = "allennlp.training.gradient_descent_trainer.amp"


@scenario(_TRAINER_AMP)
def autocast_off_as_the_trainer_enters_it(amp: Any, work: Path) -> Any:
    import torch

    with amp.autocast(False):
        product = torch.ones(2, 3) @ torch.ones(3, 2)
    return [product, str(product.dtype)]


@scenario(_TRAINER_AMP)
def gradient_scaler_as_the_trainer_makes_it(amp: Any, work: Path) -> Any:

    scaler = amp.GradScaler()
    return [scaler.is_enabled(), scaler.get_scale(), scaler.state_dict()]


# Recording


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _member_digest(archive: tarfile.TarFile, member: tarfile.TarInfo) -> Optional[str]:
    extracted = archive.extractfile(member) if member.isfile() else None
    return _digest(extracted.read()) if extracted else None


def _archive_listing(path: Path) -> Any:
    """A tar archive's members (name, kind, mode, contents), without the times that differ run to run."""
    try:
        with tarfile.open(path) as archive:
            return [
                [member.name, member.type.decode(), oct(member.mode), member.linkname, _member_digest(archive, member)]
                for member in archive.getmembers()
            ]
    except tarfile.TarError:
        return _digest(path.read_bytes())


def tree(root: Path) -> Dict[str, Any]:
    """Every path under `root`: its kind, permission bits, and contents (an archive's members)."""
    entries: Dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            entry: List[Any] = ["link", os.readlink(path)]
        elif stat.S_ISDIR(mode):
            entry = ["dir"]
        else:
            contents = _archive_listing(path) if path.name.endswith(".tar.gz") else _digest(path.read_bytes())
            entry = ["file", contents]
        entries[str(path.relative_to(root))] = [*entry, oct(stat.S_IMODE(mode))]
    return entries


def _plain(value: Any, work: Path) -> Any:
    """`value` as JSON, tensors as lists and paths relative to the scenario's directory."""
    if hasattr(value, "tolist"):
        return _plain(value.tolist(), work)
    if isinstance(value, dict):
        return {str(key): _plain(item, work) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, work) for item in value]
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value).replace(str(work), "<work>")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)


def record(scenario: Scenario, umask: int, work: Path) -> Dict[str, Any]:
    """Runs `scenario` in `work` (made, and the working directory) under `umask`; what happened."""
    from tests.common.import_snapshot import resolve

    work.mkdir(parents=True)
    previous_directory, previous_umask = os.getcwd(), os.umask(umask)
    os.chdir(work)
    try:
        returned, raised = _plain(scenario.call(resolve(scenario.target), work), work), None
    except Exception as error:
        returned, raised = None, [cls.__name__ for cls in type(error).__mro__]
    finally:
        os.umask(previous_umask)
        os.chdir(previous_directory)
    return {"returned": returned, "raised": raised, "tree": tree(work)}


def main(side: str, directory: str) -> None:
    if side == "ours":
        import allennlp_multitask  # noqa: F401  (patches what the scenarios call)
    records = {
        f"{name} (umask {umask:03o})": record(scenario, umask, Path(directory) / str(index) / f"{umask:03o}")
        for index, (name, scenario) in enumerate(SCENARIOS.items())
        for umask in UMASKS
    }
    print(json.dumps(records))


if __name__ == "__main__":
    main(*sys.argv[1:])
