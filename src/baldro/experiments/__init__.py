"""Experiments: the stage runner, the demo, the sweep, the method and config presets, and the shared
"unlearn then evaluate" step (``step.py``) they all run."""
