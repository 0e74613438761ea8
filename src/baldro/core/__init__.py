"""Pure-PyTorch core: per-sample sequence statistics and the component registry."""
