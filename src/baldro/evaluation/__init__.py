"""TOFU and MUSE evaluation with open-unlearning's metric definitions and file shapes (see :mod:`.tofu`, :mod:`.muse`)."""
