#!/usr/bin/env python3
"""Golden fixtures for runtime/tokenizer, made with Hugging Face `tokenizers` (+ transformers).

    python3 tests/reference/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizer]
        [--gpt2 ../shared/data/gpt2] [--unicode-table runtime/tokenizer/unicode_table.cpp]

Everything is deterministic (seeded `random.Random`, single-threaded training), so running it
again with the same library versions rewrites byte-identical files.

What it writes under --out
--------------------------
* ``corpus.txt``: 10,000 texts, one per line (UTF-8, no '\\n' inside a text).  The first lines
  are hand-written edge cases (empty line, whitespace only, special tokens glued to words,
  contractions, byte-fallback bait); the rest are drawn from a seeded mix of English-like
  sentences, accented Latin, Greek, Cyrillic, CJK, Arabic/Hebrew/Devanagari/Thai, emoji (skin
  tones, ZWJ families, flags, VS16), digits in many scripts, code snippets, contractions and
  whitespace runs (tabs, double spaces, leading/trailing spaces, NBSP, U+3000, \\v, \\f, U+0085,
  U+2028).
* Trained on that corpus with `tokenizers` (vocab 2,000 each):
  - ``bytelevel/``: byte-level BPE (GPT-2 pipeline: ByteLevel pre-tokenizer and decoder),
    OPT-like specials ``<s>=0 <pad>=1 </s>=2 <unk>=3`` and a TemplateProcessing post-processor
    that prepends ``</s>`` as OPT does; added tokens ``<|endoftext|>`` (special) and
    ``[[link]]`` (not special, lstrip+rstrip, normalized=false).  tokenizer_config.json says
    clean_up_tokenization_spaces=true (which transformers 5 ignores for BPE: checked below).
  - ``sentencepiece/``: LLaMA-2-style BPE: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")],
    no pre-tokenizer, byte_fallback with ``<0x00>..<0xFF>`` in the model vocab (not added
    tokens), unk ``<unk>`` with fuse_unk, decoder Sequence[Replace("▁", " "), ByteFallback,
    Fuse, Strip(" ", 1, 0)], TemplateProcessing prepending ``<s>``; specials <unk>=0 <s>=1 </s>=2.
  - ``bytelevel_prefix/``: the bytelevel model with ByteLevel(add_prefix_space=true), the
    ByteLevel post-processor (no BOS), no tokenizer_config.json, and a *normalized* added token.
  - ``metaspace/``: the sentencepiece model without byte_fallback (so unknown characters become
    one fused <unk>), with the Metaspace pre-tokenizer (prepend_scheme "first", split=false)
    instead of the normalizer, and decoder Sequence[Metaspace, ByteFallback, Fuse]; a
    tokenizer_config.json asking for clean-up, forced for BPE
    (clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output=true).
  - ``options_bytelevel/``: the bytelevel model with ignore_merges, a Replace normalizer, added
    tokens exercising single_word / lstrip / rstrip / normalized / overlapping contents, and
    RobertaProcessing.  ``options_sentencepiece/``: the sentencepiece model without byte_fallback
    and without fuse_unk, a pre-tokenizer Sequence[Metaspace(never, split)] after the normalizer,
    Strip(" ", 1, 1), and a "<s> $A </s>" template.  These two have cases.json entries only.
* For each tokenizer NAME in (bytelevel, sentencepiece, bytelevel_prefix, metaspace, gpt2):
  - ``NAME.ids.txt``: per corpus line, ``tokenizer.encode(line).ids`` (add_special_tokens=True)
    space-separated.  The two variants cover the first VARIANT_LINES lines only.
  - ``NAME.decoded.txt``: per corpus line, ``transformers`` decode(ids, skip_special_tokens=True)
    written as ``=`` when it equals the corpus line, else ``|`` followed by the text.
  ``gpt2`` is the real GPT-2 vocabulary (--gpt2, vocab.json + merges.txt), loaded with
  ``ByteLevelBPETokenizer.from_file`` plus ``<|endoftext|>`` as a special added token, which is
  how zinc reads that layout (checked equal to transformers' GPT2TokenizerFast on that
  directory, which also gives the bos/eos/pad ids and the decodes); its files are not copied.
* ``cases.json``: per tokenizer: vocab_size (get_vocab_size(with_added_tokens=True)), bos/eos/pad
  ids as transformers reports them (-1 for none), the corpus line count it covers, encodes of
  hand-written texts with '\\n' / '\\r' inside (add_special_tokens true and false), and decodes of
  seeded random id sequences with skip_special_tokens true and false.

With --unicode-table PATH it also writes the C++ character-class table used by the hand-written
GPT-2 pre-tokenizer pattern (see write_unicode_table()).
"""

