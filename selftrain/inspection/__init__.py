"""Per-round inspection of pseudo-labels: what the teacher said, what the rules did, how right it was.

The modules read the round artifacts (DESIGN.md, "Artifacts per round") and
return pandas tables; only `terminal` prints. The artifact columns only grow, so
every reader checks for a column before using it and returns an empty table
(with its columns) when the data behind it is absent: no ground truth means no
canary, no ``refined.parquet`` means no kept counts, no ``rules_report.json``
means rule hits are counted from the table itself.

- `rounds`: which rounds are on disk, and one round's tables read from it;
- `views`: row-level views every table shares (pseudo-label, kept, truth, rules);
- `tables`: the summary tables of a round, and two rounds side by side;
- `rule_hits`, `flips`, `canary`: the tables about rules, prediction flips, ground truth;
- `history`: one item across rounds;
- `data_stats`: prepare's shift check (stats.json), a row per split;
- `cells`, `terminal`: table cells as text, and the tables printed with rich.
"""
