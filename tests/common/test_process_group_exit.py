import subprocess
import sys
import textwrap

import pytest
import torch.distributed as dist

from allennlp_multitask.common.process_group_exit import destroy_process_group_left_open


def test_destroys_a_process_group_left_open(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    destroy_process_group_left_open()
    assert not dist.is_initialized()
    destroy_process_group_left_open()  # nothing left to destroy: does nothing


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_process_that_imported_the_package_exits_with_its_group_destroyed(tmp_path):
    # Exit handlers run last-registered first: one registered before the import runs after ours,
    # and sees what the process exits with.
    script = textwrap.dedent(
        f"""
        import atexit
        import torch.distributed as dist
        atexit.register(lambda: print("initialized at exit:", dist.is_initialized()))
        import allennlp_multitask
        dist.init_process_group("gloo", init_method="file://{tmp_path / "store"}", rank=0, world_size=1)
        """
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert finished.stdout.strip().splitlines()[-1] == "initialized at exit: False"
