"""Helpers shared by the tests: running controllers and OVS bridges."""
