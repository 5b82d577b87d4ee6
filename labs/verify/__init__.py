"""Verification over SSH: the lesson's checks, derived from the outputs, run on every host."""
