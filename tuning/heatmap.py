"""Heat map of one metric over the n × r grid (the paper's Fig. 4), as a PNG.

The function lives in `pipelines.experiments.figures` next to the experiments' other
figures; this module re-exports it for `tuning.grid` and older callers.

Example:

>>> plot_grid_heatmap("SWEEP/heatmap.png", [2, 3], [1, 2],
...                   {(2, 1): 0.71, (2, 2): 0.74, (3, 1): 0.69}, "val_Has0_acc_2")
"""

from pipelines.experiments.figures import grid_description, plot_grid_heatmap

__all__ = ["plot_grid_heatmap", "grid_description"]
