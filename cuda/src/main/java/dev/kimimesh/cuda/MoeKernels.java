package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.Routing;

/**
 * Routed experts on the device: the routing (on the host) is grouped by expert into one packed upload of row indices
 * and weights; per expert the rows are gathered, run through its SwiGLU FFN (GEMV kernel for few rows, cuBLAS for
 * many) and added back weighted. Experts run in index order on one stream, so the sum order is fixed.
 */
final class MoeKernels {
    private MoeKernels() {}

    static void experts(CudaBackend be, CudaTensor x, Routing routing, ExpertWeights[] experts, CudaTensor out) {
        CudaDevice dev = be.dev;
        int h = x.cols();
        if (out.rows() != x.rows() || out.cols() != h) throw new IllegalArgumentException("moeExperts: out " + out + " for " + x);
        if (routing.rows() != x.rows()) throw new IllegalArgumentException("moeExperts: routing of " + routing.rows() + " rows for " + x);
        int e = experts.length, k = routing.topK();
        int[] count = new int[e];
        for (int r = 0; r < routing.rows(); r++) {
            for (int j = 0; j < k; j++) {
                int ex = routing.expert(r, j);
                if (ex >= 0 && ex < e && experts[ex] != null) count[ex]++;
            }
        }
        int[] offset = new int[e + 1];
        for (int i = 0; i < e; i++) offset[i + 1] = offset[i] + count[i];
        int pairs = offset[e];
        if (pairs == 0) return;
        int[] rows = new int[pairs];
        float[] weights = new float[pairs];
        int[] fill = offset.clone();
        for (int r = 0; r < routing.rows(); r++) {
            for (int j = 0; j < k; j++) {
                int ex = routing.expert(r, j);
                if (ex < 0 || ex >= e || experts[ex] == null) continue;
                rows[fill[ex]] = r;
                weights[fill[ex]++] = routing.weight(r, j);
            }
        }
        DeviceBuffer dRows = dev.ints(rows), dW = dev.floats(weights);
        for (int ex = 0; ex < e; ex++) {
            int n = count[ex];
            if (n == 0) continue;
            ExpertWeights w = experts[ex];
            int inter = w.gate().rows();
            CudaTensor xe = be.uninitialised(n, h), gate = be.uninitialised(n, inter), up = be.uninitialised(n, inter);
            CudaTensor down = be.uninitialised(n, h);
            long rp = dRows.ptr + 4L * offset[ex], wp = dW.ptr + 4L * offset[ex];
            dev.elementwise.launch("gather_rows", n, 1, 1, 256, 0, dev.stream, x.ptr(), rp, xe.ptr(), h);
            be.matmul(xe, w.gate(), gate);
            be.matmul(xe, w.up(), up);
            be.swiglu(gate, up, gate);
            be.matmul(gate, w.down(), down);
            dev.elementwise.launch("scatter_add_rows", n, 1, 1, 256, 0, dev.stream, down.ptr(), rp, wp, out.ptr(), h);
            be.release(xe);
            be.release(gate);
            be.release(up);
            be.release(down);
        }
        dev.free(dRows);
        dev.free(dW);
    }
}
