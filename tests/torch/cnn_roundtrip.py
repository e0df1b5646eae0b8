"""PyTorch side of the convolutional checkpoint round trip (needs torch; not run in CI).

    cargo build --release --example cnn_torch_interop
    /root/torch-venv/bin/python tests/torch/cnn_roundtrip.py

1. Rust trains a small CNN (Conv2d, BatchNorm2d, MaxPool2d, grouped dilated
   Conv2d without bias, AvgPool2d, Flatten, Linear, BatchNorm1d) for three steps and
   saves it; PyTorch loads it into the same torch.nn.Sequential with
   load_state_dict(strict=True) and must reproduce Rust's evaluation output.
2. PyTorch trains that model three more steps (changing weights and running
   statistics) and saves it; Rust loads it and must reproduce PyTorch's output.

The safetensors files are read and written here with a few lines of struct/json,
so only torch is needed.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "examples", "cnn_torch_interop")
DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[s:e]), dtype=DTYPES[info["dtype"]])
        out[name] = (t.reshape(info["shape"]).clone(), info["dtype"])
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def model():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32, 6), nn.BatchNorm1d(6))


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([BIN, "save", d], check=True)
        state = read_safetensors(os.path.join(d, "model.safetensors"))
        print("Rust checkpoint:")
        for k, (t, dt) in state.items():
            print(f"  {k:28s} {dt} {tuple(t.shape)}")
        m = model()
        ours = m.state_dict()
        assert set(ours) == set(state), (sorted(ours), sorted(state))
        for k, v in ours.items():
            assert v.dtype == state[k][0].dtype, (k, v.dtype, state[k][0].dtype)
        m.load_state_dict({k: t for k, (t, _) in state.items()}, strict=True)
        m.eval()
        io = read_safetensors(os.path.join(d, "io.safetensors"))
        x, y_rust = io["input"][0], io["output"][0]
        with torch.no_grad():
            y = m(x)
        err1 = (y - y_rust).abs().max().item()
        print(f"Rust -> PyTorch: max |y_torch - y_rust| = {err1:.3g} (scale {y.abs().max().item():.3g})")

        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=0.05)
        for _ in range(3):
            xb = torch.randn(8, 3, 16, 16)
            loss = (m(xb) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        write_safetensors(os.path.join(d, "torch_model.safetensors"), m.state_dict())
        subprocess.run([BIN, "load", d], check=True)
        y_back = read_safetensors(os.path.join(d, "rust_out.safetensors"))["output"][0]
        with torch.no_grad():
            y2 = m(x)
        err2 = (y2 - y_back).abs().max().item()
        print(f"PyTorch -> Rust: max |y_rust - y_torch| = {err2:.3g} (scale {y2.abs().max().item():.3g})")
        ok = err1 < 1e-4 and err2 < 1e-4
        print("OK" if ok else "MISMATCH")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
