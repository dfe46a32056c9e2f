#!/usr/bin/env python3
"""Checks the engine on the Kimi Linear model family, not only the shipped tiny fixture.

For each variant config (derived from the tiny config and the real 48B config's shape rules), this writes a random
checkpoint with the real tensor names (numpy; one file or shards with an index; bf16, f16 or f32), computes logits,
states, router choices and greedy tokens with the float64 reference (kimi_linear_ref.py), writes goldens
directories in the fixture format (`goldens/` unbiased, full; `goldens-remote-code/` bias_corrected, slim), and
runs `./kimi-mesh verify` on each. One line per variant and convention, and a summary.

    tools/reference/check_family.py                      # every variant, in a temporary directory
    tools/reference/check_family.py --only groups,top1   # some variants
    tools/reference/check_family.py --out DIR --keep     # keep the generated model and goldens directories
    tools/reference/check_family.py --fixtures DIR       # small fixtures for the JUnit test (no verify run)
    tools/reference/check_family.py --list               # the variants and what each exercises

Exit status 0 iff every verify run passed.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kimi_linear_ref as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def base_config():
    """The tiny fixture's keys at a smaller width: 4 layers (KDA x3 then MLA), dense layer 0, MoE after."""
    return {
        "architectures": ["KimiLinearForCausalLM"], "model_type": "kimi_linear", "dtype": "bfloat16",
        "vocab_size": 131, "hidden_size": 64, "num_hidden_layers": 4, "intermediate_size": 96,
        "head_dim": 32, "hidden_act": "silu", "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 130, "model_max_length": 1048576,
        "linear_attn_config": {"kda_layers": [1, 2, 3], "full_attn_layers": [4], "num_heads": 2, "head_dim": 32,
                               "short_conv_kernel_size": 4},
        "num_attention_heads": 2, "num_key_value_heads": 2, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8,
        "v_head_dim": 16, "kv_lora_rank": 32, "q_lora_rank": None, "mla_use_nope": True,
        "rope_theta": 10000.0, "rope_scaling": None,
        "first_k_dense_replace": 1, "moe_layer_freq": 1, "num_experts": 8, "num_experts_per_token": 2,
        "moe_intermediate_size": 32, "num_shared_experts": 1, "routed_scaling_factor": 2.446,
        "moe_renormalize": True, "moe_router_activation_func": "sigmoid", "use_grouped_topk": True,
        "num_expert_group": 1, "topk_group": 1, "num_nextn_predict_layers": 0,
    }


def lin(kda, full, heads, dim, conv=4):
    d = {"kda_layers": kda, "num_heads": heads, "head_dim": dim, "short_conv_kernel_size": conv}
    if full is not None:
        d["full_attn_layers"] = full
    return d


