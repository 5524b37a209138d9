"""The support check's fit (evals/calibrate_judge.py): closeness never counts against support."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "evals" / "calibrate_judge.py"


@pytest.fixture(scope="module")
def calibrate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calibrate_judge_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pairs(similarity_of_true: float, similarity_of_false: float) -> list[dict[str, Any]]:
    """Labelled pairs whose verdicts mostly agree with the label, and whose similarity does or not."""
    rows = []
    for n in range(40):
        label = n % 2 == 0
        yes = (0.8 if n % 8 else 0.3) if label else (0.2 if n % 8 != 1 else 0.7)
        similarity = (similarity_of_true if label else similarity_of_false) + (n % 5) * 0.01
        rows.append({"id": f"p{n}", "kind": "k", "split": "calibration" if n < 30 else "heldout",
                     "label": label, "yes": yes, "similarity": similarity})
    return rows


def test_similarity_that_tracks_support_keeps_its_weight(calibrate: ModuleType) -> None:
    fitted = calibrate.fit_support(pairs(0.9, 0.3))
    assert fitted["coef_similarity"] > 0
    assert fitted["coef_yes"] > 0


def test_a_negative_similarity_weight_is_dropped(calibrate: ModuleType) -> None:
    # Claims that reuse the passage's words but reverse its relation: closer text, yet false.
    fitted = calibrate.fit_support(pairs(0.3, 0.9))
    assert fitted["coef_similarity"] == 0.0
    assert fitted["coef_yes"] > 0
    assert fitted["measured"]["heldout"]["true_positive_rate"] > 0.5
