"""tests/onnx/hostile.py DIR - malformed and hostile ONNX files for tests/onnx.sh
(python3-onnx's helper, no checking: these files are wrong on purpose).
Each DIR/NAME.onnx is paired, in tests/onnx.sh, with the message nnrun
must give."""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

d = sys.argv[1]


def save(name, nodes, inits, inp=None, out="y", opset=13):
    inp = inp or helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    g = helper.make_graph(nodes, name, [inp], [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 3])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    open(os.path.join(d, name + ".onnx"), "wb").write(m.SerializeToString())


w = numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
gemm = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
# the baseline: valid
save("ok", [gemm], [w])
# weights stored as doubles / int32
save("double", [gemm], [numpy_helper.from_array(np.ones((3, 4), np.float64), "w")])
save("int32", [gemm], [numpy_helper.from_array(np.ones((3, 4), np.int32), "w")])
# dims promising 2^40 values with no data behind them
def raw_tensor(dims, values):
    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend(dims)
    t.float_data.extend(values)
    return t


save("huge_dims", [gemm], [raw_tensor([1 << 20, 1 << 20], [])])
# dims that disagree with the data
save("short_data", [gemm], [raw_tensor([3, 4], [1.0] * 5)])
# an input of 2^30 features
save("huge_input", [gemm], [w], inp=helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1 << 30]))
# an integer input
save("int_input", [gemm], [w], inp=helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 4]))
# a cycle: a reads b, b reads a
save("cycle", [helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2"),
               helper.make_node("Gemm", ["b", "w"], ["y"], name="fc", transB=1)], [w])
# an operator nnrun does not have
save("unsupported", [helper.make_node("HardSwish", ["x"], ["h"], name="act0"),
                     helper.make_node("Gemm", ["h", "w"], ["y"], name="fc", transB=1)], [w])
# a Split that is not nnrun's attention
save("split", [helper.make_node("Split", ["x"], ["a", "b"], name="sp", axis=1),
               helper.make_node("Gemm", ["a", "w"], ["y"], name="fc", transB=1)], [w])
# more nodes than nnrun imports (each is validated with the model so far)
save("too_many", [helper.make_node("Relu", ["x" if i == 0 else "r%d" % (i - 1)], ["r%d" % i]) for i in range(1000)]
     + [helper.make_node("Gemm", ["r999", "w"], ["y"], name="fc", transB=1)], [w])
# a value produced twice
save("twice", [helper.make_node("Relu", ["x"], ["h"], name="r1"), helper.make_node("Relu", ["x"], ["h"], name="r2"),
               helper.make_node("Gemm", ["h", "w"], ["y"], name="fc", transB=1)], [w])
# a weight that does not fit the input
save("mismatch", [gemm], [numpy_helper.from_array(np.ones((3, 5), np.float32), "w")])
# truncated: the valid file cut in half; garbage: not protobuf at all
ok = open(os.path.join(d, "ok.onnx"), "rb").read()
open(os.path.join(d, "truncated.onnx"), "wb").write(ok[:len(ok) // 2])
open(os.path.join(d, "garbage.onnx"), "wb").write(b"\xff\xff\xff\xff this is not protobuf \x00\x01" * 8)
open(os.path.join(d, "empty.onnx"), "wb").write(b"")
