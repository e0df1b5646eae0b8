"""Transformer checkpoints between PyTorch and tapegrad, both ways (by hand: CI has no torch).

The model is tapegrad's `Gpt` written with torch.nn modules under the same names:
tok/pos nn.Embedding, blocks.{i}.ln1 / attn (nn.MultiheadAttention, batch_first, causal) /
ln2 / fc / out, final ln, head. Runs in float64 so outputs compare to ~1e-12.

    python tests/torch/gpt_roundtrip.py make    # torch -> tapegrad fixture (committed):
        crates/nn/tests/fixtures/torch_gpt.safetensors + torch_gpt_expected.json
    cargo test -p tapegrad-nn --test transformer          # loads it, compares the logits, and
        # writes target/gpt_roundtrip/rust_gpt.safetensors + rust_gpt_expected.json
    python tests/torch/gpt_roundtrip.py check   # tapegrad -> torch: load_state_dict(strict=True)
        # of the Rust checkpoint, logits compared with Rust's

safetensors is read and written by hand here (8-byte header length, JSON header, raw
little-endian data), so only torch is needed.
"""
import json
import os
import struct
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "crates", "nn", "tests", "fixtures")
CONFIG = {"vocab": 11, "context": 8, "width": 16, "heads": 2, "layers": 2}
BATCH, POSITIONS = 2, 6


class TorchGpt(torch.nn.Module):
    def __init__(self, vocab, context, width, heads, layers):
        super().__init__()
        nn = torch.nn
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context, width)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(width),
                "attn": nn.MultiheadAttention(width, heads, batch_first=True),
                "ln2": nn.LayerNorm(width), "fc": nn.Linear(width, 4 * width),
                "out": nn.Linear(4 * width, width)}))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, idx):
        t = idx.shape[1]
        h = self.tok(idx) + self.pos(torch.arange(t))
        future = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)  # True = may not attend
        for b in self.blocks:
            x = b["ln1"](h)
            h = h + b["attn"](x, x, x, attn_mask=future, need_weights=False)[0]
            h = h + b["out"](torch.nn.functional.gelu(b["fc"](b["ln2"](h))))
        return self.head(self.ln(h))


def fixed_ids():
    return [(7 * i + 3) % CONFIG["vocab"] for i in range(BATCH * POSITIONS)]


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float64).numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_safetensors(path):
    import numpy as np
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F64", (name, info["dtype"])
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a: 8 + n + b], dtype="<f8").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids).reshape(BATCH, POSITIONS)).flatten().tolist()


def make():
    torch.manual_seed(0)
    m = TorchGpt(**CONFIG).double()
    # Non-zero biases everywhere (MultiheadAttention and LayerNorm start at 0), so a
    # misplaced bias cannot go unnoticed.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
            if name.endswith("ln1.weight") or name.endswith("ln2.weight") or name == "ln.weight":
                p.uniform_(0.5, 1.5)
    save_safetensors(m.state_dict(), os.path.join(FIXTURES, "torch_gpt.safetensors"))
    ids = fixed_ids()
    expected = {"config": CONFIG, "batch": BATCH, "ids": ids, "logits": logits_of(m, ids),
                "names": [[k, list(v.shape)] for k, v in m.state_dict().items()]}
    with open(os.path.join(FIXTURES, "torch_gpt_expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"wrote the fixture: {len(expected['names'])} tensors, {len(ids)} ids")


def check():
    out = os.path.join(ROOT, "target", "gpt_roundtrip")
    m = TorchGpt(**CONFIG).double()
    state = load_safetensors(os.path.join(out, "rust_gpt.safetensors"))
    m.load_state_dict(state, strict=True)
    rust = json.load(open(os.path.join(out, "rust_gpt_expected.json")))
    got = logits_of(m, rust["ids"])
    worst = max(abs(a - b) for a, b in zip(got, rust["logits"]))
    print(f"tapegrad checkpoint loaded into torch with strict=True; {len(got)} logits, "
          f"largest difference {worst:.3e}")
    assert worst < 1e-10, worst


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]]()
