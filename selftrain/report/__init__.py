"""The HTML report with pictures, and the DVC plot data, built from the round artifacts.

`pages.write_report` writes ``index.html`` (per-generation accuracy, links to rounds)
and one ``round{k}.html`` per round: figures, tables, and grids of the images
behind the pseudo-labels. Pages are self-contained (every image is a base64
``data:`` URI; no script, no external URL) so they can be mailed, archived as
a DVC output, or opened offline. Every section has a stable ``id`` (see
`pages.ROUND_SECTIONS`, `pages.INDEX_SECTIONS`) and a section that has no data
shows a ``p.unavailable`` note instead of disappearing.

- `plot_data`: the numbers behind the index and ``dvc plots`` (`write_plot_data`);
- `figures`: matplotlib figures of those numbers;
- `tiles`: grids of the images behind the pseudo-labels;
- `markup`: HTML building blocks and the page style;
- `pages`: the index and round pages, written as a whole (`write_report`).
"""
