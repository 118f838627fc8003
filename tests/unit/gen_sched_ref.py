#!/usr/bin/python3
"""Per-epoch learning rates from PyTorch's torch.optim.lr_scheduler for the
cases nnrun's schedules (src/schedule.c) are tested on. Writes one JSON object
per line to stdout; the output is committed as tests/unit/sched_ref.jsonl and
read by tests/unit/test_sched.c, so the tests need no torch.

    OMP_WAIT_POLICY=passive /usr/bin/python3 tests/unit/gen_sched_ref.py > tests/unit/sched_ref.jsonl

Each line: {"name", "lr" (the base lr), "epochs", "schedule" (nnrun's
train.lr_schedule object), "metrics" (what the monitored value is at the end
of each epoch; plateau only), "expect" (the lr of each epoch, PyTorch's)}.

Semantics modelled (PyTorch, scheduler.step() once per epoch, after it):
  - warmup: LinearLR(start_factor, total_iters=warmup_epochs) in front of the
    schedule through SequentialLR(milestones=[warmup_epochs]);
  - plateau with warmup: SequentialLR does not take ReduceLROnPlateau, so the
    LinearLR steps through the warmup epochs, then ReduceLROnPlateau takes the
    metrics of the epochs after the warmup (the warmup epochs' are ignored).
"""
import json
import sys

import torch
from torch.optim import lr_scheduler as L


def make(opt, sc, epochs, warmup):
    t = sc["type"]
    if t == "constant":
        return L.LambdaLR(opt, lambda e: 1.0)
    if t == "step":
        return L.StepLR(opt, step_size=sc["step_size"], gamma=sc.get("gamma", 0.1))
    if t == "multistep":
        return L.MultiStepLR(opt, milestones=sc["milestones"], gamma=sc.get("gamma", 0.1))
    if t == "exponential":
        return L.ExponentialLR(opt, gamma=sc["gamma"])
    if t == "cosine":
        return L.CosineAnnealingLR(opt, T_max=sc.get("t_max", max(1, epochs - warmup)), eta_min=sc.get("eta_min", 0.0))
    raise ValueError(t)


def plateau(opt, sc):
    mon = sc.get("monitor", "val_loss")
    mode = "max" if mon.endswith("accuracy") else "min"
    return L.ReduceLROnPlateau(opt, mode=mode, factor=sc.get("factor", 0.1), patience=sc.get("patience", 10),
                               threshold=sc.get("threshold", 1e-4), threshold_mode=sc.get("threshold_mode", "rel"),
                               cooldown=sc.get("cooldown", 0), min_lr=sc.get("min_lr", 0.0))


