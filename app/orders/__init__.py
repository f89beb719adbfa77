"""Orders: what was sold, to whom, for how much, and where it stands."""
