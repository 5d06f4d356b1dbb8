"""The horizons of a risk (``icans.horizons``): which event days fall in each window."""

from __future__ import annotations

import numpy as np
import pytest

from icans.errors import InvalidInputError
from icans.horizons import HORIZON_NAMES, horizon, horizon_events

NAN = np.nan


@pytest.mark.parametrize(
    ("landmark", "event_day", "expected"),
    [
        # (72 hours, 7 days, day 28), written out by hand from the windows L+1..L+3, L+1..L+7
        (1, 2.0, (True, True, True)),  # the next day
        (1, 4.0, (True, True, True)),  # day L+3: the last day of the 72 hours
        (1, 5.0, (False, True, True)),
        (1, 8.0, (False, True, True)),  # day L+7
        (1, 9.0, (False, False, True)),
        (0, 28.0, (False, False, True)),
        (14, NAN, (False, False, False)),  # no event (or a competing death before it)
        (5, 5.0, (False, False, False)),  # the prediction day itself is not ahead
        (26, 28.0, (True, True, True)),  # the 72 hours end with follow-up, on day 28
        (27, 28.0, (True, True, True)),  # on day 27 the three horizons are one day
    ],
)
def test_the_event_in_each_window(landmark, event_day, expected):
    events = horizon_events(np.array([event_day]), landmark)
    assert tuple(bool(events[name][0]) for name in HORIZON_NAMES) == expected


def test_windows_are_nested_on_every_row():
    rng = np.random.default_rng(0)
    landmark = rng.integers(0, 28, 5000)
    event_day = np.where(rng.random(5000) < 0.3, rng.integers(1, 29, 5000), NAN)
    e = horizon_events(event_day, landmark)
    assert np.all(e["72h"] <= e["7d"]) and np.all(e["7d"] <= e["day28"])
    assert e["72h"].any() and (e["7d"] & ~e["72h"]).any() and (e["day28"] & ~e["7d"]).any()


def test_window_ends():
    assert horizon("72h").end_day(np.array([0, 25, 26, 27])).tolist() == [3, 28, 28, 28]
    assert horizon("day28").end_day(np.array([0, 14])).tolist() == [28, 28]


def test_an_unknown_horizon_is_refused_naming_the_known_ones():
    with pytest.raises(InvalidInputError) as caught:
        horizon("24h")
    message = str(caught.value)
    assert "horizon" in message and "24h" in message and "72h, 7d, day28" in message
