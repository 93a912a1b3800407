#!/usr/bin/env python3
"""Train the small real LLaMA model that zinc bundles (examples/models/austen-melville-6m).

What it does, start to finish, CPU only and offline:

1. Corpus.  Exports the full texts of Jane Austen's six novels (Debian package
   ``r-cran-janeaustenr``) and Herman Melville's *Moby-Dick* (the ``mobydick`` data set
   of Debian package ``r-cran-tokenizers``) with ``Rscript``.  All seven books are
   public domain; both packages are MIT licensed (see the model's README.md).
   Cleans them: drops the Project Gutenberg header/footer and Moby-Dick's front matter,
   chapter/volume headings and title lines, joins hard-wrapped lines into paragraphs,
   removes the ``_italic_`` underscores.  Consecutive paragraphs (joined with "\\n")
   are grouped into documents of at least ``--doc-chars`` characters; every document is
   encoded as ``<s> text </s>``.  The last ``--val-frac`` of each book's documents is
   the validation set.
   Needs: ``apt-get install -y --no-install-recommends r-cran-janeaustenr r-cran-tokenizers``.
   (``--corpus-cache DIR`` keeps/reuses the exported raw texts.)
2. Tokenizer.  A LLaMA-2-style SentencePiece BPE trained with the ``tokenizers``
   package: normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte
   fallback (<0x00>..<0xFF> at ids 3..258), ``<unk>``=0, ``<s>``=1, ``</s>``=2, BOS added
   by a TemplateProcessing post-processor, decoder Replace/ByteFallback/Fuse/Strip.
   Trained paragraph by paragraph with a Metaspace split so that no merge crosses a
   word boundary or a newline (exactly like SentencePiece's split_by_whitespace).
3. Model.  ``LlamaForCausalLM`` (hidden 256, 4 layers, 8 heads, 2 key/value heads,
   intermediate 688, vocab 4096, untied lm_head, max_position_embeddings 512) trained
   from scratch: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), linear warmup
   then cosine decay to 10 % of the peak LR, gradient clipping 1.0, random windows of
   ``--seq-len`` tokens from the packed training stream.
4. Saves with ``save_pretrained`` in float16 safetensors: config.json,
   generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
   special_tokens_map.json, plus train_log.txt and train_summary.json.

Deterministic for a given torch / transformers / tokenizers version and thread count
(seeded; ``torch.use_deterministic_algorithms``).  Example (the bundled model):

    python3 examples/train/train_tiny_llama.py --out examples/models/austen-melville-6m --layers 6 --batch 32 --steps 1100 --warmup 100 --lr 2e-3 --no-compile --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

SPECIALS = ["<unk>", "<s>", "</s>"]
UNK, BOS, EOS = 0, 1, 2
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]
AUSTEN_BOOKS = [
    # (R object in janeaustenr, title)
    ("sensesensibility", "Sense and Sensibility"),
    ("prideprejudice", "Pride and Prejudice"),
    ("mansfieldpark", "Mansfield Park"),
    ("emma", "Emma"),
    ("northangerabbey", "Northanger Abbey"),
    ("persuasion", "Persuasion"),
]
SAMPLE_PROMPTS = ["Once upon a time", "The old man", "In the morning"]


def log(msg: str, fh=None) -> None:
    print(msg, flush=True)
    if fh is not None:
        fh.write(msg + "\n")
        fh.flush()


# --------------------------------------------------------------------------- corpus


def export_raw_texts(cache: Path) -> dict[str, str]:
    """Raw texts exported from the R data packages (one file per book), cached in ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    names = [n for n, _ in AUSTEN_BOOKS] + ["mobydick"]
    if not all((cache / f"{n}.txt").exists() for n in names):
        if shutil.which("Rscript") is None:
            sys.exit(
                "Rscript not found: apt-get install -y --no-install-recommends r-cran-janeaustenr r-cran-tokenizers"
            )
        r = ["library(janeaustenr)", "library(tokenizers)"]
        for n, _ in AUSTEN_BOOKS:
            r.append(f'writeLines({n}, "{cache / (n + ".txt")}", useBytes=TRUE)')
        r.append(f'writeLines(mobydick, "{cache / "mobydick.txt"}", useBytes=TRUE)')
        subprocess.run(["Rscript", "-e", "; ".join(r)], check=True)
    return {n: (cache / f"{n}.txt").read_text(encoding="utf-8") for n in names}


