"""People in the loop: a round's review queue, their corrections appended, corrected items promoted.

- `names`: the strategies and the queue's columns (a multilabel run's queue has its own);
- `ranking`: what every queue shares (request checks, the rows it ranks, the ood ranking);
- `queue`: which pool items to look at first (by uncertainty, flips, rule disagreement, OOD) and why;
- `label_queue`: the same strategies on a multilabel round's label sets;
- `page`: the queue as one self-contained HTML page with the images;
- `apply`: a filled-in queue appended to ``data/corrections.csv``, every row checked first;
- `promote`: corrected items written into the labeled set of the user's own data.
"""