import argparse
import collections
import json
import os
import random
import shutil
import sys
import tempfile
import unicodedata

import tokenizers
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

SEED = 20261128
NUM_LINES = 10_000
VARIANT_LINES = 1_000
VOCAB = 2_000

# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

WORDS = """the of and to in is it you that he was for on are with as his they be at one have
this from or had by hot word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so these
her long make thing see him two has look more day could go come did number sound no most people
my over know water than call first who may down side been now find any new work part take get
place made live where after back little only round man year came show every good me give our
under name very through just form sentence great think say help low line differ turn cause much
mean before move right boy old too same tell does set three want air well also play small end put
home read hand port large spell add even land here must big high such follow act why ask men
change went light kind off need house picture try us again animal point mother world near build
self earth father head stand own page should country found answer school grow study still learn
plant cover food sun four between state keep eye never last let thought city tree cross farm
hard start might story saw far sea draw left late run while press close night real life few
north tokenizer gradient shard quantize kernel batch stream tensor cache offload rank""".split()
CONTRACTIONS = ["it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "can't", "won't",
                "she's", "IT'S", "We'Ve", "y'all", "rock 'n' roll", "'tis", "o'clock", "l'été",
                "Bob's", "isn't", "'s", "''", "'", "''quoted''", "you'd've", "'LL", "'re"]
ACCENTED = ["café", "naïve", "Ångström", "über", "façade", "résumé", "señor", "Zürich",
            "crème brûlée", "Øresund", "Łódź", "Dvořák", "São Paulo", "coöperate", "ﬁnance",
            "e\u0301tude", "Ǆemal", "ǅ", "İstanbul", "straße", "ÆØÅ", "Þórr"]
GREEK = ["αβγ", "Καλημέρα", "κόσμε", "Ελληνικά", "λόγος", "ΣΊΣΥΦΟΣ", "ἀρχή", "π", "Ωμέγα"]
CYRILLIC = ["Привет", "мир", "Здравствуйте", "Москва", "ёлка", "ЪЫЬ", "Україна", "Їжак",
            "съешь же ещё этих мягких"]
CJK = ["中文", "日本語", "한국어", "ひらがな", "カタカナ", "漢字かな交じり文", "你好，世界。",
       "東京都", "𠀀𠀁", "ｶﾀｶﾅ", "（全角）", "「引用」", "一二三", "〇"]
OTHER_SCRIPTS = ["مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีครับ", "ሰላም", "Բարեւ",
                 "გამარჯობა", "ᚠᚢᚦ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐍈𐌰", "ꦲꦏ꧀ꦱꦫ"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸", "🇯🇵", "❤️", "👩🏿‍💻", "🤷‍♂️", "🧑🏻‍🤝‍🧑🏾",
         "✨", "🔥🔥🔥", "☕", "1️⃣", "©️", "🫠", "🙂🙃"]
SYMBOLS = ["∑", "∫", "√2", "€12", "£5", "¥100", "₹", "→", "⇒", "═══", "♥", "★", "±", "µs", "°C",
           "½", "²", "Ⅻ", "٣٤٥", "１２３", "௰", "⁇", "‽", "—", "…", "«quote»", "„x“", "§3",
           "\u200b", "\ufeff", "\u00ad", "\u2060", "\ue000"]
NUMBERS = ["12345", "3.14159", "1,000,000", "2024-01-15", "+1 (555) 010-9999", "0x1F", "1e-5",
           "v2.7.1", "42nd", "abc123def", "007", "99.9%", "10:30", "1/3", "-17", "2^32"]
