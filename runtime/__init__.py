"""The request path: the fitted risk model compiled into arrays, and one patient's assessment
from it."""
