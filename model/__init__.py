"""The risk model: the estimator shipped as one fitted object, its parts and its explanations."""

import os

# xgboost uses OpenMP; its default busy-wait policy makes two threads crawl (seen: 0.4 s -> 18 s
# per fit) whenever another process holds one of the machine's two cores. Passive waiting
# costs nothing when the cores are free. Must be set before xgboost starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
