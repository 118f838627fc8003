/* commands.c - the command table (names, usage, one-line summaries). */
#include "cli.h"

const nn_cmd nn_cmds[] = {
    {"train", "MODEL.json [options]", "Train the model described by MODEL.json and write model.bin.", nn_cmd_train},
    {"eval", "MODEL.bin [DATA] [options]",
     "Evaluate a model on its test data (or DATA): per-class report; gate CI with --min-accuracy.",
     nn_cmd_eval},
    {"infer", "MODEL.bin INPUT... [options]", "Predict for images or CSV rows; one line (or JSON object) per input.",
     nn_cmd_infer},
    {"devices", "[options]", "List OpenCL devices; the default one is marked with '*'.", nn_cmd_devices},
    {"summary", "MODEL.json|MODEL.bin [options]", "Layers, output shapes, parameters and FLOPs per sample.",
     nn_cmd_summary},
    {"bench", "MODEL.json [options]", "Measure training samples/s, inference latency/throughput, per-layer times.",
     nn_cmd_bench},
    {"generate", "MODEL.bin --prompt TEXT [options]", "Generate text with a model trained on a \"text\" source.",
     nn_cmd_generate},
    {"tune", "[MODEL.json...] [options]", "Tune CLBlast's GEMM for this device on the model's shapes; later runs use it.",
     nn_cmd_tune},
    {"export", "MODEL.bin MODEL.onnx [options]", "Write a trained model as ONNX (opset 17) for onnxruntime and others.",
     nn_cmd_export},
    {"import", "MODEL.onnx MODEL.bin [options]", "Convert an ONNX model (e.g. from torch.onnx.export) to model.bin.",
     nn_cmd_import},
    {NULL, NULL, NULL, NULL},
};
