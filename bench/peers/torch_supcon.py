"""PyTorch peer for the GPU check: the SupCon loss written from its formula, as the
reference implementation computes it (materialising the B x B logits), in eager mode and
under torch.compile, timed with CUDA events on the same GPU, in each precision the check
times ours in:

  fp32  float32 matmuls (allow_tf32 off)
  tf32  float32 tensors with TF32 matmuls (allow_tf32 on)
  bf16  float32 tensors under torch.autocast(dtype=bfloat16)

Usage: python3 torch_supcon.py --sizes 8192,32768 --d 128 --repeats 3 \
           --precisions fp32,tf32,bf16 --compile-sizes 32768 --gemm 8192
Prints one JSON object a line as each result comes ({"row": ...}, {"gemm": ...}), and
{"torch": version, "gpu": name} last, so that a run stopped early keeps what it finished.
--device cpu runs the same code on the CPU (wall clock), to check this script without a GPU.
"""
import argparse
import json
import sys
import time

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


def set_precision(precision):
    """TF32 matmuls on for 'tf32' only; returns the autocast dtype (bf16) or None."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return torch.bfloat16 if precision == "bf16" else None


def median(xs):
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 == 1 else (s[mid - 1] + s[mid]) / 2


class Timer:
    """CUDA events on a GPU, the wall clock (after a synchronise) on the CPU."""

    def __init__(self, dev):
        self.cuda = dev.type == "cuda"

    def start(self):
        if self.cuda:
            self.a, self.b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.a.record()
        else:
            self.t0 = time.perf_counter()

    def stop_ms(self):
        if self.cuda:
            self.b.record()
            torch.cuda.synchronize()
            return self.a.elapsed_time(self.b)
        return (time.perf_counter() - self.t0) * 1000


def time_one(fn, features, labels, repeats, autocast, dev):
    timer = Timer(dev)
    times = []
    for _ in range(repeats + 1):  # the first run warms up (and compiles)
        x = features.detach().requires_grad_(True)
        timer.start()
        with torch.autocast(device_type=dev.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            loss = fn(x, labels)
        loss.backward()
        times.append(timer.stop_ms())
    return median(times[1:]), float(loss)


def emit(obj):
    print(json.dumps(obj), flush=True)
    print(json.dumps(obj), file=sys.stderr, flush=True)


def sizes_of(text):
    return [int(s) for s in text.split(",") if s.strip()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="8192,32768")
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--precisions", default="fp32,tf32,bf16")
    parser.add_argument("--compile-sizes", default="", help="the B to run under torch.compile too (comma-separated)")
    parser.add_argument("--gemm", type=int, default=0, help="also time torch.matmul at this size cubed")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()
    precisions = [p for p in args.precisions.split(",") if p]
    for p in precisions:
        if p not in ("fp32", "tf32", "bf16"):
            parser.error(f"--precisions: expected fp32, tf32 or bf16, got '{p}'")
    compile_sizes = sizes_of(args.compile_sizes)
    dev = torch.device(args.device)
    compiled = None
    for B in sizes_of(args.sizes):
        n = B // 2
        g = torch.Generator(device=dev).manual_seed(0)
        x = torch.nn.functional.normalize(torch.randn(n, 2, args.d, device=dev, generator=g), dim=2)
        labels = torch.arange(n, device=dev) % args.classes
        for precision in precisions:
            autocast = set_precision(precision)
            modes = ["eager"] + (["compile"] if B in compile_sizes else [])
            for mode in modes:
                row = {"B": B, "d": args.d, "mode": mode, "precision": precision}
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                try:
                    if mode == "compile" and compiled is None:
                        compiled = torch.compile(supcon_loss)
                    fn = supcon_loss if mode == "eager" else compiled
                    ms, loss = time_one(fn, x, labels, args.repeats, autocast, dev)
                    row.update({"ms": ms, "loss": loss})
                    if dev.type == "cuda":
                        row["peakExtraBytes"] = torch.cuda.max_memory_allocated() - base
                except torch.cuda.OutOfMemoryError as e:
                    row["error"] = "out of memory: " + str(e).split("\n")[0]
                except Exception as e:  # a failed compile must not hide the other results
                    row["error"] = type(e).__name__ + ": " + str(e).split("\n")[0]
                emit({"row": row})
    if args.gemm > 0:
        g = torch.Generator(device=dev).manual_seed(1)
        a = torch.rand(args.gemm, args.gemm, device=dev, generator=g) - 0.5
        b = torch.rand(args.gemm, args.gemm, device=dev, generator=g) - 0.5
        timer = Timer(dev)
        for precision in precisions:
            set_precision(precision)
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            x, y = a.to(dtype), b.to(dtype)
            torch.matmul(x, y)
            times = []
            for _ in range(5):
                timer.start()
                torch.matmul(x, y)
                times.append(timer.stop_ms())
            emit({"gemm": {"precision": precision, "ms": median(times)}})
    set_precision("fp32")
    gpu = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    emit({"torch": torch.__version__, "gpu": gpu})


if __name__ == "__main__":
    main()
