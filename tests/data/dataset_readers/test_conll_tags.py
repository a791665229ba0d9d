import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Token
from allennlp.data.dataset_readers import Conll2003DatasetReader

from allennlp_multitask.data import ConllTagsReader
from tests.conftest import REPO_ROOT

EXAMPLE_FILE = str(REPO_ROOT / "examples" / "data" / "conll_train.txt")


def test_reads_the_tag_columns_as_allennlps_conll2003_reader_does():
    reader = DatasetReader.from_params(Params({"type": "conll_tags", "tag_columns": {"pos_tags": 1, "ner_tags": 3}}))
    assert isinstance(reader, ConllTagsReader)
    ours = list(reader.read(EXAMPLE_FILE))
    allennlps = list(Conll2003DatasetReader(tag_label=None, feature_labels=["pos", "ner"]).read(EXAMPLE_FILE))
    assert len(ours) == len(allennlps) == 48
    for instance, expected in zip(ours, allennlps):
        assert set(instance.fields) == {"tokens", "pos_tags", "ner_tags", "absent_labels"}
        assert instance["absent_labels"].metadata == ()
        assert [token.text for token in instance["tokens"]] == [token.text for token in expected["tokens"]]
        for field in ("pos_tags", "ner_tags"):
            assert instance[field].labels == expected[field].labels
            assert instance[field]._label_namespace == field


def test_tokens_alone_make_an_instance_to_predict():
    reader = ConllTagsReader()
    assert set(reader.text_to_instance([Token("Lena"), Token("Berg")]).fields) == {"tokens", "absent_labels"}
    tagged = reader.text_to_instance([Token("Lena")], ner_tags=["I-PER"])
    assert set(tagged.fields) == {"tokens", "ner_tags", "absent_labels"} and tagged["ner_tags"].labels == ["I-PER"]
    with pytest.raises(ValueError, match=r"no tag field\(s\) \['pos'\]; its tag fields: \['chunk_tags', 'ner_tags'"):
        reader.text_to_instance([Token("Lena")], pos=["NNP"])


@pytest.mark.parametrize(
    "lines, message",
    [
        pytest.param(
            ["-DOCSTART- -X- -X- O", "", "Lena NNP B-NP I-PER", "New York NNP B-NP I-LOC"],
            r"data.txt:4 has 5 column\(s\), but .*data.txt:3 has 4: every line holds a token and its tags",
            id="a token with a space",
        ),
        pytest.param(
            ["Lena NNP B-NP I-PER", "", "Berg NNP I-PER"],
            r"data.txt:3 has 3 column\(s\), but .*data.txt:1 has 4",
            id="a missing column",
        ),
        pytest.param(
            ["Lena NNP", "Berg NNP"],
            r"data.txt:1 has 2 column\(s\), but tag_columns \{.*\} reads column 3",
            id="too few columns",
        ),
    ],
)
def test_lines_with_other_columns_are_named_by_file_and_line(tmp_path, lines, message):
    path = tmp_path / "data.txt"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(ValueError, match=message):
        list(ConllTagsReader().read(str(path)))


@pytest.mark.parametrize("tag_columns", [{"tokens": 1}, {"pos_tags": 0}])
def test_tag_columns_cannot_take_the_tokens(tag_columns):
    with pytest.raises(ConfigurationError, match="tag_columns must name fields other than 'tokens' and columns from 1"):
        ConllTagsReader(tag_columns=tag_columns)


def test_a_column_of_underscores_means_a_sentence_without_those_tags(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("Lena NNP I-PER\nBerg NNP I-PER\n\nvisited VBD _\nYork NNP _\n\nLena _ O\n")
    reader = ConllTagsReader(tag_columns={"pos_tags": 1, "ner_tags": 2})
    tagged, without_ner, without_pos = reader.read(str(path))
    assert tagged["absent_labels"].metadata == () and tagged["ner_tags"].labels == ["I-PER", "I-PER"]
    assert without_ner["absent_labels"].metadata == ("ner_tags",)
    assert without_ner["pos_tags"].labels == ["VBD", "NNP"]
    # A placeholder of as many tags as tokens, which adds nothing to the vocabulary.
    assert without_ner["ner_tags"].labels == [0, 0] and without_ner["ner_tags"]._skip_indexing
    assert without_pos["absent_labels"].metadata == ("pos_tags",)


def test_a_column_with_underscores_on_some_tokens_only_is_named_by_file_and_line(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("Lena NNP I-PER\n\nvisited VBD O\nYork NNP _\n")
    with pytest.raises(ValueError, match=r"data.txt:4 has '_' \(no annotation\) in column 2 \(ner_tags\), but other"):
        list(ConllTagsReader(tag_columns={"pos_tags": 1, "ner_tags": 2}).read(str(path)))
