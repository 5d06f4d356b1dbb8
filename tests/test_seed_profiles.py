"""The patients of the two source papers, in the synthetic world: their true risk responds to
what a clinician sees (Katsin 2024: a late, rising, CD4-dominant expansion; Meng 2025: grade 1
ICANS not improving on steroids)."""

from __future__ import annotations

import dataclasses

import pytest

from api.patient import parse_patient
from data.synthetic.parameters import GeneratorParameters
from data.synthetic.profiles import KATSIN, MENG, PROFILES, profile_true_risk


def test_a_cd4_dominant_expansion_raises_the_risk():
    """Same patient on day 10, CD8+ counts as high as CD4+ (no CD4 dominance): lower risk."""
    balanced = dataclasses.replace(KATSIN, cd8=dict(KATSIN.cd4))
    dominant = profile_true_risk(KATSIN, (10,))[10]
    assert dominant > 1.3 * profile_true_risk(balanced, (10,))[10]


def test_the_cd4_dominance_assumption_has_a_switch():
    params = GeneratorParameters()
    off = dataclasses.replace(
        params, icans=dataclasses.replace(params.icans, cd4_dominance_effect=0)
    )
    assert profile_true_risk(KATSIN, (10,), off)[10] < profile_true_risk(KATSIN, (10,), params)[10]


def test_a_late_rising_expansion_keeps_the_risk_up():
    """On day 10 a still-rising expansion (peak ahead) leaves more risk than the same counts
    already falling from an early peak."""
    early = dataclasses.replace(
        KATSIN, cd4={3: 30.0, 7: 20.0, 10: 8.0}, cd8={3: 0.4, 7: 0.3, 10: 0.1}
    )
    assert profile_true_risk(KATSIN, (10,))[10] > 2 * profile_true_risk(early, (10,))[10]


def test_grade_1_icans_on_steroids_at_the_seed_centre_carries_the_escalation_risk():
    """The seed centre starts steroids at grade 1 (day 11 here) and may escalate to intrathecal
    therapy within 48 h (Meng 2025: a median 12 h after onset), which is refractory ICANS by
    escalation (icans.steroids): the risk jumps on the start day. A grade 1 still there at 48 h
    without escalation is not refractory (persistence needs grade >= 2), so it falls again."""
    risk = profile_true_risk(MENG, (10, 11, 12, 13))
    assert risk[11] > 20 * risk[10]
    assert risk[13] < risk[12] / 5


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("day", [0, 5, 10, 13])
def test_profiles_are_valid_requests(profile, day):
    patient = parse_patient(profile.request(day))
    assert patient.day_since_infusion == day