CODE = ["def foo(x):", "    return x ** 2", "for (int i = 0; i < n; ++i) {", "\tif (a != b) {",
        "        x += 1;", "}", "{\"key\": [1, 2, 3], \"ok\": true}", "#include <stdio.h>",
        "std::vector<int> v{1, 2};", "<div class=\"a\">text</div>", "SELECT * FROM t WHERE id = 42;",
        "print(f'{x!r:>10}')", "a && b || !c", "x->y = *p++;", "// TODO: fix", "/* c */",
        "lambda s: s.strip()", "$ ls -la | grep '.py'", "@decorator", "i++; j--;", "`code`",
        "```python", "   ", "\t\t", "fn main() -> Result<(), E> {"]
WS = [" ", "  ", "   ", "\t", " \t ", "    ", "\u00a0", "\u3000", "\u2009", " \u00a0 ", "\x0b",
      "\x0c", "\u0085", "\u2028", "\u1680", "\u202f"]
SPECIALS = ["<|endoftext|>", "<s>", "</s>", "[[link]]", "<pad>", "<unk>", "<0x41>"]

EDGE_LINES = [
    "", " ", "  ", "   ", "\t", "\t\t", " \t", "a", " a", "  a", "a ", "a  ", "a  b", "a   b",
    "a\tb", "a\t\tb", "a \tb", "a\t b", "hello world", "Hello World!", " Hello", "Hello ",
    "<|endoftext|>", "<|endoftext|><|endoftext|>", "hello<|endoftext|>world",
    " <|endoftext|> ", "<s>", "</s>", "<s>hello</s>", "hello </s> world", "<s><s></s>",
    "[[link]]", "a [[link]] b", "a[[link]]b", "  [[link]]  x", "[[link]][[link]]",
    "<|endoftext", "<|endoftext|", "< s>", "<0x41>", "<unk>", "<pad>x",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "''s", "'x", "a's", "A'S", "it's 'sss",
    "don't can't won't", "I'm we're they've he'll she'd", " 's", "''", "'", "'''",
    "123", " 123", "1 2 3", "1  2", "٣٤٥", "Ⅻ", "½²", "a1b2", "3.14", "١٢٣٤٥٦٧٨٩٠",
    "é", "e\u0301", "ﬁ", "ß", "ǅ", "😀", "👨‍👩‍👧‍👦", "🇺🇸🇯🇵", "👍🏽👍🏿", "中文", "中 文",
    "\u00a0", "a\u00a0b", "a\u00a0\u00a0b", "\u3000x", "x\u3000", "\u200b", "a\u200bb",
    "\ufeffBOM", "\x0b", "\x0c", "a\x0cb", "\u0085", "\u2028", "x\u2028 y", "\u2029",
    "▁", "▁▁", " ▁ ", "a▁b", "▁hello", "\ue000", "\U0010ffff", "\U000e0001", "\x01\x02\x7f",
    "!!!", "...", "?!", " .", "a .b", "hello , world . how 's it going ?", "x n't", " ' ",
    "tab\tend\t", "trailing   ", "   leading", "mixed \t \u00a0 \u3000 spaces",
]


def _pick(rng, xs):
    return xs[rng.randrange(len(xs))]


def _sentence(rng):
    n = rng.randint(2, 9)
    ws = []
    for _ in range(n):
        r = rng.random()
        if r < 0.70:
            w = _pick(rng, WORDS)
            if rng.random() < 0.15:
                w = w.capitalize()
            elif rng.random() < 0.03:
                w = w.upper()
        elif r < 0.82:
            w = _pick(rng, CONTRACTIONS)
        elif r < 0.90:
            w = _pick(rng, NUMBERS)
        else:
            w = _pick(rng, ACCENTED)
        ws.append(w)
    s = " ".join(ws)
    if rng.random() < 0.5:
        s = s[0].upper() + s[1:]
    return s + _pick(rng, ["", ".", ".", "!", "?", ",", ":", ";", " .", "...", " ?"])


