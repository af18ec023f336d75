"""PyTorch peer of the training steps (the GPU check's and `npm run bench:train`'s): torchvision's
ResNet-18 with the small-image stem (3x3 stride-1 conv1, no max-pool), or with --encoder cnn
the default `supcon train` ConvNet (lib/train/encoders.ts), a projection head (features ->
features -> 128, ReLU between, L2-normalised), the SupCon loss of torch_supcon.py on two
views, SGD with momentum 0.9 and weight decay 5e-4: the step `supcon train` takes, without
the augmentation. Images per second (views counted once per image) in each precision:

  fp32  float32 convolutions and matmuls (allow_tf32 off)
  tf32  float32 tensors with TF32 (allow_tf32 on)
  bf16  float32 tensors under torch.autocast(dtype=bfloat16)

each in the default memory format and channels_last.

Usage: python3 torch_resnet_step.py --batch 512 --size 32 --steps 5 --precisions fp32,tf32,bf16
Prints one JSON object a line per result ({"step": ...}) and {"torch": version, "gpu": name}
last. --device cpu runs the same code on the CPU (wall clock) in fp32 on --threads threads;
--profile adds each step row's self CPU time by kind of op ("kinds", ms per step, from
torch.profiler over two more steps).
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from torch_supcon import median, set_precision, supcon_loss


def conv_net(channels, size):
    """lib/train/encoders.ts ConvNet: three 3x3 convolutions + BN + ReLU, then Linear + BN + ReLU."""
    def block(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    side = (((size - 1) // 2 + 1) - 1) // 2 + 1
    return nn.Sequential(*block(channels, 32, 1), *block(32, 64, 2), *block(64, 128, 2), nn.Flatten(),
                         nn.Linear(128 * side * side, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(inplace=True)), 256


def model_for(device, encoder_name="resnet18", channels=3, size=32):
    if encoder_name == "cnn":
        encoder, dim = conv_net(channels, size)
    else:
        encoder, dim = torchvision.models.resnet18(num_classes=10), 512
        encoder.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        encoder.maxpool = nn.Identity()
        encoder.fc = nn.Identity()
    head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 128))
    return nn.Sequential(encoder, head).to(device)


# Kinds of ops by name (self CPU time), the breakdown the package's benchmark gives.
KINDS = [("conv backward", ("convolution_backward", "conv2d_backward", "convolutionbackward")),
         ("conv forward", ("convolution", "conv2d")),
         ("batch norm", ("batch_norm", "batchnorm")),
         ("relu", ("relu", "threshold")),
         ("pooling", ("pool", "mean")),
         ("linear", ("addmm", "aten::mm", "linear", "mmbackward", "addmmbackward")),
         ("optimizer", ("optimizer", "_foreach", "sgd")),
         ("zero grad", ("zero_",))]


def kind_of(name):
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def profile_kinds(step, steps=2):
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    kinds = {}
    for evt in prof.key_averages():
        kind = kind_of(evt.key)
        kinds[kind] = kinds.get(kind, 0.0) + evt.self_cpu_time_total / 1000 / steps
    return kinds


def time_steps(batch, size, steps, precision, channels_last, device, encoder_name="resnet18", channels=3, with_profile=False):
    torch.manual_seed(0)
    model = model_for(device, encoder_name, channels, size)
    images = torch.randn(2 * batch, channels, size, size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(batch, device=device) % 10
    # On the CPU one update per parameter, as ours (torch 1.13's default; the profiler's names stay apart).
    foreach = False if device == "cpu" else None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, foreach=foreach)
    autocast = set_precision(precision)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=autocast, enabled=autocast is not None):
            z = model(images)
        z = F.normalize(z.float(), dim=1)
        # rows: view 0 of every sample, then view 1 (as the package's [n * v, d] with views 2)
        loss = supcon_loss(torch.stack([z[:batch], z[batch:]], dim=1), labels)
        loss.backward()
        optimizer.step()
        return loss

    step()  # warm-up: cuDNN picks its algorithms
    times = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step()
        float(loss)  # the loss read back, as ours
        times.append((time.perf_counter() - t0) * 1000)
    ms = median(times)
    row = {"encoder": encoder_name, "batch": batch, "size": size, "precision": precision, "channelsLast": channels_last,
           "ms": ms, "imagesPerSecond": batch / (ms / 1000), "loss": float(loss)}
    if with_profile:
        row["kinds"] = profile_kinds(step)
    return row


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--precisions", default="fp32,tf32,bf16")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--encoder", default="resnet18", choices=["resnet18", "cnn"])
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("torch has no CUDA device", file=sys.stderr)
        sys.exit(2)
    if a.device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    for precision in a.precisions.split(","):
        if a.device == "cpu" and precision != "fp32":
            continue
        for channels_last in (False, True):
            try:
                row = time_steps(a.batch, a.size, a.steps, precision, channels_last, a.device, a.encoder, a.channels, a.profile)
                print(json.dumps({"step": row}), flush=True)
            except Exception as e:  # an out-of-memory or unsupported mode is a row, not the end
                print(json.dumps({"step": {"precision": precision, "channelsLast": channels_last, "error": str(e)[:200]}}), flush=True)
    gpu = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu"
    print(json.dumps({"torch": torch.__version__, "gpu": gpu, "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
