package dev.kimimesh.gateway.observe;

import io.vertx.ext.web.Router;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.Set;

/**
 * Counts the OpenAI HTTP API's requests by path and how the response ended: its status, or cancelled when the
 * client closed the connection first (a streaming client that goes away).
 */
@ApplicationScoped
public class HttpRequestOutcomes {
    private static final Set<String> ENDPOINTS = Set.of("/v1/completions", "/v1/chat/completions", "/v1/models");

    @Inject
    RequestCounter counter;

    void routes(@Observes Router router) {
        // ahead of the API's own routes, which end the response
        router.route().order(-100).handler(ctx -> {
            String path = ctx.normalizedPath();
            if (ENDPOINTS.contains(path)) {
                ctx.addEndHandler(done -> counter.count(path,
                        done.succeeded() ? RequestCounter.outcome(ctx.response().getStatusCode()) : "cancelled"));
            }
            ctx.next();
        });
    }
}
