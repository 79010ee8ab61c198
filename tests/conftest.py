"""Shared fixtures: tiny random-weight causal LMs built from a config, saved as real model folders.

Nothing is downloaded: the tokenizer is a word-level `tokenizers` model built here, with a small
chat template, so the CLI, the loaders and the chat-template path all run for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPECBENCH = [sys.executable, "-m", "specbench_cli"]


def build_tiny_model(folder: Path, vocab_words: int = 60, seed: int = 0, layers: int = 2,
                     hidden: int = 32) -> Path:
    """Save a tiny Llama with a word-level tokenizer ("w0".."wN", "<unk>", "<eos>") to folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<eos>": 1, **{f"w{i}": i + 2 for i in range(vocab_words)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
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


@pytest.fixture(scope="session")
def tiny_target(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_target"), seed=0)


@pytest.fixture(scope="session")
def tiny_draft(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_draft"), seed=1, layers=1, hidden=16)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real `specbench` CLI in a subprocess (the installed package, no mocks)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([*SPECBENCH, *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