def _segment(rng):
    r = rng.random()
    if r < 0.40:
        return _sentence(rng)
    if r < 0.47:
        return " ".join(_pick(rng, GREEK + CYRILLIC) for _ in range(rng.randint(1, 4)))
    if r < 0.54:
        return "".join(_pick(rng, CJK) for _ in range(rng.randint(1, 3)))
    if r < 0.59:
        return " ".join(_pick(rng, OTHER_SCRIPTS) for _ in range(rng.randint(1, 2)))
    if r < 0.66:
        return _pick(rng, ["", " "]).join(_pick(rng, EMOJI) for _ in range(rng.randint(1, 3)))
    if r < 0.73:
        return " ".join(_pick(rng, SYMBOLS + NUMBERS) for _ in range(rng.randint(1, 4)))
    if r < 0.85:
        return _pick(rng, CODE)
    if r < 0.88:
        return _pick(rng, SPECIALS)
    if r < 0.94:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_-.'")
                       for _ in range(rng.randint(1, 12)))
    return _pick(rng, ACCENTED) + _pick(rng, ["", "s", "'s", "123", "!"])


def make_corpus():
    rng = random.Random(SEED)
    lines = list(EDGE_LINES)
    while len(lines) < NUM_LINES:
        parts = [_segment(rng) for _ in range(rng.choice([1, 1, 1, 1, 2, 2, 3]))]
        line = parts[0]
        for p in parts[1:]:
            line += _pick(rng, [" ", " ", " ", "", "  ", "\t", ", ", " - "] + WS) + p
        r = rng.random()
        if r < 0.06:
            line = _pick(rng, WS) + line
        elif r < 0.12:
            line = line + _pick(rng, WS)
        if len(line.encode()) > 120:  # keep the fixture files small
            line = line[:50]
        for bad in ("\n", "\r"):
            assert bad not in line
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------

BYTE_TOKENS = ["<0x%02X>" % b for b in range(256)]


def train_bytelevel(corpus):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_special_tokens(["<|endoftext|>"])
    tok.add_tokens([AddedToken("[[link]]", lstrip=True, rstrip=True, normalized=False,
                               special=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="</s> $A", pair="</s> $A $B", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    return tok


def bytelevel_prefix_variant(bytelevel_json):
    tok = Tokenizer.from_str(bytelevel_json)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_tokens([AddedToken("hello world", normalized=True, special=False)])
    return tok


def train_sentencepiece(corpus):
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always",
                                                 split=True)
    # The 200 most frequent characters (ties by code point) form the alphabet; the rest go
    # through byte fallback.  Chosen here rather than by limit_alphabet alone, whose tie-break
    # is hash-order random.
    counts = collections.Counter("".join("▁" + line.replace(" ", "▁") for line in corpus))
    alphabet = sorted(counts, key=lambda ch: (-counts[ch], ch))[:200]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, show_progress=False, limit_alphabet=200,
                                  initial_alphabet=alphabet,
                                  special_tokens=["<unk>", "<s>", "</s>"] + BYTE_TOKENS)
    tok.train_from_iterator(corpus, trainer=trainer)
    # LLaMA-2 layout: the <0xNN> pieces live in the model vocab only, not as added tokens.
    data = json.loads(tok.to_str())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in BYTE_TOKENS]
    tok = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok


def metaspace_variant(sp_json):
    data = json.loads(sp_json)
    data["model"]["byte_fallback"] = False
    tok = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first",
                                                 split=False)
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first"),
                                     decoders.ByteFallback(), decoders.Fuse()])
    return tok


def options_bytelevel_variant(bytelevel_json):
    """Added-token options, ignore_merges, a normalizer on a byte-level model, Roberta."""
    data = json.loads(bytelevel_json)
    data["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    tok.normalizer = normalizers.Sequence([normalizers.Replace("``", '"'),
                                           normalizers.Replace("''", '"')])
    tok.add_tokens([AddedToken("<mask>", single_word=True, lstrip=True, rstrip=True,
                               normalized=False, special=True),
                    AddedToken("``quote``", normalized=True, special=False),
                    AddedToken("ΣΣ", single_word=True, normalized=True, special=False),
                    AddedToken("_x_", single_word=True, normalized=False, special=False),
                    AddedToken("ab", normalized=False, special=False),
                    AddedToken("abc", normalized=False, special=False),
                    AddedToken("the", rstrip=True, normalized=False, special=False)])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tok