# name -> (what it exercises, config overrides, checkpoint {dtype, shards})
VARIANTS = {
    "base": ("tiny's structure at width 64, bf16, 2 shards + index", {}, {"dtype": "BF16", "shards": 2}),
    "kda_wide": ("KDA 3 heads x 32 (width 96 != hidden 48), MLA 4 heads with v 12 != nope 8, odd vocab 97, "
                 "eps 1e-6, f32 single file",
                 {"hidden_size": 48, "vocab_size": 97, "pad_token_id": 96, "rms_norm_eps": 1e-6,
                  "linear_attn_config": lin([1, 2, 3], [4], 3, 32), "num_attention_heads": 4,
                  "num_key_value_heads": 4, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 12,
                  "kv_lora_rank": 24, "intermediate_size": 80},
                 {"dtype": "F32", "shards": 1}),
    "q_lora_tied": ("q_lora_rank 16 (q_a_proj, q_a_layernorm, q_b_proj), tied embeddings (no lm_head), "
                    "first_k_dense_replace 0, f16 single file",
                    {"q_lora_rank": 16, "tie_word_embeddings": True, "first_k_dense_replace": 0},
                    {"dtype": "F16", "shards": 1}),
    "groups": ("12 experts top-3 in 4 groups (topk_group 2), 2 shared experts, first_k_dense_replace 2, "
               "5 layers KDA MLA KDA KDA MLA, bf16 3 shards",
               {"num_hidden_layers": 5, "linear_attn_config": lin([1, 3, 4], [2, 5], 2, 32),
                "num_experts": 12, "num_experts_per_token": 3, "num_expert_group": 4, "topk_group": 2,
                "num_shared_experts": 2, "first_k_dense_replace": 2},
               {"dtype": "BF16", "shards": 3}),
    "top1": ("one expert per token (no renormalisation: the original renormalises only when top-k > 1), "
             "no shared expert, scaling 1.5",
             {"num_experts_per_token": 1, "num_shared_experts": 0, "routed_scaling_factor": 1.5},
             {"dtype": "BF16", "shards": 1}),
    "softmax": ("softmax router (moe_router_activation_func softmax), 6 experts top-4, renormalise false",
                {"moe_router_activation_func": "softmax", "num_experts": 6, "num_experts_per_token": 4,
                 "moe_renormalize": False},
                {"dtype": "BF16", "shards": 1}),
    "softmax_groups": ("softmax router with 12 experts in 4 groups (topk_group 2), top-4: biased scores go below 0, "
                       "where the original's 0.0 fill of dropped groups (not -inf) decides the choice; "
                       "num_shared_experts absent (the original's default 0)",
                       {"moe_router_activation_func": "softmax", "num_experts": 12, "num_experts_per_token": 4,
                        "num_expert_group": 4, "topk_group": 2, "num_shared_experts": None},
                       {"dtype": "BF16", "shards": 1}),
    "kda_list_only": ("only kda_layers given: the original makes every other layer MLA; 6 layers "
                      "KDA KDA MLA KDA KDA MLA, moe_layer_freq 2",
                      {"num_hidden_layers": 6, "linear_attn_config": lin([1, 2, 4, 5], None, 2, 32),
                       "moe_layer_freq": 2},
                      {"dtype": "BF16", "shards": 2}),
    "conv3_dense2": ("short conv kernel 3, first_k_dense_replace 2 of 3 layers, KDA 4 heads x 16",
                     {"num_hidden_layers": 3, "linear_attn_config": lin([1, 2], [3], 4, 16, conv=3),
                      "first_k_dense_replace": 2},
                     {"dtype": "BF16", "shards": 1}),
    "tied_stored_head": ("tied embeddings with an lm_head.weight still stored (transformers ignores it), "
                         "one MLA layer with MoE only (first_k_dense_replace 0)",
                         {"tie_word_embeddings": True, "num_hidden_layers": 1, "linear_attn_config": lin([], [1], 2, 32),
                          "first_k_dense_replace": 0},
                         {"dtype": "BF16", "shards": 1, "lm_head_too": True}),
    "all_mla": ("linear_attn_config null: every layer MLA",
                {"linear_attn_config": None, "num_hidden_layers": 2},
                {"dtype": "BF16", "shards": 1}),
    "all_kda_dense": ("every layer KDA, no MLA fields, no experts (dense MLP everywhere)",
                      {"linear_attn_config": lin([1, 2, 3], [], 2, 32), "num_hidden_layers": 3,
                       "num_experts": None, "num_attention_heads": None, "qk_nope_head_dim": None,
                       "qk_rope_head_dim": None, "v_head_dim": None, "kv_lora_rank": None},
                      {"dtype": "BF16", "shards": 1}),
    "odd_dims": ("no width a multiple of a vector: hidden 40, KDA 3 heads x 24, MLA nope 12 / rope 6 / v 10, kv rank 20, "
                 "q_lora_rank 10, experts of 12, dense 36, vocab 101",
                 {"hidden_size": 40, "vocab_size": 101, "pad_token_id": 100, "intermediate_size": 36,
                  "linear_attn_config": lin([1, 2, 3], [4], 3, 24), "qk_nope_head_dim": 12, "qk_rope_head_dim": 6,
                  "v_head_dim": 10, "kv_lora_rank": 20, "q_lora_rank": 10, "moe_intermediate_size": 12},
                 {"dtype": "BF16", "shards": 2}),
    "hf_key_names": ("the MoE keys under transformers' names (num_local_experts, num_experts_per_tok, n_shared_experts, "
                     "n_group, norm_topk_prob): 8 experts top-3 in 2 groups, topk_group 1",
                     {"num_experts": None, "num_experts_per_token": None, "num_shared_experts": None,
                      "num_expert_group": None, "moe_renormalize": None, "num_local_experts": 8,
                      "num_experts_per_tok": 3, "n_shared_experts": 1, "n_group": 2, "topk_group": 1,
                      "norm_topk_prob": True},
                     {"dtype": "BF16", "shards": 1}),
    "strong_decay": ("dt_bias around +3: per-step log-decays down to about -50, so decays inside a 64-token chunk span "
                     "far beyond float32's range (the chunked KDA prefill must not overflow)",
                     {}, {"dtype": "BF16", "shards": 1, "dt_bias_mean": 3.0}),
    "weak_decay": ("dt_bias around -5 (as the tiny fixture): decays near 1, the state keeps everything",
                   {}, {"dtype": "BF16", "shards": 1, "dt_bias_mean": -5.0}),
    "shape_48b": ("the real 48B ratios at 1/16 width: hidden 144, KDA 2 x 128 (width 256), MLA 2 heads with "
                  "nope 128 / rope 64 / v 128, kv rank 32, 16 experts top-8, vocab 163",
                  {"hidden_size": 144, "vocab_size": 163, "pad_token_id": 162, "intermediate_size": 576,
                   "linear_attn_config": lin([1, 2, 3], [4], 2, 128), "num_attention_heads": 2,
                   "num_key_value_heads": 2, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
                   "v_head_dim": 128, "kv_lora_rank": 32, "num_experts": 16, "num_experts_per_token": 8,
                   "moe_intermediate_size": 16},
                  {"dtype": "BF16", "shards": 2}),
}

