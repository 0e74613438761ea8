"""Data layer: TOFU and MUSE loaders, prompt formatting, datasets and collators, the embedded benchmark."""
