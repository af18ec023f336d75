"""PyTorch peer for the GPU check: the SupCon loss written from its formula, as the
reference implementation computes it (materialising the B x B logits), in eager mode and
under torch.compile, timed with CUDA events on the same GPU.

Usage: python3 torch_supcon.py --sizes 8192,32768 --d 128 --repeats 3 > result.json
Prints one JSON object: {"torch": version, "gpu": name, "rows": [...]}.
"""
import argparse
import json
import sys

import torch


def supcon_loss(features, labels, temperature=0.1, base_temperature=0.07):
    # features [n, v, d], L2-normalised; labels [n]. contrast_mode 'all', variant 'out'.
    n, v, _ = features.shape
    mask = torch.eq(labels.view(-1, 1), labels.view(1, -1)).float()
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
    logits = torch.matmul(contrast, contrast.T) / temperature
    logits_max, _ = torch.max(logits, dim=1, keepdim=True)
    logits = logits - logits_max.detach()
    mask = mask.repeat(v, v)
    logits_mask = torch.ones_like(mask)
    logits_mask.fill_diagonal_(0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    pos = mask.sum(1)
    mean_log_prob_pos = (mask * log_prob).sum(1) / torch.where(pos > 0, pos, torch.ones_like(pos))
    return (-(temperature / base_temperature) * mean_log_prob_pos).mean()


def time_one(fn, features, labels, repeats):
    times = []
    for _ in range(repeats + 1):  # the first run warms up (and compiles)
        x = features.detach().requires_grad_(True)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        loss = fn(x, labels)
        loss.backward()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times = sorted(times[1:])
    return times[len(times) // 2], float(loss)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="8192,32768")
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--compile-max", type=int, default=32768, help="largest B to run under torch.compile")
    parser.add_argument("--gemm", type=int, default=0, help="also time torch.matmul at this size cubed")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    rows = []
    compiled = torch.compile(supcon_loss)
    for B in [int(s) for s in args.sizes.split(",")]:
        n = B // 2
        g = torch.Generator(device=dev).manual_seed(0)
        x = torch.nn.functional.normalize(torch.randn(n, 2, args.d, device=dev, generator=g), dim=2)
        labels = torch.arange(n, device=dev) % args.classes
        modes = [("eager", supcon_loss)] + ([("compile", compiled)] if B <= args.compile_max else [])
        for mode, fn in modes:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            try:
                ms, loss = time_one(fn, x, labels, args.repeats)
                peak = torch.cuda.max_memory_allocated() - base
                rows.append({"B": B, "d": args.d, "mode": mode, "ms": ms, "loss": loss, "peakExtraBytes": peak})
            except torch.cuda.OutOfMemoryError as e:
                rows.append({"B": B, "d": args.d, "mode": mode, "error": "out of memory: " + str(e).split("\n")[0]})
            except Exception as e:  # a failed compile must not hide the other results
                rows.append({"B": B, "d": args.d, "mode": mode, "error": type(e).__name__ + ": " + str(e).split("\n")[0]})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    gemm = []
    if args.gemm > 0:
        g = torch.Generator(device=dev).manual_seed(1)
        a = torch.rand(args.gemm, args.gemm, device=dev, generator=g) - 0.5
        b = torch.rand(args.gemm, args.gemm, device=dev, generator=g) - 0.5
        for precision, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            x, y = a.to(dtype), b.to(dtype)
            torch.matmul(x, y)
            times = []
            for _ in range(5):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                torch.matmul(x, y)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            gemm.append({"precision": precision, "ms": sorted(times)[len(times) // 2]})
            print(json.dumps(gemm[-1]), file=sys.stderr, flush=True)
        torch.backends.cuda.matmul.allow_tf32 = False
    print(json.dumps({"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "rows": rows, "gemm": gemm}))


if __name__ == "__main__":
    main()
