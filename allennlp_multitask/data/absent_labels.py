"""
Partial labels: an instance that lacks some of its labels still has a field for each (AllenNLP batches only
instances with the same fields), holding a placeholder, and names the placeholders in a `MetadataField`
called `absent_labels`. The multitask model runs a head on the instances that lack a label it takes
without that label (predictions only: no loss, no metric update) and on the others with it.
"""

from typing import Collection, Dict

from allennlp.data.fields import Field, MetadataField

ABSENT_LABELS = "absent_labels"


def absent_labels_field(absent: Collection[str]) -> Dict[str, Field]:
    """The `absent_labels` field naming the fields of an instance that hold placeholders, by its name."""
    return {ABSENT_LABELS: MetadataField(tuple(sorted(absent)))}
