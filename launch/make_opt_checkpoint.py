#!/usr/bin/env python3
"""An OPT-shaped Hugging Face directory with fp16 weights, for timing `zinc convert` on a
checkpoint of real size without downloading one (nothing here needs numpy or torch).

usage: make_opt_checkpoint.py HIDDEN LAYERS FFN OUT_DIR
  e.g. 2048 24 8192 (OPT-1.3b, 2.5 GB), 7168 48 28672 (OPT-30B, 60 GB)
The values are one 64 KiB block of N(0, 0.02) fp16 numbers repeated (the quantizer's work
per value is the same as for real weights); shards of about 2 GiB with an index, as the
Hub's checkpoints; config.json from the opt_preln fixture with the sizes replaced.
"""
import json, random, struct, sys, os
src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "opt_preln")
if len(sys.argv) != 5:
    sys.exit(__doc__)
d, L, f = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4]
os.makedirs(out, exist_ok=True)
cfg = json.load(open(src + "/config.json"))
cfg.update(hidden_size=d, num_hidden_layers=L, ffn_dim=f, word_embed_proj_dim=d, num_attention_heads=d // 64,
           vocab_size=50272, max_position_embeddings=2048, dtype="float16", eos_token_id=2)
json.dump(cfg, open(out + "/config.json", "w"))
random.seed(1)
block = struct.pack("<32768e", *[random.gauss(0, 0.02) for _ in range(32768)])
def tensors():
    p = "model.decoder."
    yield p + "embed_tokens.weight", [50272, d]
    yield p + "embed_positions.weight", [2050, d]
    for l in range(L):
        q = p + f"layers.{l}."
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"]:
            yield q + f"self_attn.{n}.weight", [d, d]; yield q + f"self_attn.{n}.bias", [d]
        for n in ["self_attn_layer_norm", "final_layer_norm"]:
            yield q + f"{n}.weight", [d]; yield q + f"{n}.bias", [d]
        yield q + "fc1.weight", [f, d]; yield q + "fc1.bias", [f]
        yield q + "fc2.weight", [d, f]; yield q + "fc2.bias", [d]
    yield p + "final_layer_norm.weight", [d]; yield p + "final_layer_norm.bias", [d]
shards, cur, size = [], [], 0
for name, shape in tensors():
    n = 1
    for s in shape: n *= s
    cur.append((name, shape, n * 2)); size += n * 2
    if size > 2 << 30: shards.append(cur); cur, size = [], 0
if cur: shards.append(cur)
index = {"metadata": {}, "weight_map": {}}
for i, sh in enumerate(shards):
    fn = f"model-{i+1:05d}-of-{len(shards):05d}.safetensors"
    header, off = {}, 0
    for name, shape, nb in sh:
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [off, off + nb]}; off += nb
        index["weight_map"][name] = fn
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(out + "/" + fn, "wb") as fo:
        fo.write(struct.pack("<Q", len(h))); fo.write(h)
        for name, shape, nb in sh:
            full, rest = divmod(nb, len(block))
            for _ in range(full): fo.write(block)
            fo.write(block[:rest])
json.dump(index, open(out + "/model.safetensors.index.json", "w"))
print("shards", len(shards))
