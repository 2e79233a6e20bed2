"""Tiny random models built from a config, for fast offline tests: a Llama with a byte-level BPE
(and a chat template like SmolLM2's), and a T5 with a BPE that appends </s> like T5's."""
from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

from restlm.policies.seq2seq import Seq2SeqPolicy

SEQ2SEQ_TEMPLATE = "translate German to English: {text}"
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["Are the following two sentences paraphrases of each other?",
          "Sentence 1: the cat sat on the mat. Sentence 2: a cat was on the mat.",
          "Answer with 'Yes' or 'No'. Yes yes No no", "Answer: Yes", "Answer: No",
          "the dog ran in the park and the bird flew over the same tree"]


def tiny_tokenizer(chat: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level BPE (like SmolLM2's) trained on a few lines; no pad token on purpose."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(CORPUS * 5, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", bos_token="<|endoftext|>")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A random 2-layer, 32-wide Llama."""
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def save_tiny(folder: Path, chat: bool = True) -> Path:
    tok = tiny_tokenizer(chat)
    tiny_llama(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


SEQ2SEQ_SOURCES = ["die Katze sitzt", "ein Hund rennt im Park und der Vogel fliegt", "ja", "der Vogel fliegt", "nein"]
SEQ2SEQ_OUTPUTS = ["the cat sits", "a dog", "", "the bird flies over", "no"]
T5_CORPUS = SEQ2SEQ_SOURCES + SEQ2SEQ_OUTPUTS + ["translate German to English:", "the dog runs in the park and the bird flies"]


def tiny_t5_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE with T5's special ids (pad 0, eos 1, unk 2) that appends </s>."""
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(T5_CORPUS * 5, trainer)
    bpe.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    bpe.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_t5(vocab_size: int, seed: int = 0) -> T5ForConditionalGeneration:
    """A random 2+2-layer, 32-wide T5 without dropout, whose pad (= decoder start) embedding is small."""
    config = T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        # with tied embeddings a random decoder echoes its input token, so it would write the
        # start token forever; a trained T5 has long learned not to
        model.shared.weight[0] *= 0.01
    return model


def tiny_seq2seq_policy(seed: int = 0, batch_size: int = 2) -> Seq2SeqPolicy:
    tok = tiny_t5_tokenizer()
    return Seq2SeqPolicy(tiny_t5(len(tok), seed), tok, Accelerator(), prompt_template=SEQ2SEQ_TEMPLATE, max_new_tokens=8,
                         batch_size=batch_size)
