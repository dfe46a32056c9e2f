#!/usr/bin/env python3
"""An independent float64 reference of the Kimi Linear forward pass, in numpy only.

Written from the model definition (../shared/DESIGN.md, the fixture MANIFEST, the real config and tensor names),
not from the engine: KDA in its naive recurrent form (one token at a time), MLA in its expanded form (kv_b_proj
applied to every cached latent), the dense SwiGLU MLP, the MoE with the original router (sigmoid or softmax scores,
e_score_correction_bias for choosing only, group-limited choice, top-k, renormalisation, routed_scaling_factor,
shared experts), the final norm and lm_head or the tied embedding. Everything runs in float64 on the weights as
stored (bf16 / f16 / f32 upcast), so its error against an exact evaluation is far below the engine's float32 error.

Where the original `modeling_kimi.py` and transformers differ, this follows the original (the goldens' author):
- a layer is KDA iff its 1-based number is in `kda_layers`; every other layer is MLA (`full_attn_layers` is not read);
- the router renormalises only when top-k > 1 (`if self.top_k > 1 and self.moe_renormalize`);
- group-limited choice fills the experts of dropped groups with 0.0 (not -inf) before the top-k;
- `bias_corrected` weights are gathered from the scores with the bias added (the in-place add on a view).
MLA is NoPE: Kimi Linear's MLA never rotates (the original asserts `mla_use_nope`); `qk_rope_head_dim` is only the
width of the shared, unrotated k_rot slice. A config asking for rotary MLA is refused here as it is there.

Usage as a module: `Model.load(dir)`, `model.new_state()`, `model.forward(ids, state, record)` -> logits.
Usage as a script: `kimi_linear_ref.py check MODEL_DIR GOLDEN_DIR` compares this reference with a goldens directory
in the fixture format (every float tensor present, the router choices, the greedy tokens).
"""
from __future__ import annotations

import json
import os
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# safetensors, read and written with numpy (the format is an 8-byte header length, a JSON header, raw data)
# ---------------------------------------------------------------------------------------------------------------
_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "u1"}


