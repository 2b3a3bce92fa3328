"""People in the loop: a round's review queue, their corrections appended, corrected items promoted.

- `names`: the strategies and the queue's columns;
- `queue`: which pool items to look at first (by uncertainty, flips, rule disagreement, OOD) and why;
- `page`: the queue as one self-contained HTML page with the images;
- `apply`: a filled-in queue appended to ``data/corrections.csv``, every row checked first;
- `promote`: corrected items written into the labeled set of the user's own data.
"""