HEADING = re.compile(r"^(CHAPTER|Chapter|VOLUME|Volume|BOOK|Epilogue|EPILOGUE)\b")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, hard-wrapped lines joined, headings dropped."""
    out = []
    for block in re.split(r"\n\s*\n", text.replace("\r", "")):
        para = " ".join(line.strip() for line in block.split("\n") if line.strip())
        para = para.replace("_", "")
        para = re.sub(r"\s+", " ", para).strip()
        if not para:
            continue
        if HEADING.match(para) and len(para) < 100:
            continue
        if para.startswith("By Jane Austen"):
            continue
        if len(para) < 40 and para.upper() == para and re.search(r"[A-Z]", para):
            continue  # titles, "THE END", "FINIS"
        out.append(para)
    return out


def clean_books(raw: dict[str, str]) -> list[tuple[str, list[str]]]:
    books = []
    for n, title in AUSTEN_BOOKS:
        books.append((title, paragraphs(raw[n])))
    md = raw["mobydick"]
    start = md.index("CHAPTER 1. Loomings.")
    end = md.index("End of Project Gutenberg's Moby Dick")
    books.append(("Moby-Dick", paragraphs(md[start:end])))
    return books


def group_documents(paras: list[str], min_chars: int) -> list[str]:
    docs, cur, n = [], [], 0
    for p in paras:
        cur.append(p)
        n += len(p) + 1
        if n >= min_chars:
            docs.append("\n".join(cur))
            cur, n = [], 0
    if cur:
        docs.append("\n".join(cur))
    return docs


# --------------------------------------------------------------------------- tokenizer


def train_tokenizer(train_paragraphs: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    # Training only (like SentencePiece's split_by_whitespace / split_by_unicode_script /
    # split_digits): pieces never cross a word boundary ("▁" only at a piece's start), never mix
    # letters with punctuation, and digits stay single.  Since no learned merge can join two such
    # pieces, encoding without this pre-tokenizer (as below, and as LLaMA-2's tokenizer.json does)
    # gives the same tokens.
    tok.pre_tokenizer = pre_tokenizers.Split(
        tokenizers.Regex(r"▁?\p{L}+|▁?\p{N}|▁?[^\p{L}\p{N}▁]+|▁"), behavior="isolated"
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS + BYTE_TOKENS,  # ids 0..2 and 3..258, as in LLaMA-2
        min_frequency=2,
        limit_alphabet=200,
        show_progress=False,
    )
    tok.train_from_iterator(train_paragraphs, trainer=trainer, length=len(train_paragraphs))

    # Final LLaMA-2 layout: no pre-tokenizer, only <unk>/<s>/</s> as added tokens (the byte
    # tokens stay ordinary vocabulary entries used by byte fallback), BOS post-processor.
    spec = json.loads(tok.to_str())
    spec["pre_tokenizer"] = None
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in SPECIALS]
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS)]
    )
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, s
    for i, s in enumerate(BYTE_TOKENS):
        assert tok.token_to_id(s) == 3 + i, s
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    return tok


def hf_tokenizer(tok: Tokenizer, max_len: int) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",  # LLaMA-2 has no pad token; id 0 doubles as pad (config pad_token_id 0)
        padding_side="left",
        model_max_length=max_len,
        clean_up_tokenization_spaces=False,
    )


# --------------------------------------------------------------------------- model


def build_model(args) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.max_pos,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=UNK,
        attention_dropout=0.0,
        initializer_range=0.02,
    )
    return LlamaForCausalLM(cfg)


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def evaluate(model, val: torch.Tensor, seq_len: int, max_windows: int) -> float:
    model.eval()
    n = min(max_windows, (len(val) - 1) // seq_len)
    tot, cnt = 0.0, 0
    for i in range(0, n, 16):
        idx = torch.arange(i, min(n, i + 16))
        w = torch.stack([val[j * seq_len : j * seq_len + seq_len + 1] for j in idx.tolist()])
        w = w.to(next(model.parameters()).device)
        logits = model(input_ids=w[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), w[:, 1:].reshape(-1), reduction="sum")
        tot += float(loss)
        cnt += w[:, 1:].numel()
    model.train()
    return tot / cnt


@torch.no_grad()
def samples(model, hf_tok, prompts, max_new_tokens=40) -> list[str]:
    model.eval()
    out = []
    for p in prompts:
        enc = hf_tok(p, return_tensors="pt")
        g = model.generate(
            **enc, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=EOS, pad_token_id=UNK
        )
        out.append(hf_tok.decode(g[0], skip_special_tokens=True))
    model.train()
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--corpus-cache", type=Path, default=None, help="keep the exported raw texts here")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=688)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--doc-chars", type=int, default=1500)
    ap.add_argument("--val-frac", type=float, default=0.03)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=48)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="torch.compile the training forward (about 1.4x faster on CPU; --no-compile for eager)")
    ap.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (the bundled model was trained on an H200)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    fh = open(out / "train_log.txt", "w", encoding="utf-8")
    t_start = time.time()
    log(f"# train_tiny_llama.py {' '.join(sys.argv[1:])}", fh)
    log(
        f"# torch {torch.__version__}, transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
        f"threads {args.threads}, seed {args.seed}",
        fh,
    )

    # 1) corpus
    if args.corpus_cache is not None:
        raw = export_raw_texts(args.corpus_cache)
    else:
        with tempfile.TemporaryDirectory() as d:
            raw = export_raw_texts(Path(d))
    books = clean_books(raw)
    train_docs, val_docs, train_paras = [], [], []
    corpus_stats = []
    for title, paras in books:
        docs = group_documents(paras, args.doc_chars)
        n_val = max(1, int(round(len(docs) * args.val_frac)))
        train_docs += docs[:-n_val]
        val_docs += docs[-n_val:]
        n_train_paras = sum(d.count("\n") + 1 for d in docs[:-n_val])
        train_paras += paras[:n_train_paras]
        chars = sum(len(p) for p in paras)
        corpus_stats.append(dict(book=title, paragraphs=len(paras), chars=chars, documents=len(docs), val_documents=n_val))
        log(f"# corpus {title}: {len(paras)} paragraphs, {chars} chars, {len(docs)} documents ({n_val} validation)", fh)
    log(
        f"# corpus total: {sum(s['chars'] for s in corpus_stats)} chars, {len(train_docs)} train / "
        f"{len(val_docs)} validation documents",
        fh,
    )

    # 2) tokenizer (trained on the training paragraphs only)
    t0 = time.time()
    tok = train_tokenizer(train_paras, args.vocab)
    hf_tok = hf_tokenizer(tok, args.max_pos)
    hf_tok.save_pretrained(str(out))
    # transformers 5 no longer writes special_tokens_map.json; older loaders (and other tools) read it.
    (out / "special_tokens_map.json").write_text(
        json.dumps(dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>"), indent=2) + "\n"
    )
    log(f"# tokenizer: vocab {tok.get_vocab_size()}, trained in {time.time() - t0:.1f}s", fh)

    def encode_stream(docs):
        ids = []
        for enc in tok.encode_batch(docs):  # <s> added by the post-processor
            assert enc.ids[0] == BOS
            ids += enc.ids + [EOS]
        return torch.tensor(ids, dtype=torch.int64)

    train_ids, val_ids = encode_stream(train_docs), encode_stream(val_docs)
    n_train_chars = sum(len(d) for d in train_docs)
    log(
        f"# tokens: train {len(train_ids)} ({n_train_chars / len(train_ids):.2f} chars/token), validation {len(val_ids)}; "
        f"byte-fallback tokens in train {int(((train_ids >= 3) & (train_ids < 259)).sum())}",
        fh,
    )

    # 3) model + training
    model = build_model(args).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"# model: {n_params} parameters; config {model.config.to_json_string(use_diff=True)!s}".replace("\n", " "), fh)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [dict(params=decay, weight_decay=args.weight_decay), dict(params=no_decay, weight_decay=0.0)],
        lr=args.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
        fused=True,
    )
    fwd = lambda ids: model(input_ids=ids).logits  # noqa: E731
    if args.compile:
        fwd = torch.compile(fwd)
    gen = torch.Generator().manual_seed(args.seed + 1)
    T, B = args.seq_len, args.batch
    model.train()
    history = []
    t_train = time.time()
    run_loss, run_n = 0.0, 0
    val_loss = evaluate(model, val_ids, T, args.eval_windows)
    log(f"step 0 val_loss {val_loss:.4f}", fh)
    history.append(dict(step=0, val_loss=round(val_loss, 4)))
    for step in range(args.steps):
        lr = lr_at(step, args)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(train_ids) - T - 1, (B,), generator=gen)
        w = torch.stack([train_ids[s : s + T + 1] for s in starts.tolist()]).to(args.device)
        logits = fwd(w[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        run_loss += loss.item()
        run_n += 1
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            el = time.time() - t_train
            log(
                f"step {done} train_loss {run_loss / run_n:.4f} lr {lr:.2e} grad_norm {gnorm:.2f} "
                f"elapsed {el:.0f}s tok/s {done * B * T / el:.0f}",
                fh,
            )
            history.append(dict(step=done, train_loss=round(run_loss / run_n, 4)))
            run_loss, run_n = 0.0, 0
        if done % args.eval_every == 0 or done == args.steps:
            val_loss = evaluate(model, val_ids, T, args.eval_windows)
            log(f"step {done} val_loss {val_loss:.4f} ppl {math.exp(val_loss):.1f}", fh)
            history.append(dict(step=done, val_loss=round(val_loss, 4)))
    train_time = time.time() - t_train

    # final losses over fixed windows (fp32 weights) for the README
    final_val = evaluate(model, val_ids, T, 10**9)
    g2 = torch.Generator().manual_seed(args.seed + 2)
    tr_windows = torch.randint(0, len(train_ids) - T - 1, (128,), generator=g2)
    tr_stream = torch.cat([train_ids[s : s + T + 1] for s in tr_windows.tolist()])
    final_train = evaluate(model, tr_stream, T, 128)
    log(
        f"# final (fp32): train_loss {final_train:.4f} (128 random windows), val_loss {final_val:.4f} "
        f"ppl {math.exp(final_val):.1f} (all {(len(val_ids) - 1) // T} validation windows); "
        f"training {train_time:.0f}s, {args.steps} steps, {args.steps * B * T} tokens",
        fh,
    )

    # 4) save in the target dtype and check the saved model
    dtype = getattr(torch, args.dtype)
    model = model.to("cpu").to(dtype)
    model.generation_config = GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=UNK)
    model.save_pretrained(str(out), safe_serialization=True)
    reloaded = LlamaForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    saved_val = evaluate(reloaded, val_ids, T, 10**9)
    log(f"# saved {args.dtype} weights, reloaded as fp32: val_loss {saved_val:.4f} ppl {math.exp(saved_val):.1f}", fh)
    texts = samples(reloaded, hf_tok, SAMPLE_PROMPTS)
    for t in texts:
        log(f"sample: {t!r}", fh)

    summary = dict(
        corpus=corpus_stats,
        train_tokens=len(train_ids),
        val_tokens=len(val_ids),
        parameters=n_params,
        steps=args.steps,
        batch=B,
        seq_len=T,
        tokens_seen=args.steps * B * T,
        train_time_s=round(train_time, 1),
        total_time_s=round(time.time() - t_start, 1),
        final_train_loss=round(final_train, 4),
        final_val_loss=round(final_val, 4),
        final_val_ppl=round(math.exp(final_val), 2),
        saved_val_loss=round(saved_val, 4),
        samples=dict(zip(SAMPLE_PROMPTS, texts)),
        history=history,
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out", "corpus_cache")},
        versions=dict(torch=torch.__version__, transformers=transformers.__version__, tokenizers=tokenizers.__version__),
    )
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    log(f"# done in {time.time() - t_start:.0f}s", fh)
    fh.close()


if __name__ == "__main__":
    main()