def run(name, lr, epochs, sc, metrics=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    warmup = sc.get("warmup_epochs", 0)
    start = sc.get("warmup_start_factor", 1.0 / 3)
    out = []
    if sc["type"] == "plateau":
        lin = L.LinearLR(opt, start_factor=start, total_iters=warmup) if warmup else None
        pl = None
        for e in range(epochs):
            if e < warmup:
                out.append(opt.param_groups[0]["lr"])
                opt.step()
                lin.step()
                continue
            if pl is None:
                pl = plateau(opt, sc)
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            pl.step(metrics[e])
    else:
        if warmup:
            lin = L.LinearLR(opt, start_factor=start, total_iters=warmup)
            main = make(opt, sc, epochs, warmup)
            s = L.SequentialLR(opt, [lin, main], milestones=[warmup])
        else:
            s = make(opt, sc, epochs, 0)
        for e in range(epochs):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
    case = {"name": name, "lr": lr, "epochs": epochs, "schedule": sc}
    if metrics is not None:
        case["metrics"] = metrics
    case["expect"] = out
    print(json.dumps(case))


# a validation loss that falls, stalls, dips within and beyond the threshold
LOSS = [1.0, 0.9, 0.9, 0.95, 0.91, 0.89995, 0.8999, 0.85, 0.86, 0.87, 0.88, 0.84, 0.85, 0.86, 0.86, 0.86, 0.7, 0.7,
        0.71, 0.72, 0.73, 0.74, 0.69, 0.75, 0.76, 0.77, 0.78, 0.79, 0.8, 0.81]
ACC = [0.5, 0.6, 0.6, 0.59, 0.65, 0.65005, 0.66, 0.66, 0.66, 0.7, 0.69, 0.68, 0.68, 0.71, 0.71, 0.71, 0.71, 0.72, 0.72,
       0.72]


def main():
    run("constant", 0.05, 6, {"type": "constant"})
    run("step", 0.1, 12, {"type": "step", "step_size": 3, "gamma": 0.5})
    run("step_default_gamma", 0.01, 8, {"type": "step", "step_size": 2})
    run("multistep", 0.1, 12, {"type": "multistep", "milestones": [2, 5, 9], "gamma": 0.3})
    run("multistep_default_gamma", 1.0, 10, {"type": "multistep", "milestones": [1, 8]})
    run("exponential", 0.01, 15, {"type": "exponential", "gamma": 0.9})
    run("cosine_default_tmax", 0.1, 20, {"type": "cosine"})
    run("cosine_past_tmax", 0.1, 20, {"type": "cosine", "t_max": 7, "eta_min": 0.001})
    run("warmup_constant", 0.05, 8, {"type": "constant", "warmup_epochs": 5, "warmup_start_factor": 0.2})
    run("warmup_step", 0.1, 14, {"type": "step", "step_size": 3, "gamma": 0.5, "warmup_epochs": 3,
                                 "warmup_start_factor": 0.1})
    run("warmup_multistep", 0.1, 12, {"type": "multistep", "milestones": [2, 5], "gamma": 0.1, "warmup_epochs": 2,
                                      "warmup_start_factor": 0.25})
    run("warmup_exponential", 0.003, 12, {"type": "exponential", "gamma": 0.8, "warmup_epochs": 4,
                                          "warmup_start_factor": 0.01})
    run("warmup_cosine", 0.1, 20, {"type": "cosine", "warmup_epochs": 5})
    run("warmup_cosine_eta_min", 0.1, 16, {"type": "cosine", "eta_min": 0.01, "t_max": 6, "warmup_epochs": 1,
                                           "warmup_start_factor": 0.5})
    run("plateau", 0.1, len(LOSS), {"type": "plateau", "patience": 2, "factor": 0.5}, LOSS)
    run("plateau_defaults", 0.1, len(LOSS), {"type": "plateau"}, LOSS)
    run("plateau_patience0", 0.1, len(LOSS), {"type": "plateau", "patience": 0, "factor": 0.5}, LOSS)
    run("plateau_cooldown", 0.1, len(LOSS), {"type": "plateau", "patience": 1, "factor": 0.5, "cooldown": 2}, LOSS)
    run("plateau_min_lr", 0.1, len(LOSS), {"type": "plateau", "patience": 0, "factor": 0.3, "min_lr": 0.004}, LOSS)
    run("plateau_abs", 0.1, len(LOSS), {"type": "plateau", "patience": 1, "factor": 0.5, "threshold": 0.02,
                                        "threshold_mode": "abs"}, LOSS)
    run("plateau_rel_big", 0.1, len(LOSS), {"type": "plateau", "patience": 1, "factor": 0.5, "threshold": 0.05}, LOSS)
    run("plateau_max", 0.1, len(ACC), {"type": "plateau", "monitor": "val_accuracy", "patience": 1, "factor": 0.5},
        ACC)
    run("plateau_max_abs", 0.1, len(ACC), {"type": "plateau", "monitor": "accuracy", "patience": 1, "factor": 0.5,
                                           "threshold": 0.01, "threshold_mode": "abs", "cooldown": 1}, ACC)
    run("plateau_tiny_lr", 1e-7, len(LOSS), {"type": "plateau", "patience": 0, "factor": 0.5}, LOSS)
    run("warmup_plateau", 0.1, len(LOSS), {"type": "plateau", "patience": 1, "factor": 0.5, "warmup_epochs": 4,
                                           "warmup_start_factor": 0.1}, LOSS)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
