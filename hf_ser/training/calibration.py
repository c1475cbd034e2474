"""The temperature a training run stores (fitted on its validation speakers), or the calibration it drops.

A model trained on from a calibrated one (``hf-ser finetune``) carries the old head's temperature and "uncertain"
threshold: each run either refits the temperature on validation speakers or resets both, and says which.
"""

from __future__ import annotations

import logging

import numpy as np

from ..confidence import (
    TEMPERATURE_RANGE,
    clip_scores,
    coverage_curve,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)
from ..models.ser.configuration_ser import drop_calibration
from .results import Calibration

logger = logging.getLogger("hf_ser.training")


def calibrate(model, val_logits: np.ndarray, val_labels: np.ndarray, test) -> Calibration:
    """Fit the temperature on the validation speakers' logits, store it in ``model.config``, measure ECE; a
    starting model's "uncertain" threshold, chosen for its own head's scores, is dropped with the old temperature."""
    temperature = fit_temperature(val_logits, val_labels)
    old_threshold = (drop_calibration(model.config) or (None, None))[1]
    model.config.temperature = temperature
    if old_threshold is not None:
        logger.warning(
            "the starting model's uncertain threshold %g was chosen for its own head's scores: dropped (the "
            "documented default applies)",
            old_threshold,
        )
    if not TEMPERATURE_RANGE[0] * 1.01 < temperature < TEMPERATURE_RANGE[1] * 0.99:
        accuracy = float(np.mean(np.argmax(val_logits, axis=1) == val_labels))
        logger.warning(
            "the temperature fitted on the validation clips, %.2f, sits at the edge of its search range (%g-%g): "
            "%d clips at %.0f %% accuracy are too few or too near chance (or always right) to fit it on; the scores "
            "are %s",
            temperature,
            *TEMPERATURE_RANGE,
            len(val_labels),
            100 * accuracy,
            "flattened towards uniform" if temperature > 1 else "sharpened towards 0 or 1",
        )
    ece = expected_calibration_error
    calibrated = softmax(test.predictions, temperature)
    confidence, correct = clip_scores(calibrated, test.label_ids)
    return Calibration(
        temperature=temperature,
        validation_ece_raw=ece(softmax(val_logits), val_labels),
        validation_ece=ece(softmax(val_logits, temperature), val_labels),
        test_ece_raw=ece(softmax(test.predictions), test.label_ids),
        test_ece=ece(calibrated, test.label_ids),
        test_coverage=coverage_curve(calibrated, test.label_ids),
        test_confidence=confidence,
        test_correct=correct,
        validation_nll_raw=negative_log_likelihood(val_logits, val_labels),
        validation_nll=negative_log_likelihood(val_logits, val_labels, temperature),
    )


def leave_uncalibrated(model) -> None:
    """No validation speakers to refit on: reset the temperature and threshold a starting model brought, fitted to
    its own head's logits (ser-general's 2.07 flattened a new head's scores while its card said "not calibrated")."""
    if dropped := drop_calibration(model.config):
        old_temperature, old_threshold = dropped
        logger.warning(
            "no validation speakers to fit a temperature on: the scores are left uncalibrated (temperature 1.0; "
            "the starting model's %.2f%s was fitted to its own head)",
            old_temperature,
            "" if old_threshold is None else f" and its uncertain threshold {old_threshold:g}",
        )
