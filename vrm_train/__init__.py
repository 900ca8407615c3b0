"""vrm_train: a fast trainer for VRM (Virtual Relation Matching) and the distillation baselines it is
compared against. The VRM maths lives in :mod:`vrm_train.relations`."""

__version__ = "0.1.0"
