"""PyTorch peer of the GPU check's training step: torchvision's ResNet-18 with the small-image
stem (3x3 stride-1 conv1, no max-pool), a projection head (512 -> 512 -> 128, ReLU between,
L2-normalised), the SupCon loss of torch_supcon.py on two views, SGD with momentum 0.9 and
weight decay 5e-4: the step `supcon train --encoder resnet18` takes. Images per second
(views counted once per image) in each precision:

  fp32  float32 convolutions and matmuls (allow_tf32 off)
  tf32  float32 tensors with TF32 (allow_tf32 on)
  bf16  float32 tensors under torch.autocast(dtype=bfloat16)

each in the default memory format and channels_last.

Usage: python3 torch_resnet_step.py --batch 512 --size 32 --steps 5 --precisions fp32,tf32,bf16
Prints one JSON object a line per result ({"step": ...}) and {"torch": version, "gpu": name}
last. --device cpu runs the same code on the CPU (wall clock), to check this script.
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


def model_for(device):
    encoder = torchvision.models.resnet18(num_classes=10)
    encoder.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    encoder.maxpool = nn.Identity()
    encoder.fc = nn.Identity()
    head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))
    return nn.Sequential(encoder, head).to(device)


def time_steps(batch, size, steps, precision, channels_last, device):
    torch.manual_seed(0)
    model = model_for(device)
    images = torch.randn(2 * batch, 3, size, size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(batch, device=device) % 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
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
    return {"batch": batch, "size": size, "precision": precision, "channelsLast": channels_last,
            "ms": ms, "imagesPerSecond": batch / (ms / 1000), "loss": float(loss)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--precisions", default="fp32,tf32,bf16")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("torch has no CUDA device", file=sys.stderr)
        sys.exit(2)
    if a.device == "cpu":
        torch.set_num_threads(torch.get_num_threads())
    for precision in a.precisions.split(","):
        if a.device == "cpu" and precision != "fp32":
            continue
        for channels_last in (False, True):
            try:
                print(json.dumps({"step": time_steps(a.batch, a.size, a.steps, precision, channels_last, a.device)}), flush=True)
            except Exception as e:  # an out-of-memory or unsupported mode is a row, not the end
                print(json.dumps({"step": {"precision": precision, "channelsLast": channels_last, "error": str(e)[:200]}}), flush=True)
    gpu = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu"
    print(json.dumps({"torch": torch.__version__, "gpu": gpu}), flush=True)


if __name__ == "__main__":
    main()
