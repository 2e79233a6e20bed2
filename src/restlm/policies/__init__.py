"""Policy kinds behind one interface (base.Policy)."""
from restlm.policies.base import Policy, TrainItem

__all__ = ["Policy", "TrainItem"]
