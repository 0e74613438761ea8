"""baldro: machine unlearning for LLMs with BalDRO (Shao et al., arXiv 2601.09172)."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Lazy exports, so ``import baldro`` stays light: ``baldro.UnlearnTrainer`` imports transformers on first use."""
    if name == "UnlearnTrainer":
        from baldro.training.trainer import UnlearnTrainer

        return UnlearnTrainer
    raise AttributeError(f"module 'baldro' has no attribute {name!r}")
