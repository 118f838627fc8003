"""tests/onnx/torch_models.py DIR - PyTorch models exported with torch.onnx.export
for tests/onnx.sh's import tests (Debian's python3-torch, /usr/bin/python3).

For each NAME in mlp (with GELU), lenet_bn, resblock, rnn (LSTM + GRU): DIR/NAME.onnx, DIR/NAME.csv (input
rows, one flattened sample per line, with a header) and DIR/NAME.expect.csv
(PyTorch's softmax probabilities per row). Weights are random (seeded) and
batch-norm statistics are set to random values, so nothing is trivial.
LeNet is exported with TrainingMode.PRESERVE (of a model in eval mode):
EVAL would fold its batch norms into the convolutions, and the test wants
its BatchNormalization nodes."""
import os
import sys
import warnings

import torch
from torch import nn

d = sys.argv[1]
torch.manual_seed(0)


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c) * 0.5)
            mod.running_var.copy_(torch.rand(c) + 0.5)
            mod.weight.data.copy_(torch.rand(c) + 0.5)
            mod.bias.data.copy_(torch.randn(c) * 0.2)


class Recurrent(nn.Module):
    """LSTM (the sequence) into GRU (the last state) into a classifier, batch first."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 6, batch_first=True)
        self.gru = nn.GRU(6, 5, batch_first=True)
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        y, _ = self.lstm(x)
        _, h = self.gru(y)
        return self.fc(h[-1])


class ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(8))
        self.head = nn.Sequential(nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(8, 5))

    def forward(self, x):
        y = self.stem(x)
        return self.head(y + self.body(y))


models = {
    "mlp": (nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 8), nn.GELU(),
                          nn.Dropout(0.3), nn.Linear(8, 3)), [4]),
    "lenet_bn": (nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                               nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)),
                 [1, 28, 28]),
    "resblock": (ResBlock(), [3, 8, 8]),
    "rnn": (Recurrent(), [7, 3]),
}
for name, (m, shape) in models.items():
    randomize_bn(m)
    m.eval()
    x = torch.randn([16] + shape)
    with torch.no_grad():
        p = torch.softmax(m(x), dim=1)
    warnings.simplefilter("ignore")  # the exporter's notes on RNNs with a batch size
    torch.onnx.export(m, x, os.path.join(d, name + ".onnx"), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE if name == "lenet_bn" else torch.onnx.TrainingMode.EVAL,
                      do_constant_folding=name != "lenet_bn")
    flat = x.reshape(len(x), -1)
    with open(os.path.join(d, name + ".csv"), "w") as f:
        f.write(",".join("x%d" % i for i in range(flat.shape[1])) + "\n")
        for r in flat.tolist():
            f.write(",".join(repr(v) for v in r) + "\n")
    with open(os.path.join(d, name + ".expect.csv"), "w") as f:
        for r in p.tolist():
            f.write(",".join(repr(v) for v in r) + "\n")