def options_sentencepiece_variant(sp_json):
    """unk without fusing, a pre-tokenizer Sequence after the normalizer, Strip at both ends."""
    data = json.loads(sp_json)
    data["model"]["byte_fallback"] = False
    data["model"]["fuse_unk"] = False
    tok = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 1)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return tok


OPTION_TEXTS = [
    "<mask> My name <mask> A<mask> <mask>ony <mask>", "Hi <mask> there\t<mask>\t<mask>\u2000",
    "x<mask>", "<mask>_", "_<mask>", "<mask>.", "é<mask>", "٣<mask>", "a\u0301<mask>",
    "``quote`` and \"quote\" and ''quote''", "``quote", "ΣΣ ΣΣΣ aΣΣ ΣΣ.", "_x_ a_x_ _x_b (_x_)",
    "ab abc abcd xabcx", "the thethe the   end", "then the\tthe\nthe", "hello world",
    "Hello, World! it's", "ignore merges: tokenizer gradient shard",
    "unknown: 😀 中文 ꦲꦏ꧀ꦱꦫ 𝔘𝔫𝔦", "  leading and trailing  ", "<s>x</s>", "a\u200bb",
]


def gpt2_tokenizer(gpt2_dir):
    from tokenizers import ByteLevelBPETokenizer
    tok = ByteLevelBPETokenizer.from_file(os.path.join(gpt2_dir, "vocab.json"),
                                          os.path.join(gpt2_dir, "merges.txt"))
    tok.add_special_tokens(["<|endoftext|>"])
    return Tokenizer.from_str(tok.to_str())


CONFIGS = {
    "bytelevel": {"bos_token": "</s>", "eos_token": "</s>", "pad_token": "<pad>",
                  "unk_token": "<unk>", "clean_up_tokenization_spaces": True,
                  "tokenizer_class": "PreTrainedTokenizerFast"},
    "sentencepiece": {"bos_token": {"content": "<s>", "lstrip": False, "normalized": False,
                                    "rstrip": False, "single_word": False, "__type": "AddedToken"},
                      "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
                      "clean_up_tokenization_spaces": False, "legacy": True,
                      "tokenizer_class": "PreTrainedTokenizerFast"},
    "metaspace": {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>",
                  "unk_token": "<unk>", "clean_up_tokenization_spaces": True,
                  "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output": True,
                  "tokenizer_class": "PreTrainedTokenizerFast"},
}


def hf_wrapper(tok, config):
    """transformers' view of the same pipeline (decode with clean-up, bos/eos/pad ids)."""
    from transformers import PreTrainedTokenizerFast
    with tempfile.TemporaryDirectory() as d:
        tok.save(os.path.join(d, "tokenizer.json"))
        if config is not None:
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump(config, f)
        return PreTrainedTokenizerFast.from_pretrained(d)


MULTILINE = ["", "\n", "\n\n", "a\nb", "a\n\nb", "a \n b", "line one\nline two\n", "\r\n",
             "x\r\ny", "  \n  ", "\t\n", "def f():\n    return 1\n", "<s>\n</s>", "😀\n😀",
             "<|endoftext|>\n<|endoftext|>", "[[link]]\n", "hello world", " hello world",
             "hello world hello world", "é\nà"]


