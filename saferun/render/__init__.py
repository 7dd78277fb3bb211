"""Renderers: pure functions from a RunPlan to what an engine or a person reads."""
