package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The timeline's report from given event and host times (arithmetic only: runs without a GPU). */
class LaunchTimelineTest {

    /** The figure after {@code label} on the line that starts with {@code prefix}. */
    private static double figure(String report, String prefix, String label) {
        for (String line : report.split("\n")) {
            if (!line.startsWith(prefix)) continue;
            int at = line.indexOf(label);
            if (at < 0) continue;
            String rest = line.substring(at + label.length()).trim();
            return Double.parseDouble(rest.split("[ ,;)]")[0]);
        }
        throw new AssertionError("no '" + label + "' on a line '" + prefix + "' in\n" + report);
    }

    @Test
    void idleIsTheTimeBetweenAnOpsEndAndTheNextOpsStart() {
        // three ops: the GPU starts the first at 0.01 ms, waits 0.5 ms for the second (the host read counts back),
        // then runs the third right after the second
        List<String> names = List.of("add_rms_norm_v4_bf16", "moe_pair_fill", "gemm batched");
        double[] gs = {0.010, 1.510, 2.001}, ge = {1.010, 2.000, 3.000};
        double[] hb = {0.002, 1.500, 1.600}, ha = {0.005, 1.505, 1.650};
        List<LaunchTimeline.Wait> waits = List.of(new LaunchTimeline.Wait("event sync", 0.1, 1.0, 1));
        String r = LaunchTimeline.report(names, gs, ge, hb, ha, waits, 3.1);
        assertEquals(0.010 + 0.500 + 0.001, figure(r, "timeline: GPU", "idle"), 1e-9, r);
        assertEquals(1.000 + 0.490 + 0.999, figure(r, "timeline: GPU", "busy"), 1e-9, r);
        assertEquals(0.900, figure(r, "timeline: 3 ops", "of which"), 1e-9, r);
        // the largest gap is named with the op the GPU waited for and the wait the host was in
        String gaps = r.substring(r.indexOf("largest GPU idle gaps"));
        assertTrue(gaps.split("\n")[1].contains("0.500 ms idle before op 1 moe_pair_fill"), r);
        assertTrue(gaps.split("\n")[1].contains("0.900 ms in event sync"), r);
        // phases: by name
        assertTrue(r.contains("norms"), r);
        assertTrue(r.contains("uploads, MoE layout"), r);
        assertTrue(r.contains("expert GEMMs + glue"), r);
    }

    @Test
    void phasesFromKernelNames() {
        assertEquals("MoE routing", LaunchTimeline.phase("moe_route_rows8"));
        assertEquals("MoE routing", LaunchTimeline.phase("moe_pair_scan"));
        assertEquals("read-back", LaunchTimeline.phase("DtoH"));
        assertEquals("MoE combine", LaunchTimeline.phase("moe_combine_pairs_bf16"));
        assertEquals("linear GEMMs", LaunchTimeline.phase("gemm"));
        assertEquals("expert GEMMs + glue", LaunchTimeline.phase("gemm batched"));
        assertEquals("KDA", LaunchTimeline.phase("kda_chunk_prep_v5"));
        assertEquals("MLA", LaunchTimeline.phase("mla_flash_wgmma_n128s2pptmaf"));
        assertEquals("short conv", LaunchTimeline.phase("short_conv4_silu"));
    }
}
