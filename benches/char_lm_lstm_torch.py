"""PyTorch side of examples/char_lm_lstm.rs: Embedding(65, 64) -> LSTM(64, 256, batch_first)
-> Linear(256, 65) trained on Tiny Shakespeare with char_lm's recipe
(../../shared/bench/char_lm_torch.py: first 90% trains, last 10% validates; 16 random
windows of 65 characters per batch, each from a zero state; AdamW lr 1e-3, betas 0.9/0.99,
weight decay 0.01; gradient norm clipped to 1). Prints the validation loss in nats per
character (mean cross-entropy over every non-overlapping 64-character validation window).

    PEERS_THREADS=2 python benches/char_lm_lstm_torch.py [STEPS] [SEED]   # 2000 and 0
"""
import gzip
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, BLOCK, EMBED, HIDDEN = 16, 64, 64, 256


class CharLstm(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, EMBED)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, vocab)

    def forward(self, ids):
        h, _ = self.lstm(self.embed(ids))
        return self.head(h)


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    text = gzip.open(os.path.join(HERE, "..", "data", "tinyshakespeare.txt.gz"), "rt").read()
    chars = sorted(set(text))
    ix = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([ix[c] for c in text], dtype=torch.long)
    cut = int(0.9 * len(data))
    train, val = data[:cut], data[cut:]
    torch.manual_seed(seed)
    m = CharLstm(len(chars))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
    F = torch.nn.functional
    t0 = time.perf_counter()
    for step in range(steps):
        starts = torch.randint(0, len(train) - BLOCK - 1, (BATCH,))
        w = torch.stack([train[s:s + BLOCK + 1] for s in starts])
        loss = F.cross_entropy(m(w[:, :-1]).reshape(-1, len(chars)), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if step % 500 == 0:
            print(f"step {step} train loss {loss.item():.4f}", file=sys.stderr)
    train_s = time.perf_counter() - t0
    n = (len(val) - 1) // BLOCK
    with torch.no_grad():
        total = 0.0
        for i in range(0, n, 64):
            rows = [val[j * BLOCK: j * BLOCK + BLOCK + 1] for j in range(i, min(n, i + 64))]
            w = torch.stack(rows)
            total += F.cross_entropy(m(w[:, :-1]).reshape(-1, len(chars)), w[:, 1:].reshape(-1),
                                     reduction="sum").item()
    print(f"char_lm_lstm torch: steps {steps} seed {seed} val loss {total / (n * BLOCK):.4f} "
          f"nats/char, training {train_s:.1f} s")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("PEERS_THREADS", "2")))
    main()