# small variants for the committed JUnit fixtures (name -> the variant it is built from + narrowing overrides)
FIXTURES = {
    "kda-wide-f32": ("kda_wide", {"hidden_size": 24, "vocab_size": 67, "pad_token_id": 66, "num_hidden_layers": 2,
                                  "linear_attn_config": lin([1], [2], 3, 16), "kv_lora_rank": 16,
                                  "intermediate_size": 32, "moe_intermediate_size": 8, "num_experts": 4}),
    "q-lora-tied-f16": ("q_lora_tied", {"hidden_size": 24, "vocab_size": 61, "pad_token_id": 60,
                                        "num_hidden_layers": 2, "linear_attn_config": lin([1], [2], 2, 16),
                                        "moe_intermediate_size": 8, "num_experts": 6}),
    "groups-top1-bf16": ("groups", {"hidden_size": 24, "vocab_size": 71, "pad_token_id": 70, "num_hidden_layers": 4,
                                    "linear_attn_config": lin([1, 3], [2, 4], 2, 16), "intermediate_size": 32,
                                    "moe_intermediate_size": 8, "num_experts": 8, "num_experts_per_token": 1,
                                    "num_expert_group": 4, "topk_group": 2}),
    "softmax-groups-bf16": ("softmax_groups", {"hidden_size": 24, "vocab_size": 59, "pad_token_id": 58,
                                               "num_hidden_layers": 2, "linear_attn_config": lin([1], [2], 2, 16),
                                               "intermediate_size": 32, "moe_intermediate_size": 8}),
}
SMALL_MLA = {"kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8}
for _name in ("q-lora-tied-f16", "groups-top1-bf16", "softmax-groups-bf16"):
    FIXTURES[_name][1].update(SMALL_MLA)
FIXTURE_LENGTHS = [1, 5, 66]   # 66 > 64: the engine's chunked KDA prefill
FIXTURE_STEPS = 3
FIXTURE_REMOTE_CODE = {"groups-top1-bf16", "softmax-groups-bf16"}   # where the two router conventions differ most


# ---------------------------------------------------------------------------------------------------------------
# checkpoint
# ---------------------------------------------------------------------------------------------------------------
def tensor_shapes(c):
    """The real checkpoint's tensor names and shapes for a config (written from the reference's Config)."""
    h = c.hidden
    m = {"model.embed_tokens.weight": (c.vocab, h)}
    for l in range(c.layers):
        p = "model.layers.%d." % l
        m[p + "input_layernorm.weight"] = (h,)
        a = p + "self_attn."
        if c.kinds[l] == "kda":
            w, d, heads = c.kda_heads * c.kda_dim, c.kda_dim, c.kda_heads
            for x in "qkv":
                m[a + x + "_proj.weight"] = (w, h)
            for x in "qkv":
                m[a + x + "_conv1d.weight"] = (w, 1, c.conv)
            m[a + "A_log"] = (1, 1, heads, 1)
            m[a + "f_a_proj.weight"] = (d, h)
            m[a + "f_b_proj.weight"] = (w, d)
            m[a + "dt_bias"] = (w,)
            m[a + "b_proj.weight"] = (heads, h)
            m[a + "g_a_proj.weight"] = (d, h)
            m[a + "g_b_proj.weight"] = (w, d)
            m[a + "o_norm.weight"] = (d,)
            m[a + "o_proj.weight"] = (h, w)
        else:
            qk = c.dn + c.dr
            if c.q_rank is None:
                m[a + "q_proj.weight"] = (c.heads * qk, h)
            else:
                m[a + "q_a_proj.weight"] = (c.q_rank, h)
                m[a + "q_a_layernorm.weight"] = (c.q_rank,)
                m[a + "q_b_proj.weight"] = (c.heads * qk, c.q_rank)
            m[a + "kv_a_proj_with_mqa.weight"] = (c.kv_rank + c.dr, h)
            m[a + "kv_a_layernorm.weight"] = (c.kv_rank,)
            m[a + "kv_b_proj.weight"] = (c.heads * (c.dn + c.dv), c.kv_rank)
            m[a + "o_proj.weight"] = (h, c.heads * c.dv)
        m[p + "post_attention_layernorm.weight"] = (h,)
        if c.is_moe(l):
            e = p + "block_sparse_moe."
            m[e + "gate.weight"] = (c.experts, h)
            m[e + "gate.e_score_correction_bias"] = (c.experts,)
            for x in range(c.experts):
                m[e + "experts.%d.w1.weight" % x] = (c.moe_inter, h)
                m[e + "experts.%d.w2.weight" % x] = (h, c.moe_inter)
                m[e + "experts.%d.w3.weight" % x] = (c.moe_inter, h)
            if c.shared > 0:
                si = c.moe_inter * c.shared
                m[e + "shared_experts.gate_proj.weight"] = (si, h)
                m[e + "shared_experts.up_proj.weight"] = (si, h)
                m[e + "shared_experts.down_proj.weight"] = (h, si)
        else:
            m[p + "mlp.gate_proj.weight"] = (c.inter, h)
            m[p + "mlp.up_proj.weight"] = (c.inter, h)
            m[p + "mlp.down_proj.weight"] = (h, c.inter)
    m["model.norm.weight"] = (h,)
    if not c.tied:
        m["lm_head.weight"] = (c.vocab, h)
    return m


def random_tensor(rng, name, shape, dt_bias_mean=0.0):
    """Values that keep activations O(1) and every part of the model visible in the output: norms near 1 (not 1,
    so a swapped norm weight shows), linear weights ~ N(0, 1/in), a bias that changes the expert choice."""
    if name.endswith("norm.weight"):
        return 1.0 + 0.2 * rng.standard_normal(shape)
    if name.endswith(".A_log"):
        return np.log(rng.uniform(1, 16, shape))
    if name.endswith(".dt_bias"):
        return dt_bias_mean + 0.5 * rng.standard_normal(shape)
    if name.endswith("e_score_correction_bias"):
        return 0.1 * rng.standard_normal(shape)
    if name.endswith("_conv1d.weight"):
        return 0.5 * rng.standard_normal(shape)
    if name == "model.embed_tokens.weight":
        return rng.standard_normal(shape)
    return rng.standard_normal(shape) / np.sqrt(shape[-1])


def write_checkpoint(out, cfg_json, dtype, shards, seed, lm_head_too=False, dt_bias_mean=0.0):
    """config.json, then one model.safetensors (shards == 1) or shards + model.safetensors.index.json.
    lm_head_too: also store an (unused) lm_head.weight when the embeddings are tied."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg_json, f, indent=2)
    c = ref.Config(cfg_json)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in tensor_shapes(c).items():
        kind = "F32" if name.endswith(".A_log") or name.endswith(".dt_bias") else dtype   # as the real checkpoint
        tensors[name] = (kind, random_tensor(rng, name, shape, dt_bias_mean).astype(np.float32))
    if lm_head_too and c.tied:
        tensors["lm_head.weight"] = (dtype, random_tensor(rng, "lm_head.weight", (c.vocab, c.hidden)).astype(np.float32))
    names = list(tensors)
    if shards == 1:
        ref.write_safetensors(os.path.join(out, "model.safetensors"), tensors, {"format": "pt"})
        return
    per = -(-len(names) // shards)
    weight_map, total = {}, 0
    for s in range(shards):
        file = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = {n: tensors[n] for n in names[s * per:(s + 1) * per]}
        ref.write_safetensors(os.path.join(out, file), part, {"format": "pt"})
        for n, (kind, arr) in part.items():
            weight_map[n] = file
            total += arr.size * (4 if kind == "F32" else 2)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)


# ---------------------------------------------------------------------------------------------------------------
# goldens
# ---------------------------------------------------------------------------------------------------------------
def margins(rows):
    s = np.sort(rows, axis=-1)
    return [round(float(x), 6) for x in s[:, -1] - s[:, -2]]


def f32(a):
    return ("F32", np.asarray(a, dtype=np.float32))


def i64(a):
    return ("I64", np.asarray(a, dtype=np.int64))


def write_goldens(model, gdir, prompts, steps, split, chunked, batch, router, slim, case, compact=False):
    """One goldens directory in the fixture format (see ../shared/fixtures/MANIFEST.md). `compact` leaves the
    per-layer hidden and mid states out of prompts longer than 64 tokens (as the tiny fixture's T200), for size."""
    os.makedirs(gdir, exist_ok=True)
    c = model.c
    meta = {"format": "pt", "case": case, "router_weights": router, "golden_engine": "kimi_linear_ref_fp64"}
    index = {"case": case, "golden_engine": "kimi_linear_ref_fp64", "router_weights": router, "slim": slim,
             "decode_steps": steps, "layer_kinds": c.kinds, "prompts": {}}
    worst_margin = float("inf")

    def put(file, tensors):
        ref.write_safetensors(os.path.join(gdir, file), tensors, meta)
        return sorted(tensors)

    for name, ids in prompts.items():
        st = model.new_state()
        rec = {}
        logits = model.forward(ids, st, router, rec)
        t = {"input_ids": i64(ids), "logits": f32(logits)}
        layers_too = not slim and not (compact and len(ids) > 64)
        if not slim:
            t["final_norm"] = f32(rec["final_norm"])
        if layers_too:
            t["hidden_states"] = f32(rec["hidden_states"])
            t["mid_states"] = f32(rec["mid_states"])
            t.update({k: f32(v) for k, v in ref.state_tensors(model, st).items()})
        for l, (idx, w) in rec.get("moe", {}).items():
            t["moe.%d.topk_idx" % l] = i64(idx)
            t["moe.%d.topk_weight" % l] = f32(w)
        rows, tokens = ref.greedy(model, st, logits[-1], steps, router)
        t["decode.logits"] = f32(rows)
        t["decode.tokens"] = i64(tokens)
        m = margins(rows)
        worst_margin = min(worst_margin, min(m) / np.abs(rows).max())
        file = "prefill_%s.safetensors" % name
        listed = put(file, t)
        index["prompts"][name] = {"length": len(ids), "input_ids": list(ids), "file": file,
                                  "has_mid_states": layers_too, "has_hidden_states": layers_too,
                                  "decode_tokens": tokens, "decode_top2_margins": m,
                                  "prefill_min_top2_margin": min(margins(logits))}
        if slim:
            index["prompts"][name]["tensors"] = listed
    for key, (pname, first), prefix, one_call in (("split_prefill", split, "prefix.", False),
                                                   ("chunked_prefill", chunked, "first.", True)):
        ids = prompts[pname]
        st = model.new_state()
        last = model.forward(ids[:first], st, router)[-1]
        t = {"input_ids": i64(ids)}
        if not slim:
            t.update({k: f32(v) for k, v in ref.state_tensors(model, st, prefix).items()})
        if one_call:
            last = model.forward(ids[first:], st, router)[-1]
        else:
            for tok in ids[first:]:
                last = model.forward([tok], st, router)[-1]
        rows, tokens = ref.greedy(model, st, last, steps, router)
        t["decode.logits"] = f32(rows)
        t["decode.tokens"] = i64(tokens)
        worst_margin = min(worst_margin, min(margins(rows)) / np.abs(rows).max())
        file = key + ".safetensors"
        listed = put(file, t)
        spec = {"prompt": pname, ("prefix_len" if key == "split_prefill" else "first_len"): first, "file": file,
                "decode_tokens": tokens}
        if slim:
            spec["tensors"] = listed
        index[key] = spec
    n = max(len(prompts[p]) for p in batch)
    pad = c.raw.get("pad_token_id", c.vocab - 1)
    ids = np.full((len(batch), n), pad)
    mask = np.zeros((len(batch), n))
    t = {}
    for b, p in enumerate(batch):
        real = prompts[p]
        ids[b, n - len(real):] = real
        mask[b, n - len(real):] = 1
        t["logits.%d" % b] = f32(model.forward(real, model.new_state(), router))
    t["input_ids"] = i64(ids)
    t["attention_mask"] = i64(mask)
    listed = put("batch.safetensors", t)
    index["batch"] = {"prompts": batch, "padding": "left", "pad_token_id": pad, "file": "batch.safetensors"}
    if slim:
        index["batch"]["tensors"] = listed
    with open(os.path.join(gdir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return worst_margin


def make_variant(out, cfg_json, ckpt, seed, lengths, steps, case, compact=False, remote_code=True):
    """Checkpoint + goldens directories (remote_code: also the bias_corrected one); returns the smallest top-2
    margin relative to max|logit|. `compact` (the JUnit fixtures) also batches the two shortest prompts."""
    model_dir = os.path.join(out, "model")
    write_checkpoint(model_dir, cfg_json, ckpt["dtype"], ckpt["shards"], seed, ckpt.get("lm_head_too", False),
                     ckpt.get("dt_bias_mean", 0.0))
    model = ref.Model.load(model_dir)
    rng = np.random.default_rng(seed + 1)
    # prompt ids avoid the pad id so the padded batch's mask and ids agree
    prompts = {"T%d" % n: [int(x) for x in rng.integers(0, model.c.vocab - 1, n)] for n in lengths}
    names = list(prompts)
    longest = names[-1]
    split = (longest, max(1, len(prompts[longest]) // 4))
    chunked = (longest, max(1, len(prompts[longest]) // 3))
    batch = names[:2] if compact and len(names) > 2 else [names[min(1, len(names) - 1)], longest]
    m1 = write_goldens(model, os.path.join(out, "goldens"), prompts, steps, split, chunked, batch, "unbiased", False,
                       case, compact)
    if not remote_code:
        return m1
    m2 = write_goldens(model, os.path.join(out, "goldens-remote-code"), prompts, steps, split, chunked, batch,
                       "bias_corrected", True, case)
    return min(m1, m2)


def config_for(name, extra=None):
    _, overrides, ckpt = VARIANTS[name]
    cfg = base_config()
    for k, v in overrides.items():
        if v is None:
            cfg.pop(k, None)
            if k in ("q_lora_rank", "linear_attn_config"):
                cfg[k] = None
        else:
            cfg[k] = copy.deepcopy(v)
    for k, v in (extra or {}).items():
        cfg[k] = copy.deepcopy(v)
    return cfg, ckpt


def verify(model_dir, golden_dir):
    """Runs ./kimi-mesh verify; (passed, last line, full output)."""
    p = subprocess.run([os.path.join(ROOT, "kimi-mesh"), "verify", model_dir, golden_dir],
                       capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    last = lines[-1] if lines else "(no output)"
    return p.returncode == 0 and last.startswith("verify:"), last, p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated variant names")
    ap.add_argument("--out", help="where to write (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the generated directories")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--lengths", default="1,9,150", help="prompt lengths (the last one > 64 reaches the chunked KDA)")
    ap.add_argument("--steps", type=int, default=6, help="greedy decode steps per scenario")
    ap.add_argument("--fixtures", help="write the small JUnit fixtures into this directory and stop")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for n, (what, _, ckpt) in VARIANTS.items():
            print("%-14s %s" % (n, what))
        return 0
    if a.fixtures:
        for fname, (vname, extra) in FIXTURES.items():
            cfg, ckpt = config_for(vname, extra)
            out = os.path.join(a.fixtures, fname)
            shutil.rmtree(out, ignore_errors=True)
            m = make_variant(out, cfg, ckpt, a.seed, FIXTURE_LENGTHS, FIXTURE_STEPS, fname, compact=True,
                             remote_code=fname in FIXTURE_REMOTE_CODE)
            print("%s: from %s, min top-2 margin %.2e of max|logit|" % (fname, vname, m))
        return 0
    names = a.only.split(",") if a.only else list(VARIANTS)
    for n in names:
        if n not in VARIANTS:
            ap.error("unknown variant %s (see --list)" % n)
    base = a.out or tempfile.mkdtemp(prefix="kimi-family-")
    lengths = [int(x) for x in a.lengths.split(",")]
    failed = []
    for n in names:
        cfg, ckpt = config_for(n)
        out = os.path.join(base, n)
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.time()
        m = make_variant(out, cfg, ckpt, a.seed, lengths, a.steps, n)
        t1 = time.time()
        for g in ("goldens", "goldens-remote-code"):
            ok, last, full = verify(os.path.join(out, "model"), os.path.join(out, g))
            print("%-14s %-20s %s  %s  (margin %.1e, ref %.0fs)" % (n, g, "PASS" if ok else "FAIL", last, m, t1 - t0),
                  flush=True)
            if not ok:
                failed.append(n + "/" + g)
                for line in full.splitlines():
                    if "FAIL" in line or "rror" in line or "xception" in line:
                        print("    " + line[:400])
    print("family: %d variants, %d verify runs failed%s" % (len(names), len(failed),
                                                            (": " + ", ".join(failed)) if failed else ""))
    if not a.keep and not a.out:
        shutil.rmtree(base, ignore_errors=True)
    elif a.keep or a.out:
        print("kept in " + base)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
