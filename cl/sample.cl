/* sample.cl - picking the next token for `nnrun generate`. */

/* One work item. probs[0..V) is a distribution; the next token is drawn
 * from p^(1/temperature) (= softmax(logits / temperature)) restricted to the
 * top_k most likely tokens (top_k <= 0: all), using the uniform number u.
 * temperature <= 0: the most likely token. Writes the token and its
 * probability under the sampling distribution. */
__kernel void sample_next(__global const float *probs, int V, float temperature, int top_k, float u,
                          __global int *out, __global float *out_p)
{
    if (get_global_id(0) != 0)
        return;
    int best = 0;
    for (int j = 1; j < V; j++)
        if (probs[j] > probs[best])
            best = j;
    if (temperature <= 0.0f) {
        out[0] = best;
        out_p[0] = 1.0f;
        return;
    }
    /* the k-th largest probability: the threshold for top-k */
    float thr = 0.0f;
    if (top_k > 0 && top_k < V) {
        float prev = INFINITY;
        int count = 0;
        while (count < top_k) {
            float m = -1.0f;
            for (int j = 0; j < V; j++)
                if (probs[j] < prev && probs[j] > m)
                    m = probs[j];
            if (m < 0.0f)
                break;
            for (int j = 0; j < V; j++)
                if (probs[j] == m)
                    count++;
            prev = m;
            thr = m;
        }
    }
    float inv = 1.0f / temperature, s = 0.0f;
    /* scale by the largest probability first so that p^(1/T) cannot underflow to all zeros */
    float pmax = probs[best];
    for (int j = 0; j < V; j++)
        if (probs[j] >= thr && probs[j] > 0.0f)
            s += pow(probs[j] / pmax, inv);
    float target = u * s, acc = 0.0f;
    int pick = best;
    float wp = 1.0f;
    for (int j = 0; j < V; j++) {
        if (!(probs[j] >= thr && probs[j] > 0.0f))
            continue;
        float w = pow(probs[j] / pmax, inv);
        acc += w;
        pick = j;
        wp = w;
        if (acc >= target)
            break;
    }
    out[0] = pick;
    out_p[0] = s > 0.0f ? wp / s : 1.0f;
}