def write_outputs(out, name, tok, hf, lines, cases):
    ids_path = os.path.join(out, f"{name}.ids.txt")
    dec_path = os.path.join(out, f"{name}.decoded.txt")
    encs = tok.encode_batch(lines, add_special_tokens=True)
    if lines:
        with open(ids_path, "w", encoding="utf-8", newline="\n") as f_ids, \
                open(dec_path, "w", encoding="utf-8", newline="\n") as f_dec:
            for line, enc in zip(lines, encs):
                f_ids.write(" ".join(map(str, enc.ids)) + "\n")
                text = hf.decode(enc.ids, skip_special_tokens=True)
                assert "\n" not in text
                f_dec.write("=\n" if text == line else "|" + text + "\n")
    rng = random.Random(SEED + len(name))
    vocab = tok.get_vocab_size(with_added_tokens=True)
    special = sorted(i for i, t in tok.get_added_tokens_decoder().items() if t.special)
    decode_cases = []
    for k in range(200):
        n = rng.randint(1, 12)
        ids = [rng.randrange(vocab) for _ in range(n)]
        if k % 4 == 0 and special:
            ids.insert(rng.randrange(n + 1), _pick(rng, special))
        if k % 8 == 1 and vocab > 300:  # runs of low ids: <0xNN> pieces, byte-level singles
            ids = [rng.randrange(3, 300) for _ in range(n)]
        decode_cases.append({"ids": ids, "skip": hf.decode(ids, skip_special_tokens=True),
                             "keep": hf.decode(ids, skip_special_tokens=False)})
    encode_cases = []
    for text in MULTILINE + OPTION_TEXTS + lines[:50]:
        encode_cases.append({"text": text,
                             "ids": tok.encode(text, add_special_tokens=True).ids,
                             "ids_no_special": tok.encode(text, add_special_tokens=False).ids})

    def tid(t):
        return -1 if t is None else hf.convert_tokens_to_ids(t)

    cases[name] = {"lines": len(lines), "vocab_size": vocab, "bos_id": tid(hf.bos_token),
                   "eos_id": tid(hf.eos_token), "pad_id": tid(hf.pad_token),
                   "encode": encode_cases, "decode": decode_cases}


def save_tokenizer(out, name, tok, config):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    # Written compactly (no indentation) to keep the fixture small.
    data = json.loads(tok.to_str())
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    if config is not None:
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
    return Tokenizer.from_file(os.path.join(d, "tokenizer.json"))


# ---------------------------------------------------------------------------------------------
# Unicode table for the GPT-2 pattern
# ---------------------------------------------------------------------------------------------

# Unicode White_Space: what both Oniguruma's \s and Rust's char::is_whitespace match.
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F,
                                         0x205F, 0x3000} | set(range(0x2000, 0x200B))


def _onig_set(pattern, cps, text):
    """Code points the `tokenizers` (Oniguruma) regex `pattern` matches, one char at a time."""
    keep = bytearray(len(cps))
    split = pre_tokenizers.Split(Regex(pattern), behavior="removed")
    for _, (a, b) in split.pre_tokenize_str(text):
        for i in range(a, b):
            keep[i] = 1
    return {cps[i] for i in range(len(cps)) if not keep[i]}


