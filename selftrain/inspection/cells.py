"""How one table cell reads as text, in the terminal and in the HTML report alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def format_cell(value: Any) -> str:
    """Text of one cell: floats to 4 places, lists joined, nulls as '-'."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value) or "-"
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value)
