#!/usr/bin/env python3
"""Writes a random LLaMA-shaped Hugging Face checkpoint (config.json + model.safetensors,
fp16) for benchmarks of `zinc convert` and loading. Needs only numpy: the safetensors file
is written by hand (8-byte header length, JSON header, data).

usage: make_synthetic_checkpoint.py OUT_DIR [--hidden 2048] [--layers 16]
       [--intermediate 5632] [--vocab 32000] [--heads 16]
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--heads", type=int, default=16)
    a = ap.parse_args()
    d, f, v = a.hidden, a.intermediate, a.vocab
    shapes = [("model.embed_tokens.weight", (v, d))]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        shapes += [(p + "input_layernorm.weight", (d,)), (p + "post_attention_layernorm.weight", (d,))]
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes.append((p + f"self_attn.{n}.weight", (d, d)))
        shapes += [(p + "mlp.gate_proj.weight", (f, d)), (p + "mlp.up_proj.weight", (f, d)),
                   (p + "mlp.down_proj.weight", (d, f))]
    shapes += [("model.norm.weight", (d,)), ("lm_head.weight", (v, d))]

    header, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for name, shape in shapes:
            if len(shape) == 1:
                t = np.ones(shape, dtype=np.float16)
            else:
                t = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
            out.write(t.tobytes())
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": v,
              "hidden_size": d, "intermediate_size": f, "num_hidden_layers": a.layers,
              "num_attention_heads": a.heads, "num_key_value_heads": a.heads,
              "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "tie_word_embeddings": False, "torch_dtype": "float16", "bos_token_id": 1,
              "eos_token_id": 2}
    with open(os.path.join(a.out, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
    print(f"{a.out}: {offset / 1e9:.3f} GB of fp16 weights, {len(shapes)} tensors")


if __name__ == "__main__":
    main()
