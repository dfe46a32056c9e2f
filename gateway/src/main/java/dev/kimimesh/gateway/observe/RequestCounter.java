package dev.kimimesh.gateway.observe;

import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

/** {@code kimimesh_gateway_requests_total{endpoint, outcome}}: every API call, HTTP or gRPC, by how it ended. */
@ApplicationScoped
public class RequestCounter {
    @Inject
    MeterRegistry meters;

    void count(String endpoint, String outcome) {
        Counter.builder("kimimesh.gateway.requests").description("API requests by endpoint and outcome")
                .tag("endpoint", endpoint).tag("outcome", outcome).register(meters).increment();
    }

    /** ok, invalid (the client's mistake), rejected (at capacity), cancelled, or error. */
    static String outcome(Status.Code code) {
        return switch (code) {
            case OK -> "ok";
            case INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE, FAILED_PRECONDITION, UNIMPLEMENTED, ALREADY_EXISTS -> "invalid";
            case RESOURCE_EXHAUSTED -> "rejected";
            case CANCELLED -> "cancelled";
            default -> "error";
        };
    }

    /** The same outcomes for an HTTP status. */
    static String outcome(int httpStatus) {
        if (httpStatus < 400) return "ok";
        if (httpStatus == 429) return "rejected";
        if (httpStatus < 500) return "invalid";
        return "error";
    }
}
