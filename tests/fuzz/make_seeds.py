#!/usr/bin/env python3
"""Writes the text seeds of the fuzz targets (tests/fuzz/seeds/<target>/) from tests/fixtures
and examples/models, with the standard library only. make_seeds.sh runs it, then adds the
store seeds (which need `zinc convert`). Seeds are kept small (a few KB each): libFuzzer's
default maximum input length is the largest seed's."""
import json
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
EXAMPLES = ROOT / "examples" / "models"
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "fuzz" / "seeds"

MAX_TENSOR_BYTES = 1024  # tensors of a safetensors seed: the small ones (norms, biases)


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def small_safetensors(path):
    """The file's small tensors (and metadata) rewritten as a file of their own."""
    header, data = read_safetensors(path)
    out_header, out_data = {}, b""
    if "__metadata__" in header:
        out_header["__metadata__"] = header["__metadata__"]
    for name, e in sorted(header.items()):
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        if end - b > MAX_TENSOR_BYTES or len(out_header) >= 8:
            continue
        out_header[name] = dict(e, data_offsets=[len(out_data), len(out_data) + end - b])
        out_data += data[b:end]
    text = json.dumps(out_header, separators=(",", ":"))
    text += " " * (-len(text) % 8)  # the Python writer pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text.encode() + out_data


def trimmed_tokenizer(path, base_ids=128, keep_merges=60):
    """The tokenizer cut down: ids < base_ids (bytes, specials) and the first merges with
    the tokens they join and make (original ids, so they need not be dense)."""
    j = json.loads(path.read_text())
    m = j["model"]
    full = m["vocab"]
    vocab = {t: i for t, i in full.items() if i < base_ids}
    merges = []
    for e in m["merges"][:keep_merges]:
        left, right = e.split(" ", 1) if isinstance(e, str) else e
        for t in (left, right, left + right):
            if t in full:
                vocab[t] = full[t]
        merges.append(e)
    m["vocab"], m["merges"] = vocab, merges
    return json.dumps(j, ensure_ascii=False, separators=(",", ":"))


def main():
    corpus = (FIX / "tokenizer" / "corpus.txt").read_text().splitlines()
    samples = [l for l in corpus if len(l) > 60][:40]
    models = sorted(p for p in FIX.iterdir() if (p / "config.json").exists())
    models += sorted(p for p in EXAMPLES.iterdir() if (p / "config.json").exists())

    for d in models:
        for f in sorted(d.glob("*.safetensors")):
            if f.name == "reference.safetensors" and d.name != "llama_gqa":
                continue  # the references all have the same layout
            write("safetensors", f"{d.name}.{f.stem}", small_safetensors(f))
        gen = d / "generation_config.json"
        text = (d / "config.json").read_text()
        write("config", d.name, text + ("\0" + gen.read_text() if gen.exists() else ""))
        write("config", d.name + ".alone", text)
    for f in sorted(FIX.glob("*/model.safetensors.index.json")):
        write("safetensors_index", f.parent.name, f.read_text())
    write("safetensors_index", "subdir",
          json.dumps({"metadata": {"total_size": 8},
                      "weight_map": {"a.weight": "shards/model-00001.safetensors", "b": "m.safetensors"}}))

    tokenizers = sorted(FIX.glob("tokenizer/*/tokenizer.json")) + sorted(EXAMPLES.glob("*/tokenizer.json"))
    for i, f in enumerate(tokenizers):
        text = trimmed_tokenizer(f)
        write("tokenizer", f.parent.name, text)
        write("tokenizer", f.parent.name + ".text", text + "\0" + samples[i % len(samples)][:200])


if __name__ == "__main__":
    main()
