"""Calibration of a classifier: expected calibration error before and after temperature scaling.

The temperature is fitted on the validation split (minimum negative log-likelihood) and scored on
the test split, so the "after" number is honest; the model keeps it (``GraftModel.set_temperature``,
saved in its task spec) and every later prediction uses it. Accuracy never changes: dividing the
logits by one positive number keeps their order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graft.evaluate.noise import expected_calibration_error, fit_temperature, scale_temperature

if TYPE_CHECKING:
    from graft.data.base import Dataset
    from graft.model import GraftModel


def calibrate(model: GraftModel, dataset: Dataset) -> dict[str, float] | None:
    """Fit the temperature on ``val``, set it on ``model``; ECE on ``test`` before and after.

    Returns None (model unchanged) when the model is not a classifier or a split is missing.
    """
    if model.task_spec.kind != "classification" or dataset.test is None or not len(dataset.val):
        return None
    if not len(dataset.test):
        return None
    model.set_temperature(1.0)
    val = model.samples_for(dataset, split="val")
    test = model.samples_for(dataset)
    val_probs, test_probs = model.predict_outputs(val), model.predict_outputs(test)
    temperature = fit_temperature(val_probs, val.targets)
    model.set_temperature(temperature)
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(test_probs, test.targets),
        "ece_after": expected_calibration_error(
            scale_temperature(test_probs, temperature), test.targets
        ),
    }


def calibration_text(arm: str, result: dict[str, float]) -> str:
    """One line for the terminal and the report."""
    return (
        f"Calibration of {arm} (test): expected calibration error {result['ece_before']:.3f}, "
        f"{result['ece_after']:.3f} after temperature scaling (T = {result['temperature']:.2f}, "
        "fitted on validation; the model keeps it)."
    )
