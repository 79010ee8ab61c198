"""One prompt under one contender -> one `PromptRecord` (the schema lives in results.py).

`run_prompt` decodes every turn of a prompt (earlier answers fed back, MT-Bench style) and sums
the engine's step records into the prompt's counts and timings; `failed_record` stands in for a
prompt that raised, so a run keeps going and says what failed.
"""

from __future__ import annotations

from typing import Any

from specbench_cli.config import RunConfig
from specbench_cli.contenders import Contender
from specbench_cli.memory import PeakMemory
from specbench_cli.prompts import Message, encode, prompt_seed
from specbench_cli.results import PromptRecord
from specbench_cli.suite_records import Prompt


def run_prompt(c: Contender, suite: str, prompt: Prompt, tokenizer: Any, cfg: RunConfig,
               max_new: int) -> PromptRecord:  # fmt: skip
    """All turns of one prompt under one contender, with that contender's peak memory."""
    messages: list[Message] = []
    record: PromptRecord = {
        "suite": suite, "prompt_id": prompt.id, "category": prompt.category or suite,
        "strategy": c.label, "drafter": c.drafter, "status": "ok", "error": None,
        "output_token_ids": [], "output_text": [], "new_tokens": 0, "wall_s": 0.0,
        "draft_s": 0.0, "verify_s": 0.0, "ttft_s": 0.0, "target_forward_passes": 0,
        "accepted_lengths": [], "drafted_lengths": [], "kl_sum": 0.0, "tv_sum": 0.0,
        "drafted_positions": 0, "prefill_s": 0.0,
    }
    with PeakMemory(c.engine.device) as peak:
        for turn, text in enumerate(prompt.turns):
            messages.append({"role": "user", "content": text})
            ids = encode(tokenizer, messages, cfg.chat_template)
            seed = prompt_seed(cfg.seed, suite, prompt.id, turn)
            out: list[int] = []
            for step in c.engine.generate(ids, max_new, seed):
                record["wall_s"] += step.step_s
                if step.prefill:
                    record["prefill_s"] += step.step_s
                    if turn == 0:
                        record["ttft_s"] = step.step_s
                else:
                    record["accepted_lengths"].append(step.accepted)
                    record["drafted_lengths"].append(step.drafted)
                record["target_forward_passes"] += 1
                record["draft_s"] += step.draft_s
                record["verify_s"] += step.target_s + step.verify_s
                record["kl_sum"] += step.kl
                record["tv_sum"] += step.tv
                record["drafted_positions"] += step.audited
                out.extend(step.tokens)
            answer = tokenizer.decode(out, skip_special_tokens=True)
            messages.append({"role": "assistant", "content": answer})
            record["output_token_ids"].extend(out)
            record["output_text"].append(answer)
            record["new_tokens"] += len(out)
    record["peak_memory_bytes"] = peak.bytes
    return record


def failed_record(c: Contender, suite: str, prompt: Prompt, exc: BaseException) -> PromptRecord:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {"suite": suite, "prompt_id": prompt.id, "category": prompt.category or suite,
            "strategy": c.label, "drafter": c.drafter, "status": "failed",
            "error": f"{type(exc).__name__}: {message}"[:500]}
