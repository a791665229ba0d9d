import pytest
import torch

from allennlp_multitask.training.metrics.gather import cat_rows_from_workers, sum_counts_of_workers
from tests.distributed_workers import on_two_workers


def gather_both(rank: int) -> dict:
    rows = torch.arange(6.0).view(3, 2) if rank == 0 else torch.empty(0, 2)
    tallies = [{"PER": 1, "LOC": 2}, {}] if rank == 0 else [{"LOC": 3, "ORG": 1}, {"PER": 4}]
    return {
        "rows": cat_rows_from_workers(rows),
        "only_worker_1": cat_rows_from_workers(torch.tensor([[7.0, 8.0]]) if rank == 1 else torch.empty(0, 2)),
        "no_rows": cat_rows_from_workers(torch.empty(0, 2)),
        "counts": sum_counts_of_workers(tallies),
    }


@pytest.mark.distributed
def test_workers_get_all_rows_in_rank_order_and_label_counts_summed(tmp_path):
    for result in on_two_workers(gather_both, out_dir=tmp_path):
        assert torch.equal(result["rows"], torch.arange(6.0).view(3, 2))
        assert torch.equal(result["only_worker_1"], torch.tensor([[7.0, 8.0]]))
        assert result["no_rows"].shape == (0, 2)
        assert result["counts"] == [{"PER": 1, "LOC": 5, "ORG": 1}, {"PER": 4}]
