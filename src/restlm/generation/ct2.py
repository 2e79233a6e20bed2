"""The `ctranslate2` engine: CTranslate2 (OpenNMT) runs the policy's weights, converted, in int8 or
float32, on CPU or CUDA: Llama, Mistral, Gemma, Qwen, GPT-2 (causal) and T5, Marian, BART (seq2seq).

The policy's weights are converted (LoRA merged first) whenever they changed since the last call,
and that cost is counted in `sync_seconds`. Sampling draws from softmax(logits / T) in the top_p
nucleus (`sampling_topk=0`: no top-k cut); greedy is `sampling_topk=1`. Batches are sized by tokens
(`generation.batch_tokens`) and sorted by length inside CTranslate2. CTranslate2 seeds its workers
when a model is loaded, so each call seeds and loads it: the same seed, inputs, weights, thread
count and hardware give the same tokens, but not the same tokens as the `hf` engine.
"""
from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path

import torch

from restlm.data.examples import Example
from restlm.errors import ConfigError
from restlm.generation.base import Engine, Sampling, weights_version
from restlm.generation.registry import register_engine

CHUNK = 256  # prompts per call into CTranslate2 (which sorts and batches each call by tokens)
BATCH_TOKENS = 4096  # generation.batch_tokens' default here: SmolLM2 sampled 145 tokens/s at 16384, 228 at 4096 (session 15)


def require_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError("generation.engine", "'ctranslate2' is not installed: pip install ctranslate2, "
                          "or set generation.engine=hf") from None
    return ctranslate2


@register_engine("ctranslate2")
class CTranslate2Engine(Engine):
    def __init__(self, policy, options):
        super().__init__(policy, options)
        self.ct2 = require_ctranslate2()
        self.device = "cuda" if policy.accelerator.device.type == "cuda" else "cpu"
        self.compute_type = options.compute_type if options.compute_type != "auto" else (
            "int8_float16" if self.device == "cuda" else "int8")
        self._folder = Path(tempfile.mkdtemp(prefix="restlm-ct2-"))
        self._version = None

    def __del__(self):
        shutil.rmtree(getattr(self, "_folder", ""), ignore_errors=True)

    def describe(self) -> str:
        return f"ctranslate2/{self.compute_type}/{self.device}"

    def sync(self) -> None:
        """Convert the policy's current weights, unless they are the ones converted last."""
        version = weights_version(self.policy.unwrapped)
        if version == self._version:
            return
        from restlm.policies.lora import is_lora, merged_for_save

        start = time.perf_counter()
        own = self.policy.unwrapped
        # a copy (LoRA merged into it): the converter takes modules out of the model it converts
        model = merged_for_save(own) if is_lora(own) else copy.deepcopy(own)
        source, converted = self._folder / "hf", self._folder / "ct2"
        model.config.save_pretrained(source)  # the converter reads the config from a folder, the weights from memory
        try:
            with torch.no_grad():
                _from_memory(source, model, self.policy.tokenizer).convert(str(converted), quantization=self.compute_type,
                                                                           force=True)
        except (ValueError, NotImplementedError, KeyError) as error:  # an architecture CTranslate2 lacks
            raise ConfigError("generation.engine", f"ctranslate2 cannot convert this model "
                              f"({type(model).__name__}): {error}; set generation.engine=hf") from None
        self._version = version
        self.sync_seconds += time.perf_counter() - start
        self.syncs += 1

    def _load(self, seed: int):
        self.ct2.set_random_seed(seed)  # read by the workers a model starts, so before loading it
        kind = self.ct2.Translator if self.policy.kind == "seq2seq" else self.ct2.Generator
        return kind(str(self._folder / "ct2"), device=self.device, compute_type=self.compute_type,
                    intra_threads=torch.get_num_threads() if self.device == "cpu" else 0)

    def generate(self, examples: list[Example], sampling: Sampling, seed: int, sort_by_length: bool = True,
                 progress=None) -> list[list[list[int]]]:
        if not examples:
            return []
        self.sync()
        policy = self.policy
        model = self._load(seed % 2**31)
        tokens = [policy.tokenizer.convert_ids_to_tokens(policy.prompt_ids(e)) for e in examples]
        order = sorted(range(len(tokens)), key=lambda i: len(tokens[i])) if sort_by_length else list(range(len(tokens)))
        tokens = [tokens[i] for i in order]  # chunks of similar lengths
        eos = set(policy.eos_ids)
        options = {"max_batch_size": self.options.batch_tokens or BATCH_TOKENS, "batch_type": "tokens", "beam_size": 1,
                   "num_hypotheses": sampling.n, "end_token": list(policy.eos_ids), "return_end_token": True,
                   "return_scores": True,  # the mean log-prob of each sequence's tokens at temperature 1
                   "sampling_topk": 1 if sampling.greedy else 0, "sampling_topp": 1.0 if sampling.greedy else sampling.top_p,
                   "sampling_temperature": 1.0 if sampling.greedy else sampling.temperature}
        rows, scores = [], []
        for start in range(0, len(tokens), CHUNK):  # chunks for the progress bar; one model, so one random stream
            part = tokens[start : start + CHUNK]
            if policy.kind == "seq2seq":
                results = model.translate_batch(part, max_decoding_length=sampling.max_new_tokens, **options)
                # a translation result holds token strings
                done = [[_until_eos(policy.tokenizer.convert_tokens_to_ids(h), eos) for h in r.hypotheses] for r in results]
            else:
                results = model.generate_batch(part, max_length=sampling.max_new_tokens, include_prompt_in_result=False,
                                               **options)
                done = [[_until_eos(ids, eos) for ids in r.sequences_ids] for r in results]
            rows += done
            scores += [list(r.scores) for r in results]
            if progress:
                progress(len(part), sum(len(ids) for per in done for ids in per))
        by_input: list = [None] * len(rows)
        self.last_mean_log_probs = [None] * len(rows)
        for position, i in enumerate(order):
            by_input[i], self.last_mean_log_probs[i] = rows[position], scores[position]
        return by_input


def _from_memory(folder: Path, model, tokenizer):
    """CTranslate2's Transformers converter, reading the policy's model and tokenizer as they are in
    memory (no save and reload of the weights: the sync's cost is the conversion itself)."""
    from ctranslate2.converters import TransformersConverter

    class FromMemory(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            return model

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return tokenizer

    return FromMemory(str(folder))


def _until_eos(ids: list[int], eos: set[int]) -> list[int]:
    for i, token in enumerate(ids):
        if token in eos:
            return ids[: i + 1]
    return list(ids)
