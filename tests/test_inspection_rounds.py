"""Which rounds are on disk and reading one (selftrain.inspection.rounds), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import pytest

from report_fixtures import project  # noqa: F401 (pytest fixtures)
from selftrain.errors import SelftrainError
from selftrain.inspection.rounds import RoundNotFoundError, available_rounds
from selftrain.inspection.tables import round_summary
from selftrain.paths import ProjectPaths


def test_available_rounds_ignores_round_zero_and_stray_dirs(project):
    (project.root / "data" / "gen0").mkdir(exist_ok=True)  # the teacher's round: no table
    (project.root / "data" / "genx").mkdir(exist_ok=True)
    (project.root / "data" / "gen9").mkdir(exist_ok=True)  # empty: nothing written yet
    assert available_rounds(project) == [1, 2, 3]


def test_bad_round_names_the_rounds_on_disk(project):
    with pytest.raises(RoundNotFoundError) as info:
        round_summary(project, 7)
    assert isinstance(info.value, SelftrainError)
    assert str(info.value) == "no round 7; rounds on disk: 1, 2, 3"
    teacher = r"^no round 0 \(round 0 is the teacher.*rounds on disk: 1, 2, 3$"
    with pytest.raises(RoundNotFoundError, match=teacher):
        round_summary(project, 0)


def test_bad_round_in_an_empty_project(tmp_path):
    with pytest.raises(RoundNotFoundError, match=r"^no round 1; rounds on disk: none"):
        round_summary(ProjectPaths(tmp_path), 1)
    assert available_rounds(ProjectPaths(tmp_path)) == []
