package dev.kimimesh.gateway.bench;

import dev.kimimesh.client.KimiMeshClient;
import dev.kimimesh.client.TokenListener;
import dev.kimimesh.proto.v1.GenerateResponse;
import dev.kimimesh.proto.v1.SamplingParams;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Benchmark (not a test): {@code batch} concurrent greedy streams through a running gateway (SDK, gRPC); reports the
 * time per output token (TPOT: mean gap between a stream's tokens after its first), TTFT, aggregate decode
 * tokens/s and the gateway's per-hop latency percentiles. Usage: MeshBench HOST:PORT BATCH TOKENS PROMPT_LEN [WARMUP_S].
 * The measured round follows full-length warm-up rounds repeated for at least WARMUP_S seconds (default 30): every
 * JVM of the mesh compiles its hot paths (gRPC, protobuf, the kernels) with C2 before it is timed; with a few short
 * rounds the mesh's five JVMs were still compiling on the shared cores and TPOT read 3-4x its warm value.
 */
public final class MeshBench {
    private MeshBench() {}

    public static void main(String[] args) throws Exception {
        java.util.logging.Logger.getLogger("io.grpc").setLevel(java.util.logging.Level.WARNING);
        String target = args[0];
        int batch = Integer.parseInt(args[1]), tokens = Integer.parseInt(args[2]), promptLen = Integer.parseInt(args[3]);
        double warmupSeconds = args.length > 4 ? Double.parseDouble(args[4]) : 30;
        try (KimiMeshClient client = KimiMeshClient.connect(target)) {
            long warmupEnd = System.nanoTime() + (long) (warmupSeconds * 1e9);
            int rounds = 0;
            do {
                run(client, batch, tokens, promptLen, rounds++);
            } while (System.nanoTime() < warmupEnd);
            HttpClient http = HttpClient.newHttpClient();
            http.send(HttpRequest.newBuilder(URI.create("http://" + target + "/v1/mesh/hops/reset")).POST(HttpRequest.BodyPublishers.noBody()).build(),
                    HttpResponse.BodyHandlers.discarding());
            double[] r = run(client, batch, tokens, promptLen, 1000);
            String hops = http.send(HttpRequest.newBuilder(URI.create("http://" + target + "/v1/mesh/hops")).GET().build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            System.out.printf("warm-up: %d rounds in >= %.0f s%n", rounds, warmupSeconds);
            System.out.printf("batch %d  tokens %d  prompt %d  TPOT mean %.2f ms  p50 %.2f ms  p99 %.2f ms  TTFT mean %.1f ms  decode %.1f tok/s%n",
                    batch, tokens, promptLen, r[0], r[1], r[2], r[3], r[4]);
            System.out.println("hops " + hops);
        }
    }

    /** Returns {TPOT mean, TPOT p50, TPOT p99 (of per-token gaps, ms), TTFT mean ms, aggregate decode tokens/s}. */
    private static double[] run(KimiMeshClient client, int batch, int tokens, int promptLen, int salt) throws Exception {
        SamplingParams sp = SamplingParams.newBuilder().setTemperature(0).setMaxTokens(tokens).setIgnoreEos(true).build();
        CountDownLatch done = new CountDownLatch(batch);
        List<long[]> times = new ArrayList<>();
        long start = System.nanoTime();
        for (int b = 0; b < batch; b++) {
            int[] prompt = new int[promptLen];
            for (int i = 0; i < promptLen; i++) prompt[i] = 1 + (i * 31 + b * 7 + salt) % 1000;
            long[] t = new long[tokens];
            times.add(t);
            int[] n = {0};
            client.generate(KimiMeshClient.tokens(sp, prompt), new TokenListener() {
                @Override
                public void onResponse(GenerateResponse r) {
                    for (int k = 0; k < r.getTokenIdsCount() && n[0] < tokens; k++) t[n[0]++] = System.nanoTime();
                }

                @Override
                public void onCompleted() {
                    done.countDown();
                }

                @Override
                public void onError(Throwable error) {
                    error.printStackTrace();
                    done.countDown();
                }
            });
        }
        if (!done.await(30, TimeUnit.MINUTES)) throw new IllegalStateException("timed out");
        List<Double> gaps = new ArrayList<>();
        double ttft = 0;
        long firstAll = Long.MAX_VALUE, lastAll = 0;
        for (long[] t : times) {
            ttft += (t[0] - start) / 1e6;
            firstAll = Math.min(firstAll, t[0]);
            lastAll = Math.max(lastAll, t[t.length - 1]);
            for (int i = 1; i < t.length; i++) gaps.add((t[i] - t[i - 1]) / 1e6);
        }
        double[] g = gaps.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double mean = Arrays.stream(g).average().orElse(0);
        double tps = (double) batch * (tokens - 1) / ((lastAll - firstAll) / 1e9);
        return new double[] {mean, g[g.length / 2], g[Math.min(g.length - 1, (int) (g.length * 0.99))], ttft / batch, tps};
    }
}