def read_safetensors(path):
    """name -> numpy array (bf16 widened to float32 exactly), and the header's __metadata__."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_NP[info["dtype"]])
        out[name] = arr.reshape(info["shape"])
    return out, header.get("__metadata__", {})


def to_bf16_bits(x):
    """float -> bf16 bit patterns, round to nearest even (as torch's .to(bfloat16))."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> (dtype in BF16/F16/F32/I64, array). Data in the given order, header padded to 8 bytes."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, (dtype, arr) in tensors.items():
        if dtype == "BF16":
            raw = to_bf16_bits(arr).tobytes()
        else:
            raw = np.ascontiguousarray(arr, dtype=_NP[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_checkpoint(model_dir):
    """Every tensor of a model directory: one model.safetensors, or the shards named by the index."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = sorted(x for x in os.listdir(model_dir) if x.endswith(".safetensors"))
    tensors = {}
    for name in files:
        t, _ = read_safetensors(os.path.join(model_dir, name))
        tensors.update(t)
    return tensors


# ---------------------------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------------------------
class Config:
    """The fields of a kimi_linear config.json that change the computation, with the original's defaults."""

    # transformers' KimiLinearConfig names for the original keys (its attribute_map)
    ALIASES = {"num_local_experts": "num_experts", "n_routed_experts": "num_experts",
               "num_experts_per_tok": "num_experts_per_token", "n_shared_experts": "num_shared_experts",
               "n_group": "num_expert_group", "norm_topk_prob": "moe_renormalize"}

    def __init__(self, d):
        d = dict(d)
        for alias, key in self.ALIASES.items():
            if d.get(alias) is not None and d.get(key) is None:
                d[key] = d[alias]
        self.raw = d
        self.hidden = d["hidden_size"]
        self.layers = d["num_hidden_layers"]
        self.vocab = d["vocab_size"]
        self.eps = float(d.get("rms_norm_eps", 1e-6))
        self.tied = bool(d.get("tie_word_embeddings", False))
        lin = d.get("linear_attn_config")
        kda = set(lin.get("kda_layers") or []) if lin else set()
        self.kinds = ["kda" if (i + 1) in kda else "mla" for i in range(self.layers)]
        if lin:
            self.kda_heads = lin["num_heads"]
            self.kda_dim = lin["head_dim"]
            self.conv = lin["short_conv_kernel_size"]
        if "mla" in self.kinds:
            if not d.get("mla_use_nope", False):
                raise ValueError("mla_use_nope must be true: Kimi Linear's MLA is NoPE (the original asserts it)")
            self.heads = d["num_attention_heads"]
            self.dn = d["qk_nope_head_dim"]
            self.dr = d["qk_rope_head_dim"]
            self.dv = d["v_head_dim"]
            self.kv_rank = d["kv_lora_rank"]
            self.q_rank = d.get("q_lora_rank")
        self.experts = d.get("num_experts")
        self.first_dense = d.get("first_k_dense_replace", 0)
        self.moe_freq = d.get("moe_layer_freq", 1)
        if self.experts:
            self.top_k = d["num_experts_per_token"]
            self.moe_inter = d["moe_intermediate_size"]
            self.shared = d.get("num_shared_experts", 0) or 0
            self.scaling = float(d.get("routed_scaling_factor", 1.0))
            self.renorm = bool(d.get("moe_renormalize", True))
            self.router_fn = d.get("moe_router_activation_func", "sigmoid")
            self.groups = d.get("num_expert_group", 1) or 1
            self.topk_group = d.get("topk_group", 1) or 1
        self.inter = d.get("intermediate_size")

    def is_moe(self, layer):
        return bool(self.experts) and layer >= self.first_dense and layer % self.moe_freq == 0


# ---------------------------------------------------------------------------------------------------------------
# building blocks (float64)
# ---------------------------------------------------------------------------------------------------------------
def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def silu(x):
    return x * sigmoid(x)


def softplus(x):
    # torch's softplus (beta 1, threshold 20), as fla's KDA gate uses it
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def swiglu(x, gate, up, down):
    return (silu(x @ gate.T) * (x @ up.T)) @ down.T


class KdaState:
    """Per KDA layer: the last K pre-convolution inputs of q, k, v ([3, K, P], oldest first) and S [heads, dk, dv]."""

    def __init__(self, c):
        p = c.kda_heads * c.kda_dim
        self.conv = np.zeros((3, c.conv, p))
        self.S = np.zeros((c.kda_heads, c.kda_dim, c.kda_dim))


class MlaState:
    """Per MLA layer: the normalised latent and the k_rot slice of every position so far."""

    def __init__(self, c):
        self.latent = np.zeros((0, c.kv_rank))
        self.k_rot = np.zeros((0, c.dr))


class Model:
    def __init__(self, config, tensors):
        self.c = config
        self.w = {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}

    @staticmethod
    def load(model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = Config(json.load(f))
        return Model(cfg, read_checkpoint(model_dir))

    def new_state(self):
        return [KdaState(self.c) if k == "kda" else MlaState(self.c) for k in self.c.kinds]

    def p(self, layer, name):
        return self.w["model.layers.%d.%s" % (layer, name)]

    # ---- KDA: naive recurrent form ----
    def kda(self, l, x, st):
        c = self.c
        a = lambda n: self.p(l, "self_attn." + n)
        heads, d, K = c.kda_heads, c.kda_dim, c.conv
        T = x.shape[0]
        conv_out = []
        for i, n in enumerate("qkv"):
            pre = x @ a(n + "_proj.weight").T                      # [T, P]
            full = np.concatenate([st.conv[i], pre])               # [K + T, P], the K oldest from the state
            w = a(n + "_conv1d.weight")[:, 0, :]                   # [P, K]; tap K-1 is the current token
            out = np.zeros_like(pre)
            for j in range(K):
                out += w[:, j] * full[1 + j:1 + j + T]             # position t uses inputs t-K+1 .. t
            st.conv[i] = full[-K:]
            conv_out.append(silu(out).reshape(T, heads, d))
        q, k, v = conv_out
        f = (x @ a("f_a_proj.weight").T) @ a("f_b_proj.weight").T  # [T, P] head-major
        A = np.exp(a("A_log").reshape(heads))
        g = -A[None, :, None] * softplus(f.reshape(T, heads, d) + a("dt_bias").reshape(heads, d))
        beta = sigmoid(x @ a("b_proj.weight").T)                   # [T, heads]
        q = q / np.sqrt(np.sum(q * q, axis=-1, keepdims=True) + 1e-6) * d ** -0.5
        k = k / np.sqrt(np.sum(k * k, axis=-1, keepdims=True) + 1e-6)
        o = np.zeros((T, heads, d))
        S = st.S
        for t in range(T):
            S = S * np.exp(g[t])[:, :, None]                       # Diag(a_t) S_{t-1}: per key channel
            kv = np.einsum("hkv,hk->hv", S, k[t])
            S = S + np.einsum("hk,hv->hkv", k[t], beta[t][:, None] * (v[t] - kv))
            o[t] = np.einsum("hkv,hk->hv", S, q[t])
        st.S = S
        gate = ((x @ a("g_a_proj.weight").T) @ a("g_b_proj.weight").T).reshape(T, heads, d)
        o = rms_norm(o, a("o_norm.weight"), c.eps) * sigmoid(gate)
        return o.reshape(T, heads * d) @ a("o_proj.weight").T

    # ---- MLA: expanded form over the cached latents ----
    def mla(self, l, x, st):
        c = self.c
        a = lambda n: self.p(l, "self_attn." + n)
        T, nh, dn, dr, dv, R = x.shape[0], c.heads, c.dn, c.dr, c.dv, c.kv_rank
        if c.q_rank is None:
            q = x @ a("q_proj.weight").T
        else:   # DeepSeek-V3 q-LoRA; q_a_layernorm has the class default eps 1e-6, as kv_a_layernorm
            q = rms_norm(x @ a("q_a_proj.weight").T, a("q_a_layernorm.weight"), 1e-6) @ a("q_b_proj.weight").T
        q = q.reshape(T, nh, dn + dr)
        ckv = x @ a("kv_a_proj_with_mqa.weight").T
        latent = rms_norm(ckv[:, :R], a("kv_a_layernorm.weight"), 1e-6)
        start = st.latent.shape[0]
        st.latent = np.concatenate([st.latent, latent])
        st.k_rot = np.concatenate([st.k_rot, ckv[:, R:]])
        S = st.latent.shape[0]
        kv = (st.latent @ a("kv_b_proj.weight").T).reshape(S, nh, dn + dv)
        key = np.concatenate([kv[:, :, :dn], np.broadcast_to(st.k_rot[:, None, :], (S, nh, dr))], axis=-1)
        val = kv[:, :, dn:]
        scores = np.einsum("thd,shd->hts", q, key) * (dn + dr) ** -0.5
        causal = np.arange(S)[None, :] <= (start + np.arange(T))[:, None]
        scores = np.where(causal[None], scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", probs, val).reshape(T, nh * dv)
        return o @ a("o_proj.weight").T

    # ---- MoE ----
    def route(self, l, y, router_weights):
        """(experts [T, k] by descending choice score, weights [T, k]) as the original KimiMoEGate."""
        c = self.c
        logits = y @ self.p(l, "block_sparse_moe.gate.weight").T
        if c.router_fn == "sigmoid":
            scores = sigmoid(logits)
        elif c.router_fn == "softmax":
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            scores = e / e.sum(axis=-1, keepdims=True)
        else:
            raise ValueError("moe_router_activation_func " + c.router_fn)
        choice = scores + self.p(l, "block_sparse_moe.gate.e_score_correction_bias")
        T, E = choice.shape
        masked = choice
        if c.groups > 1:
            per = E // c.groups
            grouped = choice.reshape(T, c.groups, per)
            top2 = -np.sort(-grouped, axis=-1)[:, :, :2].sum(-1)           # [T, groups]
            keep = np.argsort(-top2, axis=-1, kind="stable")[:, :c.topk_group]
            mask = np.zeros((T, c.groups), dtype=bool)
            np.put_along_axis(mask, keep, True, axis=-1)
            masked = np.where(np.repeat(mask, per, axis=-1), choice, 0.0)   # the original fills 0.0
        idx = np.argsort(-masked, axis=-1, kind="stable")[:, :c.top_k]
        src = scores if router_weights == "unbiased" else choice
        w = np.take_along_axis(src, idx, axis=-1)
        if c.top_k > 1 and c.renorm:
            w = w / (w.sum(-1, keepdims=True) + 1e-20)
        return idx, w * c.scaling

    def moe(self, l, y, router_weights, record):
        c = self.c
        idx, w = self.route(l, y, router_weights)
        if record is not None:
            record.setdefault("moe", {})[l] = (idx, w)
        out = np.zeros_like(y)
        for t in range(y.shape[0]):
            for j in range(c.top_k):
                e = "block_sparse_moe.experts.%d." % idx[t, j]
                out[t] += w[t, j] * swiglu(y[t:t + 1], self.p(l, e + "w1.weight"), self.p(l, e + "w3.weight"),
                                           self.p(l, e + "w2.weight"))[0]
        if c.shared > 0:
            s = "block_sparse_moe.shared_experts."
            out += swiglu(y, self.p(l, s + "gate_proj.weight"), self.p(l, s + "up_proj.weight"),
                          self.p(l, s + "down_proj.weight"))
        return out

    # ---- the model ----
    def forward(self, ids, state, router_weights="unbiased", record=None):
        """Logits [T, vocab] of the new tokens `ids`, advancing `state`. `record` (a dict) collects
        hidden_states [L+1, T, H], mid_states [L, T, H], final_norm [T, H] and moe {layer: (idx, w)}."""
        c = self.c
        h = self.w["model.embed_tokens.weight"][np.asarray(ids)]
        hidden, mid = [h.copy()], []
        for l in range(c.layers):
            x = rms_norm(h, self.p(l, "input_layernorm.weight"), c.eps)
            h = h + (self.kda(l, x, state[l]) if c.kinds[l] == "kda" else self.mla(l, x, state[l]))
            mid.append(h.copy())
            y = rms_norm(h, self.p(l, "post_attention_layernorm.weight"), c.eps)
            if c.is_moe(l):
                h = h + self.moe(l, y, router_weights, record)
            else:
                h = h + swiglu(y, self.p(l, "mlp.gate_proj.weight"), self.p(l, "mlp.up_proj.weight"),
                               self.p(l, "mlp.down_proj.weight"))
            hidden.append(h.copy())
        normed = rms_norm(h, self.w["model.norm.weight"], c.eps)
        head = self.w["model.embed_tokens.weight"] if c.tied else self.w["lm_head.weight"]
        if record is not None:
            record["hidden_states"] = np.stack(hidden)
            record["mid_states"] = np.stack(mid)
            record["final_norm"] = normed
        return normed @ head.T


# ---------------------------------------------------------------------------------------------------------------
# checking against a goldens directory
# ---------------------------------------------------------------------------------------------------------------
def _rel(ours, golden):
    golden = np.asarray(golden, dtype=np.float64)
    return float(np.max(np.abs(ours - golden)) / max(np.max(np.abs(golden)), 1e-30))


def state_tensors(model, state, prefix=""):
    """The goldens' state tensors: kda.{l}.recurrent_state / conv_state ([3, P, K]), mla.{l}.latent / k_rot."""
    out = {}
    for l, st in enumerate(state):
        if isinstance(st, KdaState):
            out[prefix + "kda.%d.recurrent_state" % l] = st.S.copy()
            out[prefix + "kda.%d.conv_state" % l] = st.conv.transpose(0, 2, 1).copy()
        else:
            out[prefix + "mla.%d.latent" % l] = st.latent.copy()
            out[prefix + "mla.%d.k_rot" % l] = st.k_rot.copy()
    return out


def greedy(model, state, last_row, steps, router_weights):
    """decode.logits rows (row 0 = last_row) and the argmax tokens, feeding each token back."""
    rows, tokens = [last_row], []
    for s in range(steps):
        tok = int(np.argmax(rows[-1]))
        tokens.append(tok)
        if s + 1 < steps:
            rows.append(model.forward([tok], state, router_weights)[0])
    return np.stack(rows), tokens


def check(model_dir, golden_dir):
    """Compares this reference with every float tensor, router choice and token of a goldens directory."""
    model = Model.load(model_dir)
    with open(os.path.join(golden_dir, "index.json")) as f:
        index = json.load(f)
    rw = index.get("router_weights", "unbiased")
    worst = 0.0
    ok = True

    def compare(case, ours, g):
        nonlocal worst, ok
        errs = {}
        for name, val in ours.items():
            if name in g:
                e = _rel(val, g[name])
                errs[name] = e
                worst = max(worst, e)
        fam = {}
        for name, e in errs.items():
            key = ".".join(p for p in name.split(".") if not p.isdigit())
            fam[key] = max(fam.get(key, 0.0), e)
        print(case, " ".join("%s=%.2e" % kv for kv in sorted(fam.items())))

    def decode_check(case, g, rows, tokens):
        nonlocal ok
        if "decode.tokens" in g:
            gt = [int(t) for t in g["decode.tokens"]]
            if gt != tokens:
                ok = False
                print(case, "TOKENS DIFFER", gt, tokens)

    steps = index.get("decode_steps", 16)
    for name, p in index.get("prompts", {}).items():
        g, _ = read_safetensors(os.path.join(golden_dir, p["file"]))
        ids = [int(t) for t in g["input_ids"]] if "input_ids" in g else p["input_ids"]
        st = model.new_state()
        rec = {}
        logits = model.forward(ids, st, rw, rec)
        ours = {"logits": logits, "final_norm": rec["final_norm"], "hidden_states": rec["hidden_states"],
                "mid_states": rec["mid_states"]}
        ours.update(state_tensors(model, st))
        for l, (idx, w) in rec.get("moe", {}).items():
            if "moe.%d.topk_idx" % l in g:
                gi = g["moe.%d.topk_idx" % l]
                same = all(set(a) == set(b) for a, b in zip(idx.tolist(), gi.tolist()))
                if not same:
                    ok = False
                    print("prefill_" + name, "ROUTER CHOICE DIFFERS at layer", l)
                gw = g["moe.%d.topk_weight" % l]
                ow = np.array([[dict(zip(a, b))[e] for e in ge] for a, b, ge in zip(idx.tolist(), w.tolist(), gi.tolist())])
                worst_w = float(np.max(np.abs(ow - gw)))
                if worst_w > 1e-5:
                    ok = False
                    print("prefill_" + name, "router weights differ by", worst_w)
        rows, tokens = greedy(model, st, logits[-1], len(g["decode.tokens"]) if "decode.tokens" in g else steps, rw)
        ours["decode.logits"] = rows
        compare("prefill_" + name, ours, g)
        decode_check("prefill_" + name, g, rows, tokens)
    for key, prefix, one_call in (("split_prefill", "prefix.", False), ("chunked_prefill", "first.", True)):
        spec = index.get(key)
        if not spec:
            continue
        g, _ = read_safetensors(os.path.join(golden_dir, spec["file"]))
        ids = [int(t) for t in g["input_ids"]]
        first = spec.get("prefix_len", spec.get("first_len"))
        st = model.new_state()
        last = model.forward(ids[:first], st, rw)[-1]
        ours = state_tensors(model, st, prefix)
        if one_call:
            last = model.forward(ids[first:], st, rw)[-1]
        else:
            for t in ids[first:]:
                last = model.forward([t], st, rw)[-1]
        rows, tokens = greedy(model, st, last, len(g["decode.tokens"]), rw)
        ours["decode.logits"] = rows
        compare(key, ours, g)
        decode_check(key, g, rows, tokens)
    spec = index.get("batch")
    if spec:
        g, _ = read_safetensors(os.path.join(golden_dir, spec["file"]))
        ids, mask = g["input_ids"], g["attention_mask"]
        ours = {}
        for b in range(ids.shape[0]):
            real = [int(t) for t, m in zip(ids[b], mask[b]) if m]
            ours["logits.%d" % b] = model.forward(real, model.new_state(), rw)
        compare("batch", ours, g)
    ok = ok and worst <= 1e-4
    print("reference: max_rel_err=%.3e tokens_and_router_match=%s" % (worst, ok))
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2], sys.argv[3]) else 1)
    print(__doc__)
    sys.exit(2)