def write_unicode_table(path):
    """Ranges of code points with class bits L=1 (\\p{L}), N=2 (\\p{N}), S=4 (\\s), W=8 (word
    character for AddedToken.single_word, approximating Rust regex \\w: L, M, Nd, Nl, Pc, ZWJ/ZWNJ).

    L and N come from Python's unicodedata (general categories Lu Ll Lt Lm Lo / Nd Nl No).  The
    `tokenizers` regex engine (Oniguruma) may know a newer Unicode version: code points that are
    unassigned (Cn) in this Python but \\p{L} / \\p{N} for Oniguruma are taken from Oniguruma; any
    other disagreement aborts."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(map(chr, cps))
    cls = bytearray(0x110000)
    for c in cps:
        cat = unicodedata.category(chr(c))
        if cat in ("Lu", "Ll", "Lt", "Lm", "Lo"):
            cls[c] |= 1
        if cat in ("Nd", "Nl", "No"):
            cls[c] |= 2
        if c in WHITE_SPACE:
            cls[c] |= 4
        if cat[0] in "LM" or cat in ("Nd", "Nl", "Pc") or c in (0x200C, 0x200D):
            cls[c] |= 8
    added = 0
    for bit, pattern in ((1, r"\p{L}"), (2, r"\p{N}"), (4, r"\s")):
        onig = _onig_set(pattern, cps, text)
        ours = {c for c in cps if cls[c] & bit}
        for c in onig - ours:
            if unicodedata.category(chr(c)) != "Cn":
                sys.exit(f"unicode table: U+{c:04X} is {pattern} for Oniguruma but "
                         f"{unicodedata.category(chr(c))} in unicodedata")
            cls[c] |= bit | 8
            added += 1
        if ours - onig:
            c = min(ours - onig)
            sys.exit(f"unicode table: U+{c:04X} is {pattern} in unicodedata but not for Oniguruma")
    ranges = []
    start = 0
    for c in range(1, 0x110001):
        if c == 0x110000 or cls[c] != cls[start]:
            if cls[start]:
                ranges.append((start, c - 1, cls[start]))
            start = c
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("// GENERATED by tests/reference/make_tokenizer_fixtures.py --unicode-table; do not "
                "edit.\n")
        f.write(f"// Unicode {unicodedata.unidata_version} general categories (Python "
                f"unicodedata) + {added} newer code points\n")
        f.write(f"// that tokenizers {tokenizers.__version__}'s Oniguruma classes as \\p{{L}} / "
                "\\p{N}; White_Space for \\s.\n")
        f.write("// Bits: 1 letter (\\p{L}), 2 number (\\p{N}), 4 white space (\\s), 8 word "
                "character (~\\w).\n")
        f.write('#include "runtime/tokenizer/unicode.hpp"\n\nnamespace zinc::runtime::tok {\n\n')
        f.write("const CharRange kCharRanges[] = {\n")
        for k in range(0, len(ranges), 4):
            f.write("   " + "".join(f" {{0x{lo:X}, 0x{hi:X}, {c}}}," for lo, hi, c in
                                    ranges[k:k + 4]) + "\n")
        f.write("};\nconst size_t kNumCharRanges = sizeof(kCharRanges) / sizeof(kCharRanges[0]);\n")
        f.write("\n}  // namespace zinc::runtime::tok\n")
    print(f"wrote {path}: {len(ranges)} ranges ({added} code points from Oniguruma)")


# ---------------------------------------------------------------------------------------------


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "tokenizer"))
    ap.add_argument("--gpt2", default=os.path.join(os.path.dirname(root), "shared", "data", "gpt2"))
    ap.add_argument("--unicode-table", default=None)
    args = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = "1"  # deterministic training
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    if args.unicode_table:
        write_unicode_table(args.unicode_table)

    out = args.out
    os.makedirs(out, exist_ok=True)
    corpus = make_corpus()
    with open(os.path.join(out, "corpus.txt"), "w", encoding="utf-8", newline="\n") as f:
        for line in corpus:
            f.write(line + "\n")

    bl = train_bytelevel(corpus)
    sp = train_sentencepiece(corpus)
    toks = {
        "bytelevel": (bl, CONFIGS["bytelevel"], corpus),
        "sentencepiece": (sp, CONFIGS["sentencepiece"], corpus),
        "bytelevel_prefix": (bytelevel_prefix_variant(bl.to_str()), None, corpus[:VARIANT_LINES]),
        "metaspace": (metaspace_variant(sp.to_str()), CONFIGS["metaspace"],
                      corpus[:VARIANT_LINES]),
        "options_bytelevel": (options_bytelevel_variant(bl.to_str()), None, []),
        "options_sentencepiece": (options_sentencepiece_variant(sp.to_str()), None, []),
    }
    cases = {"tokenizers_version": tokenizers.__version__}
    for name, (tok, config, lines) in toks.items():
        tok = save_tokenizer(out, name, tok, config)
        hf = hf_wrapper(tok, config)
        write_outputs(out, name, tok, hf, lines, cases)
        print(f"{name}: vocab {tok.get_vocab_size(True)}, {len(lines)} corpus lines")
    if os.path.isdir(args.gpt2):
        tok = gpt2_tokenizer(args.gpt2)
        # transformers' own reading of that directory: bos = eos = <|endoftext|>, no pad.
        from transformers import GPT2TokenizerFast
        hf = GPT2TokenizerFast.from_pretrained(args.gpt2)
        assert [e.ids for e in hf.backend_tokenizer.encode_batch(corpus)] == \
            [e.ids for e in tok.encode_batch(corpus)]
        write_outputs(out, "gpt2", tok, hf, corpus, cases)
        print(f"gpt2: vocab {tok.get_vocab_size(True)}")
    else:
        print(f"warning: {args.gpt2} not found; no gpt2 fixtures", file=sys.stderr)
    import transformers
    cases["transformers_version"] = transformers.__version__
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(cases, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f"fixtures in {out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
