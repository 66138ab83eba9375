"""Multiplicity: Benjamini-Hochberg q-values over a stated family of rows, and the header text naming it.

Every q-value column says which rows it corrects over (the family); a table may carry several
(e.g. the saliency test's q within one disease's 10 age pairs and q across every disease's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests


def bh_by_family(table: pd.DataFrame, p_column: str, family: list[str]) -> pd.Series:
    """Benjamini-Hochberg q-values of `p_column`, corrected within each family (rows equal in the
    `family` columns; [] = the whole table). NaN p-values stay NaN and do not count."""
    q = pd.Series(np.nan, index=table.index, name=f"q_{p_column}")
    groups = [part.index for _, part in table.groupby(family, sort=False, observed=True)] if family else [table.index]
    for rows in groups:
        p = table.loc[rows, p_column].to_numpy(float)
        finite = np.isfinite(p)
        if finite.any():
            q.loc[np.asarray(rows)[finite]] = multipletests(p[finite], method="fdr_bh")[1]
    return q


def family_note(family: list[str], what: str) -> str:
    """Header text naming the family a q-value corrects over."""
    if not family:
        return f"q = Benjamini-Hochberg over all rows of {what}"
    return f"q = Benjamini-Hochberg within each {' x '.join(family)} of {what}"
