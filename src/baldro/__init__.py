"""baldro: machine unlearning for LLMs with BalDRO (Shao et al., arXiv 2601.09172)."""

__version__ = "0.1.0"
