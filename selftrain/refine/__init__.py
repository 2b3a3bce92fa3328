"""The pseudo-label rule engine: conditions, actions, built-ins, accounting.

`parse_refine_config` validates the ``refine:`` params section once; `refine`
applies it to one round's pseudo-labels (`refine_multilabel` to a multi-label
round: `refine_label_sets`' rules, then its built-ins); `format_report` (`format_label_report`) renders the report.
"""

from selftrain.refine.config import BalanceConfig, RefineConfig, Rule, parse_refine_config
from selftrain.refine.engine import RefineResult, refine
from selftrain.refine.inputs import RefineContext
from selftrain.refine.label_report import format_label_report
from selftrain.refine.label_round import refine_multilabel
from selftrain.refine.label_rules import LabelSetResult, refine_label_sets
from selftrain.refine.output import sharpen
from selftrain.refine.report import format_report
from selftrain.refine.round import refine_round

__all__ = [
    "BalanceConfig",
    "LabelSetResult",
    "RefineConfig",
    "RefineContext",
    "RefineResult",
    "Rule",
    "format_label_report",
    "format_report",
    "parse_refine_config",
    "refine",
    "refine_label_sets",
    "refine_multilabel",
    "refine_round",
    "sharpen",
]
