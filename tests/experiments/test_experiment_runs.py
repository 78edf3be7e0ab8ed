"""`python -m pipelines.experiment NAME`, end to end with real trainings of tiny models.

Every experiment of the catalog runs over two seeds on a tiny synthetic-mosi and writes
its results.csv (a row per cell and seed, and per test condition for `robustness`), its
summary.md (every cell, every comparison with the reference) and its figure.png. To keep
the suite short each experiment runs its reference cell and one other (`--cells`);
`extractor` runs in test_experiment_resume.py.
"""

import pytest

from pipelines import experiment
from pipelines.experiments import catalog
from tests.experiments.helpers import PLAN, argv, check_outputs, runs_dir_for, settings_of


@pytest.mark.parametrize("name", [n for n in catalog.experiment_names() if n != "extractor"])
def test_each_experiment_writes_its_results_summary_and_figure(name, data_dir, runs_dirs,
                                                               tmp_path):
    output_dir = str(tmp_path / name)
    code = experiment.main(argv(name, data_dir, output_dir, runs_dir_for(name, runs_dirs)))
    assert code == 0
    settings = settings_of(name, output_dir, runs_dir_for(name, runs_dirs), data_dir)
    rows, summary = check_outputs(settings)
    other = PLAN[name][0]
    # The other cell is compared with the reference, with an interval and a verdict.
    line = next(l for l in summary.splitlines() if l.startswith(f"| {other} |")
                and "p=" in l)
    assert "[" in line and ("n.s." in line or "better" in line or "worse" in line)
