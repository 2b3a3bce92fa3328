"""The review queue's strategies, columns and default size; no heavy imports (the CLI's flags use them)."""

STRATEGIES = ("uncertainty", "flips", "rule_disagreement", "ood")
QUEUE_COLUMNS = ("item_id", "path", "predicted_label", "confidence", "why", "correct_label", "note")
DEFAULT_TOP = 50
