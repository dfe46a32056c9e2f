package dev.kimimesh.gateway;

import dev.kimimesh.gateway.mesh.LocalMesh;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.util.Map;

/** Starts the two-shard, two-expert-service mesh before the gateway and points the gateway at it. */
public final class MeshResource implements QuarkusTestResourceLifecycleManager {
    static volatile LocalMesh mesh;

    @Override
    public Map<String, String> start() {
        mesh = new LocalMesh(TinyFixture.dir(), true);
        // a short session TTL so that the test sees an idle session expire
        return Map.of("kimimesh.mesh.shards", String.join(",", mesh.shards()), "kimimesh.sessions.ttl", "3s");
    }

    @Override
    public void stop() {
        try {
            if (mesh != null) mesh.close();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
