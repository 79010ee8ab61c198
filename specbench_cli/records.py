"""A group of prompts under one contender -> one `PromptRecord` per prompt (the schema lives in
results.py).

`run_group` decodes a group of prompts together, turn by turn: turn t of every prompt that has
one forms one batch (earlier answers fed back, MT-Bench style), and each prompt's record sums the
engine's step records of its own row. A group of one is the unbatched run. `failed_record` stands
in for a prompt that raised, so a run keeps going and says what failed.

Timing at batch N: a row's `wall_s` is its own latency (the steps of its batch until it
finished, summed over turns); `batch_share_s` is its share of its batches' wall time (each
turn's batch wall time split evenly among the rows decoded in it), so the shares of a group sum
to the group's wall time and throughput is tokens over shares.
"""

from __future__ import annotations

from typing import Any

from specbench_cli.config import RunConfig
from specbench_cli.contenders import Contender
from specbench_cli.engine import StepRecord
from specbench_cli.memory import PeakMemory
from specbench_cli.prompts import Message, encode, prompt_seed
from specbench_cli.results import PromptRecord, record_error
from specbench_cli.suite_records import Prompt


def _new_record(c: Contender, suite: str, prompt: Prompt, cfg: RunConfig, max_new: int,
                batch_index: int, batch_rows: int) -> PromptRecord:  # fmt: skip
    return {
        "suite": suite, "prompt_id": prompt.id, "category": prompt.category or suite,
        "strategy": c.label, "drafter": c.drafter, "status": "ok", "error": None,
        "batch_size": cfg.batch_size, "batch_index": batch_index, "batch_rows": batch_rows,
        "output_token_ids": [], "output_text": [], "new_tokens": 0, "prompt_tokens": 0,
        "max_new_tokens": max_new, "truncated": False, "wall_s": 0.0, "batch_share_s": 0.0,
        "draft_s": 0.0, "verify_s": 0.0, "ttft_s": 0.0, "target_forward_passes": 0,
        "accepted_lengths": [], "drafted_lengths": [], "drafted_nodes": [], "kl_sum": 0.0,
        "tv_sum": 0.0, "drafted_positions": 0, "turns": [], "prefill_s": 0.0,
    }


def _add_step(record: PromptRecord, step: StepRecord, turn: int) -> None:
    record["wall_s"] += step.step_s
    if step.prefill:
        record["prefill_s"] += step.step_s
        if turn == 0:
            record["ttft_s"] = step.step_s
    else:
        record["accepted_lengths"].append(step.accepted)
        record["drafted_lengths"].append(step.drafted)
        # tree steps say how many nodes they verified; a chain's nodes are its drafts
        record["drafted_nodes"].append(getattr(step, "nodes", step.drafted))
    record["target_forward_passes"] += 1
    record["draft_s"] += step.draft_s
    record["verify_s"] += step.target_s + step.verify_s
    record["kl_sum"] += step.kl
    record["tv_sum"] += step.tv
    record["drafted_positions"] += step.audited


def run_group(c: Contender, suite: str, prompts: list[Prompt], tokenizer: Any, cfg: RunConfig,
              max_new: int, batch_index: int = 0) -> list[PromptRecord]:  # fmt: skip
    """All turns of `prompts` under one contender, decoded as one batch per turn, with that
    contender's peak memory; records in the order of `prompts`."""
    records = [_new_record(c, suite, p, cfg, max_new, batch_index, len(prompts))
               for p in prompts]  # fmt: skip
    conversations: list[list[Message]] = [[] for _ in prompts]
    with PeakMemory(c.engine.device) as peak:
        for turn in range(max(len(p.turns) for p in prompts)):
            rows = [i for i, p in enumerate(prompts) if turn < len(p.turns)]
            for i in rows:
                conversations[i].append({"role": "user", "content": prompts[i].turns[turn]})
            ids = [encode(tokenizer, conversations[i], cfg.chat_template) for i in rows]
            seeds = [prompt_seed(cfg.seed, suite, prompts[i].id, turn) for i in rows]
            outputs: list[list[int]] = [[] for _ in rows]
            timings = [{"wall_s": 0.0, "ttft_s": 0.0} for _ in rows]
            batch_wall = 0.0
            for steps in c.engine.generate_batch(ids, max_new, seeds):
                for j, step in steps.items():
                    _add_step(records[rows[j]], step, turn)
                    timings[j]["wall_s"] += step.step_s
                    if step.prefill:
                        timings[j]["ttft_s"] = step.step_s
                    outputs[j].extend(step.tokens)
                batch_wall += next(iter(steps.values())).step_s
            for j, (i, out) in enumerate(zip(rows, outputs, strict=True)):
                record = records[i]
                answer = tokenizer.decode(out, skip_special_tokens=True)
                conversations[i].append({"role": "assistant", "content": answer})
                truncated = len(out) >= max_new and out[-1] not in c.engine.eos_ids
                record["turns"].append({"prompt_tokens": len(ids[j]), "new_tokens": len(out),
                                        "truncated": truncated, **timings[j]})  # fmt: skip
                record["output_token_ids"].extend(out)
                record["output_text"].append(answer)
                record["new_tokens"] += len(out)
                record["prompt_tokens"] += len(ids[j])
                record["truncated"] |= truncated
                record["batch_share_s"] += batch_wall / len(rows)
    for record in records:
        record["peak_memory_bytes"] = peak.bytes
    return records


def failed_record(c: Contender, suite: str, prompt: Prompt, exc: BaseException,
                  batch_size: int = 1) -> PromptRecord:  # fmt: skip
    return {"suite": suite, "prompt_id": prompt.id, "category": prompt.category or suite,
            "strategy": c.label, "drafter": c.drafter, "status": "failed",
            "batch_size": batch_size, "error": record_error(exc)}
