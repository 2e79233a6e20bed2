"""restlm: Reinforced Self-Training (ReST) and RLHF for small language models."""

__version__ = "0.1.0"
