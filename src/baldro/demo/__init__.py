"""The end-to-end demo on the embedded benchmark (``baldro demo``) and the method presets it shares with sweeps."""
