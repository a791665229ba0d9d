import pytest
from allennlp.data import Vocabulary

from tests.models.small_model import small_vocab


@pytest.fixture
def vocab() -> Vocabulary:
    return small_vocab()
