"""The API boundary: what a caller sends (the contract's patient) and what the JSON API answers."""
