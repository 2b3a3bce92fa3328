"""The review queue's strategies, columns and default size; no heavy imports (the CLI's flags use them)."""

STRATEGIES = ("uncertainty", "flips", "rule_disagreement", "ood")
QUEUE_COLUMNS = ("item_id", "path", "predicted_label", "confidence", "why", "correct_label", "note")
# A multilabel run's queue: the teacher's set and how unsure its least certain class was;
# the person writes the whole corrected set.
LABEL_SET_QUEUE_COLUMNS = ("item_id", "path", "predicted_labels", "min_margin", "why", "correct_labels", "note")
# How a queue writes the empty set, and how a person says "shows none of the classes":
# an empty correct_labels cell already means "not reviewed".
NO_LABELS = "(none)"
DEFAULT_TOP = 50
