#!/usr/bin/env python3
"""How far a bf16-compute engine can be from a model's fp32 goldens, independently of any engine.

Runs the float64 reference (kimi_linear_ref.py) with the input of every linear layer rounded to bf16 (round to
nearest even), as the CUDA backend's bf16-compute mode does (`-Dkimimesh.cuda.gemm=bf16`: activations rounded once,
bf16 weights, fp32 accumulation); `kv_b_proj` stays unrounded (the backend expands the latent cache in fp32). Prints,
per golden prompt, max|logits - golden| / max|golden| and how many (token, layer) pairs chose a different expert set
than the goldens. `--router-fp32` keeps the router's input unrounded too.

Why: the tiny fixture's smallest router gap is 4e-5 (its MANIFEST), far below bf16's 4e-3 rounding, so any bf16
engine flips some routing choices on longer prompts, and a flipped expert changes that token's output by O(1). Where
this tool shows such flips, no logit tolerance holds for the bf16 mode: compare its tokens at large margins only.

Usage: bf16_sensitivity.py MODEL_DIR [GOLDEN_DIR] [--router-fp32]   (GOLDEN_DIR defaults to MODEL_DIR/goldens)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kimi_linear_ref as ref  # noqa: E402


def bf16(x):
    """x rounded to the nearest bf16 (ties to even), returned as float64."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


class _RoundingTransposed:
    """W^T whose left product rounds its input to bf16 first: `x @ W.T` == bf16(x) @ W^T."""
    __array_ufunc__ = None  # numpy defers `x @ this` to __rmatmul__

    def __init__(self, wt):
        self.wt = wt

    def __rmatmul__(self, x):
        return bf16(x) @ self.wt


class _RoundingWeight:
    def __init__(self, w):
        self.w = w

    @property
    def T(self):
        return _RoundingTransposed(self.w.T)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if not args:
        print(__doc__)
        return 2
    model_dir = args[0]
    golden_dir = args[1] if len(args) > 1 else os.path.join(model_dir, "goldens")
    router_fp32 = "--router-fp32" in argv
    model = ref.Model.load(model_dir)
    for name, w in list(model.w.items()):
        if w.ndim != 2 or not name.endswith(".weight") or "embed_tokens" in name or "kv_b_proj" in name:
            continue
        if router_fp32 and name.endswith("block_sparse_moe.gate.weight"):
            continue
        model.w[name] = _RoundingWeight(w)
    with open(os.path.join(golden_dir, "index.json")) as f:
        index = json.load(f)
    rw = index.get("router_weights", "unbiased")
    for name, p in index.get("prompts", {}).items():
        g, _ = ref.read_safetensors(os.path.join(golden_dir, p["file"]))
        ids = [int(t) for t in g["input_ids"]] if "input_ids" in g else p["input_ids"]
        rec = {}
        logits = model.forward(ids, model.new_state(), rw, rec)
        golden = g["logits"]
        err = np.abs(logits - golden).max() / np.abs(golden).max()
        flips = 0
        for layer, (idx, _) in rec.get("moe", {}).items():
            gi = g.get("moe.%d.topk_idx" % layer)
            if gi is not None:
                flips += sum(set(a) != set(b) for a, b in zip(idx.tolist(), gi.tolist()))
        print("%s T=%d max|diff|/max|golden| %.2e, routing flips (token x layer) %d" % (name, len(ids), err, flips))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
