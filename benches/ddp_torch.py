"""The PyTorch side of the ddp_step workload (benches/README.md), to run next
to `examples/ddp_step.rs`:

    /root/torch-venv/bin/python benches/ddp_torch.py [WORLD]

WORLD processes (default 2) on this machine, one thread each, each training
the mlp_step model (784-512-512-10, ReLU, MSE, SGD with lr 0.01) on its own
128 random rows. DistributedDataParallel over gloo (TCP on loopback)
averages the gradients in its default buckets, overlapped with backward.
Rank 0 prints one JSON line with the median time of a step and of the same
step under no_sync() (no gradient exchange), in milliseconds. The protocol
matches ours: 20 warm-up steps, then 7 blocks of 20 steps, each block ended
by a barrier so every rank runs the same number of collectives."""
import json
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

SIZES = [784, 512, 512, 10]
BATCH = 128
LR = 0.01


def timed_blocks(step):
    for _ in range(20):
        step()
    dist.barrier()
    blocks = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(20):
            step()
        dist.barrier()
        blocks.append((time.perf_counter() - start) / 20)
    return sorted(blocks)


def rank_main(rank, world, port, out):
    torch.set_num_threads(1)
    torch.manual_seed(rank)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Sequential(*layers[:-1]))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = torch.randn(BATCH, SIZES[0]), torch.randn(BATCH, SIZES[-1])

    def synced():
        (model(x) - y).square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def local():
        with model.no_sync():
            synced()

    result = {"sync": timed_blocks(synced), "no_sync": timed_blocks(local)}
    if rank == 0:
        out.put(result)
    dist.destroy_process_group()


def main():
    world = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=rank_main, args=(r, world, port, out)) for r in range(world)]
    for p in procs:
        p.start()
    res = out.get(timeout=600)
    for p in procs:
        p.join()
    sync, local = res["sync"], res["no_sync"]
    ms = lambda s: round(s * 1e3, 4)  # noqa: E731
    print(json.dumps({
        "engine": "torch", "version": "torch " + torch.__version__, "workload": "ddp_step",
        "params": {"sizes": "784-512-512-10", "batch_per_rank": BATCH, "world": world,
                   "backend": "gloo"},
        "threads": "1 per process", "unit": "ms",
        "median": ms(sync[3]), "min": ms(sync[0]), "max": ms(sync[-1]),
        "no_sync_median": ms(local[3])}), flush=True)


if __name__ == "__main__":
    main()
