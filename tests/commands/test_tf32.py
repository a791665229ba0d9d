"""
The trainer's `allow_tf32` with `allennlp train`: on the CPU it sets nothing and says so; on a CUDA device
it turns TF32 on for matrix products and cuDNN, and leaves it on.
"""

from typing import Iterator, Tuple

import pytest
import torch

from tests.commands.runs import train

TF32 = {"trainer.allow_tf32": True}


@pytest.fixture
def tf32_flags() -> Iterator[None]:
    """Puts torch's TF32 flags back as they were: the option sets them for the whole process."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def flags() -> Tuple[bool, bool, str]:
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.get_float32_matmul_precision(),
    )


@pytest.mark.slow
def test_allow_tf32_on_the_cpu_sets_nothing_and_logs_a_note(tf32_flags, in_repo_root, tmp_path, monkeypatch):
    torch.backends.cudnn.allow_tf32 = False  # Not torch's default: to see that the option leaves it alone.
    before = flags()
    train(tmp_path / "run", monkeypatch, epochs=1, overrides={**TF32, "trainer.cuda_device": -1})
    assert flags() == before == (False, False, "highest")
    note = "allow_tf32: the trainer runs on cpu, where TF32 does not apply; nothing set."
    assert note in (tmp_path / "run" / "out.log").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="TF32 is a CUDA setting")
def test_allow_tf32_on_cuda_turns_tf32_on_for_matrix_products_and_cudnn(
    tf32_flags, in_repo_root, tmp_path, monkeypatch
):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    train(tmp_path / "run", monkeypatch, epochs=1, overrides={**TF32, "trainer.cuda_device": 0})
    assert flags() == (True, True, "high")
