#!/usr/bin/env python3
"""Greedy reference outputs of the bundled trained model, made with Hugging Face transformers.

Writes ``<model>/reference_greedy.json``: for each of PROMPTS (text)

* ``ids``: the tokenizer's ids of the prompt, with BOS, exactly as ``tokenizer(text)`` gives;
* ``generated_ids``: the greedy continuation of MAX_NEW_TOKENS (32) new tokens;
* ``generated_text`` (the continuation decoded with ``skip_special_tokens=True``) and
  ``full_text`` (prompt + continuation decoded the same way);
* ``eos_step``: the 0-based column where the sequence emitted EOS (null if it did not);
* ``min_top1_top2_gap``: the smallest fp32 top-1 minus top-2 logit gap over its greedy steps
  (how close a runtime computing in fp16 can come to flipping a choice).

Conventions: the same as ``tests/reference/make_fixtures.py``.  The model is loaded from the
saved folder with ``dtype=torch.float32`` and ``attn_implementation="eager"`` (the fp16 weights
upcast).  The 4 prompts form one batch, LEFT-padded with the pad id (config ``pad_token_id``, 0)
with an attention mask that is 0 on the pads (both stored, as ``input_ids`` / ``attention_mask``),
and ``model.generate(input_ids, attention_mask=mask, do_sample=False,
max_new_tokens=32, eos_token_id=EOS, pad_token_id=PAD)[:, T:]`` is the continuation; after a
sequence emits EOS it is filled with PAD (HF semantics), and if every sequence finished early the
result is right-padded with PAD to 32 columns.  transformers 5.x ``generate()`` uses position ids
``pos = mask.cumsum(-1) - 1`` with pads set to 0 (asserted against its own helper).  The batch's
continuation is checked against an independent no-KV-cache greedy decode (full forward each step
with those position ids), and each prompt is also decoded alone (no padding); whether those agree
is recorded (``unpadded_generate_agrees``).

    python3 examples/train/make_reference_outputs.py [--model examples/models/austen-melville-6m]

CPU only, a few seconds, deterministic for a given torch / transformers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: E402

PROMPTS = [
    "Once upon a time",
    "The old man",
    "In the morning",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune",
]
MAX_NEW_TOKENS = 32
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "austen-melville-6m"


def gen_position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Position ids exactly as transformers 5.x generate() builds them."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 0)


@torch.no_grad()
def greedy_no_cache(model, ids, mask, steps):
    cur_ids, cur_mask = ids, mask
    toks, logits = [], []
    for _ in range(steps):
        out = model(input_ids=cur_ids, attention_mask=cur_mask, position_ids=gen_position_ids(cur_mask), use_cache=False)
        lg = out.logits[:, -1, :].float()
        nxt = lg.argmax(-1)
        toks.append(nxt)
        logits.append(lg)
        cur_ids = torch.cat([cur_ids, nxt[:, None]], dim=1)
        cur_mask = torch.cat([cur_mask, torch.ones_like(nxt)[:, None]], dim=1)
    return torch.stack(toks, dim=1), torch.stack(logits, dim=0)


@torch.no_grad()
def hf_generate(model, ids, mask, eos, pad):
    return model.generate(
        ids, attention_mask=mask, do_sample=False, max_new_tokens=MAX_NEW_TOKENS, eos_token_id=eos, pad_token_id=pad
    )


def pad_to(gen: torch.Tensor, n: int, pad: int) -> torch.Tensor:
    if gen.shape[1] < n:
        gen = torch.cat([gen, torch.full((gen.shape[0], n - gen.shape[1]), pad, dtype=gen.dtype)], dim=1)
    return gen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=None, help="default: <model>/reference_greedy.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    path: Path = args.model
    out = args.out or path / "reference_greedy.json"

    tok = AutoTokenizer.from_pretrained(str(path))
    model = LlamaForCausalLM.from_pretrained(str(path), dtype=torch.float32, attn_implementation="eager").eval()
    assert model.dtype == torch.float32 and model.config._attn_implementation == "eager"
    cfg = model.config
    pad, bos, eos = cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id
    assert (pad, bos, eos) == (0, 1, 2), (pad, bos, eos)
    disk_dtype = json.loads((path / "config.json").read_text()).get("dtype")

    prompt_ids = [tok(p).input_ids for p in PROMPTS]
    for p, ids in zip(PROMPTS, prompt_ids):
        assert ids[0] == bos and bos not in ids[1:] and eos not in ids, (p, ids)
        assert tok.decode(ids, skip_special_tokens=True) == p, p
    B, T = len(PROMPTS), max(len(x) for x in prompt_ids)
    ids = torch.full((B, T), pad, dtype=torch.int64)
    mask = torch.zeros((B, T), dtype=torch.int64)
    for b, x in enumerate(prompt_ids):
        ids[b, T - len(x) :] = torch.tensor(x)
        mask[b, T - len(x) :] = 1

    hf_pos = getattr(model, "_prepare_position_ids_for_generation", None)
    if hf_pos is not None:
        assert torch.equal(hf_pos(ids, {"attention_mask": mask}), gen_position_ids(mask)), "position-id convention"

    full = hf_generate(model, ids, mask, eos, pad)
    assert torch.equal(full[:, :T], ids)
    generated = pad_to(full[:, T:], MAX_NEW_TOKENS, pad)

    # independent check: no KV cache, full forward each step; HF semantics after EOS
    cont, step_logits = greedy_no_cache(model, ids, mask, MAX_NEW_TOKENS)
    top2 = step_logits.topk(2, dim=-1).values
    gaps = top2[..., 0] - top2[..., 1]  # [steps, B]
    expected = cont.clone()
    eos_steps = []
    for b in range(B):
        hit = (cont[b] == eos).nonzero()
        s = int(hit[0]) if len(hit) else None
        eos_steps.append(s)
        if s is not None:
            expected[b, s + 1 :] = pad
    assert torch.equal(generated, expected), f"generate() differs from the no-cache greedy decode:\n{generated}\n{expected}"

    entries = []
    for b, (p, x) in enumerate(zip(PROMPTS, prompt_ids)):
        g = generated[b].tolist()
        s = eos_steps[b]
        live = MAX_NEW_TOKENS if s is None else s + 1
        alone = hf_generate(model, torch.tensor([x]), torch.ones((1, len(x)), dtype=torch.int64), eos, pad)
        alone = pad_to(alone[:, len(x) :], MAX_NEW_TOKENS, pad)[0].tolist()
        entries.append(
            dict(
                text=p,
                ids=x,
                generated_ids=g,
                generated_text=tok.decode(g[:live], skip_special_tokens=True),
                full_text=tok.decode(x + g[:live], skip_special_tokens=True),
                eos_step=s,
                min_top1_top2_gap=round(float(gaps[:live, b].min()), 6),
                unpadded_generate_agrees=alone == g,
            )
        )

    doc = dict(
        generator="examples/train/make_reference_outputs.py",
        model=path.name,
        date=datetime.date.today().isoformat(),
        versions=dict(torch=torch.__version__, transformers=transformers.__version__, tokenizers=tokenizers.__version__),
        dtype_on_disk=disk_dtype,
        computed_in="float32 (weights upcast), attn_implementation=eager, CPU",
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        max_new_tokens=MAX_NEW_TOKENS,
        conventions=(
            "prompts tokenized with tokenizer(text) (BOS prepended by the post-processor); one batch, "
            "LEFT-padded with pad_token_id, attention_mask 0 on pads; generate(do_sample=False, "
            "max_new_tokens=32, eos_token_id, pad_token_id)[:, T:]; after EOS the row is PAD; "
            "position ids = cumsum(mask)-1 with pads 0 (transformers 5.x generate)"
        ),
        input_ids=ids.tolist(),
        attention_mask=mask.tolist(),
        min_top1_top2_gap=round(float(min(e["min_top1_top2_gap"] for e in entries)), 6),
        prompts=entries,
    )
    text = json.dumps(doc, indent=1)
    # one line per list of numbers (ids, masks), for readable diffs
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]", lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]", text)
    assert json.loads(text) == doc
    out.write_text(text + "\n", encoding="utf-8")
    for e in entries:
        print(f"{e['full_text']!r}  (eos_step {e['eos_step']}, min gap {e['min_top1_top2_gap']:.3f}, "
              f"unpadded agrees {e['unpadded_generate_agrees']})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
