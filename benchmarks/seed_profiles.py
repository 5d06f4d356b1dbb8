"""The two patients of the source papers: their true risk and a model's, day by day.

Run from the repository root after ``make run`` (or with any registered model)::

    uv run python benchmarks/seed_profiles.py
    uv run python benchmarks/seed_profiles.py --model-uri models:/icans-risk/3 \\
        --tracking-uri sqlite:///mlflow.db

For the Katsin-like and the Meng-like profile (:mod:`data.synthetic.profiles`, what was guessed
is printed) it prints, on days 0, 3, 5, 7, 10 and 13, the generator's exact true risk (under the
profile's case mix, i.e. its centre's steroid rule) and the model's risk for the same request,
with the model's warnings (inputs outside the training range, say). Not a speed benchmark: a
record of what the world and the model say about the patients the product must not miss.
"""

from __future__ import annotations

import argparse

from bench_support import quiet_mlflow

DAYS = (0, 3, 5, 7, 10, 13)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", default=None, help="default: the settings' model URI")
    parser.add_argument("--tracking-uri", default=None, help="default: the settings' store")
    args = parser.parse_args()

    from api.patient import parse_patient
    from data.synthetic.profiles import PROFILES, profile_true_risk
    from icans.config import Settings
    from registry.store import load_registered
    from runtime.assessor import Assessor

    quiet_mlflow()
    overrides = {"tracking_uri": args.tracking_uri} if args.tracking_uri else {}
    settings = Settings(**overrides)
    uri = args.model_uri or settings.model_uri
    registered = load_registered(uri, settings)
    assessor = Assessor(registered.model)
    print(f"model {uri} (version {registered.ref.version})")
    for profile in PROFILES:
        print(f"\n{profile.name} ({profile.source}; case mix {profile.case_mix})")
        print("guessed: " + "; ".join(profile.guessed))
        truth = profile_true_risk(profile, DAYS)
        print("day | true risk | model risk (95% interval) | warnings")
        for day in DAYS:
            a = assessor.assess([parse_patient(profile.request(day))])[0]
            low, high = a.interval or (float("nan"), float("nan"))
            warnings = "; ".join(a.warnings) or "-"
            print(
                f"{day:>3} | {truth[day]:9.4f} | {a.probability:.4f} ({low:.4f}-{high:.4f}) | "
                f"{warnings}"
            )


if __name__ == "__main__":
    main()
