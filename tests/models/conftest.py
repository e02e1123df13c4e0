"""Shared data for the model tests: the CDNOW calibration summary of the BG/NBD paper."""

from __future__ import annotations

import warnings

import pytest

import patron


@pytest.fixture(scope="session")
def cdnow_summary():
    """CDNOW 1/10th sample, weekly, calibration 1997-01-01 to 1997-09-30 (2,357 customers).

    The data set and period of Fader, Hardie & Lee (2005), Marketing Science 24(2).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return patron.summarize(patron.datasets.cdnow(sample=True), as_of="1997-09-30")
