"""Tiny random-weight causal LMs for tests and CI smoke benchmarks (nothing is downloaded).

The tokenizer is a word-level `tokenizers` model ("<unk>", "<eos>", "w0".."wN") with a minimal
chat template, so loaders, chat templates and the CLI all run for real on a model of a few
thousand parameters. Weights come from a seeded initialiser, so a folder is reproducible.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_model(folder: Path, vocab_words: int = 60, seed: int = 0, layers: int = 2,
                     hidden: int = 32, model_vocab: int | None = None) -> Path:
    """Save a tiny Llama and its tokenizer to `folder` and return it.

    `model_vocab` smaller than the tokenizer makes a deliberately broken model (ids past it crash
    a forward pass), for testing how a run survives a failing prompt.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging

    logging.disable_progress_bar()
    vocab = {"<unk>": 0, "<eos>": 1, **{f"w{i}": i + 2 for i in range(vocab_words)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    config = LlamaConfig(
        vocab_size=model_vocab or len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, initializer_range=0.5, eos_token_id=1, bos_token_id=None,
        pad_token_id=None, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = 1
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
