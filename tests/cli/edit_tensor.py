#!/usr/bin/env python3
"""Edits one F32 tensor of a safetensors file in place, for the CLI cases that need a bad
checkpoint (no numpy or torch needed).

usage: edit_tensor.py FILE.safetensors TENSOR scale FACTOR   every value times FACTOR
       edit_tensor.py FILE.safetensors TENSOR set INDEX VALUE  one value (e.g. nan, inf)
"""
import json, struct, sys

if len(sys.argv) not in (5, 6):
    sys.exit(__doc__)
path, name, op = sys.argv[1:4]
data = bytearray(open(path, "rb").read())
n = struct.unpack_from("<Q", data, 0)[0]
header = json.loads(data[8:8 + n])
t = header[name]
assert t["dtype"] == "F32", (name, t["dtype"])
begin, end = (8 + n + o for o in t["data_offsets"])
count = (end - begin) // 4
if op == "scale" and len(sys.argv) == 5:
    values = struct.unpack_from("<%df" % count, data, begin)
    struct.pack_into("<%df" % count, data, begin, *(v * float(sys.argv[4]) for v in values))
elif op == "set" and len(sys.argv) == 6:
    i = int(sys.argv[4])
    assert 0 <= i < count, (i, count)
    struct.pack_into("<f", data, begin + 4 * i, float(sys.argv[5]))
else:
    sys.exit(__doc__)
open(path, "wb").write(data)
