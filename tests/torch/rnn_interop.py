"""PyTorch interop for tapegrad's recurrent layers (Rnn, Lstm, Gru), both ways.

1. `python rnn_interop.py make`: builds torch.nn.LSTM / GRU / RNN with fixed
   seeds and writes crates/nn/tests/fixtures/torch_rnn{,_f32}.safetensors (their
   state_dicts under the prefixes "lstm.", "lstm32.", "gru.", "rnn.", plus the
   inputs and initial states under "input.") and torch_rnn_expected.json (each
   model's output, h_n and c_n). The Rust test crates/nn/tests/recurrent.rs
   loads them and must reproduce the outputs.
2. `python rnn_interop.py check DIR`: DIR holds what that Rust test exports
   (tapegrad_rnn{,_f32}.safetensors, tapegrad_rnn_outputs.json, written to
   $TMPDIR/tapegrad-rnn-export by `cargo test -p tapegrad-nn --test recurrent`):
   loads each tapegrad model into a fresh torch module with
   load_state_dict(strict=True) and compares torch's outputs with tapegrad's.

No safetensors package is needed: the format (8-byte header length, JSON
header, raw little-endian data) is read and written here directly.
"""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "crates", "nn", "tests", "fixtures")
DTYPES = {torch.float32: "F32", torch.float64: "F64"}
BACK = {"F32": torch.float32, "F64": torch.float64}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=BACK[info["dtype"]]).reshape(info["shape"]).clone()
    return out


def save_by_dtype(tensors, stem):
    """One file per element type (a tapegrad checkpoint holds one): STEM.safetensors
    for float64, STEM_f32.safetensors for float32."""
    for dtype, suffix in ((torch.float64, ""), (torch.float32, "_f32")):
        save_safetensors({k: v for k, v in tensors.items() if v.dtype == dtype},
                         f"{stem}{suffix}.safetensors")


def models():
    """name -> (module, batch_first, has_c); seeds fixed."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    torch.manual_seed(1)
    lstm32 = torch.nn.LSTM(3, 4)
    torch.manual_seed(2)
    gru = torch.nn.GRU(3, 4, num_layers=2).double()
    torch.manual_seed(3)
    rnn = torch.nn.RNN(3, 4, nonlinearity="relu", batch_first=True).double()
    return {"lstm": (lstm, True, True), "lstm32": (lstm32, False, True),
            "gru": (gru, False, False), "rnn": (rnn, True, False)}


def inputs(name, m, batch_first, has_c, dtype):
    """Fixed input [batch 2, seq 5, 3] (or time-major) and initial states."""
    g = torch.Generator().manual_seed(100 + len(name))
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    h0 = torch.randn(m.num_layers, 2, 4, generator=g, dtype=torch.float64)
    c0 = torch.randn(m.num_layers, 2, 4, generator=g, dtype=torch.float64)
    x, h0, c0 = x.to(dtype), h0.to(dtype), c0.to(dtype)
    return x, h0, (c0 if has_c else None)


def run(m, x, h0, c0):
    with torch.no_grad():
        out, state = m(x, (h0, c0) if c0 is not None else h0)
    if c0 is not None:
        return out, state[0], state[1]
    return out, state, None


def make():
    tensors, expected = {}, {"torch_version": torch.__version__}
    for name, (m, bf, has_c) in models().items():
        dtype = next(m.parameters()).dtype
        x, h0, c0 = inputs(name, m, bf, has_c, dtype)
        out, h, c = run(m, x, h0, c0)
        for k, v in m.state_dict().items():
            tensors[f"{name}.{k}"] = v
        tensors[f"input.{name}.x"] = x
        tensors[f"input.{name}.h0"] = h0
        if has_c:
            tensors[f"input.{name}.c0"] = c0
        expected[name] = {"repr": repr(m), "out": out.flatten().tolist(),
                          "h_n": h.flatten().tolist(),
                          "c_n": c.flatten().tolist() if c is not None else None}
    save_by_dtype(tensors, os.path.join(FIXTURES, "torch_rnn"))
    with open(os.path.join(FIXTURES, "torch_rnn_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("wrote", len(tensors), "tensors")


def check(directory):
    saved = {**load_safetensors(os.path.join(directory, "tapegrad_rnn.safetensors")),
             **load_safetensors(os.path.join(directory, "tapegrad_rnn_f32.safetensors"))}
    ours = json.load(open(os.path.join(directory, "tapegrad_rnn_outputs.json")))
    worst = 0.0
    for name, (m, bf, has_c) in models().items():
        state = {k[len(name) + 1:]: v for k, v in saved.items() if k.startswith(name + ".")}
        m.load_state_dict(state, strict=True)  # raises on any missing/extra/misshaped name
        dtype = next(m.parameters()).dtype
        x = saved[f"input.{name}.x"]
        h0 = saved[f"input.{name}.h0"]
        c0 = saved.get(f"input.{name}.c0")
        out, h, c = run(m, x, h0, c0)
        diffs = [(out.flatten() - torch.tensor(ours[name]["out"], dtype=dtype)).abs().max(),
                 (h.flatten() - torch.tensor(ours[name]["h_n"], dtype=dtype)).abs().max()]
        if c is not None:
            diffs.append((c.flatten() - torch.tensor(ours[name]["c_n"], dtype=dtype)).abs().max())
        d = max(float(v) for v in diffs)
        worst = max(worst, d)
        print(f"{name:7s} strict load ok, {dtype}, max |torch - tapegrad| = {d:.3g}")
        tol = 1e-6 if dtype == torch.float32 else 1e-12
        assert d < tol, f"{name}: outputs differ by {d}"
    print("all match; worst difference", worst)


if __name__ == "__main__":
    if sys.argv[1:2] == ["make"]:
        make()
    elif sys.argv[1:2] == ["check"] and len(sys.argv) == 3:
        check(sys.argv[2])
    else:
        sys.exit(__doc__)
