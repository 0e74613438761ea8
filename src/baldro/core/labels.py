"""The label of positions that carry no loss: ``IGNORE_INDEX = -100`` (prompt, padding, BOS).

Hugging Face's convention (``torch.nn.CrossEntropyLoss(ignore_index=-100)``), which open-unlearning's collators
follow too. Defined once here; every module that builds or reads labels imports it.
"""

IGNORE_INDEX = -100
