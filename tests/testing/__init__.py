"""Helpers shared by every test suite (tests/, tests/stress/): import them from here."""
