/* registry.h - one line per layer type: X(c_identifier). The type's table is
 * `nn_layer_<id>` defined in src/layers/<file>.c. Order is irrelevant (types
 * are serialised by name). */
#define NN_LAYER_LIST(X) \
    X(dense)             \
    X(relu)              \
    X(sigmoid)           \
    X(tanh)              \
    X(softmax)           \
    X(flatten)           \
    X(conv2d)            \
    X(maxpool)           \
    X(avgpool)           \
    X(global_avgpool)    \
    X(dropout)           \
    X(leaky_relu)        \
    X(elu)               \
    X(gelu)              \
    X(batchnorm)         \
    X(add)               \
    X(concat)            \
    X(embedding)         \
    X(layernorm)         \
    X(attention)         \
    X(lstm)              \
    X(gru)               \
    X(denormalize)
