"""Policy kinds behind one interface (base.Policy): classifier, causal LM, seq2seq LM."""
from restlm.policies.base import Policy, TrainItem

__all__ = ["CausalLMPolicy", "ClassifierPolicy", "GenerativePolicy", "Policy", "Seq2SeqPolicy", "TrainItem"]


def __getattr__(name):
    # each kind imports transformers pieces of its own; load a kind only when it is asked for
    if name == "ClassifierPolicy":
        from restlm.policies.classifier import ClassifierPolicy

        return ClassifierPolicy
    if name == "GenerativePolicy":
        from restlm.policies.generative import GenerativePolicy

        return GenerativePolicy
    if name == "CausalLMPolicy":
        from restlm.policies.causal import CausalLMPolicy

        return CausalLMPolicy
    if name == "Seq2SeqPolicy":
        from restlm.policies.seq2seq import Seq2SeqPolicy

        return Seq2SeqPolicy
    raise AttributeError(name)
