package dev.kimimesh.client;

import dev.kimimesh.proto.v1.FinishReason;
import dev.kimimesh.proto.v1.GenerateResponse;
import dev.kimimesh.proto.v1.Usage;
import java.util.ArrayList;
import java.util.List;

/**
 * A whole answer of Generate or Chat, gathered from its stream.
 *
 * @param logprobs  one per token when the request asked for logprobs, else empty
 * @param sessionId the session the request continued or created (keep_session), else empty
 */
public record Completion(String requestId, int[] tokenIds, String text, List<Float> logprobs, FinishReason finishReason,
                         Usage usage, String errorMessage, String sessionId) {

    /** Gathers streamed items (the last carries finish reason and usage). */
    public static Completion of(List<GenerateResponse> items) {
        String requestId = "";
        StringBuilder text = new StringBuilder();
        List<Integer> ids = new ArrayList<>();
        List<Float> logprobs = new ArrayList<>();
        FinishReason finish = FinishReason.FINISH_REASON_UNSPECIFIED;
        Usage usage = Usage.getDefaultInstance();
        String error = "", session = "";
        for (GenerateResponse r : items) {
            if (!r.getRequestId().isEmpty()) requestId = r.getRequestId();
            ids.addAll(r.getTokenIdsList());
            text.append(r.getText());
            r.getLogprobsList().forEach(l -> logprobs.add(l.getLogprob()));
            if (r.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) finish = r.getFinishReason();
            if (r.hasUsage()) usage = r.getUsage();
            if (!r.getErrorMessage().isEmpty()) error = r.getErrorMessage();
            if (!r.getSessionId().isEmpty()) session = r.getSessionId();
        }
        return new Completion(requestId, ids.stream().mapToInt(Integer::intValue).toArray(), text.toString(),
                List.copyOf(logprobs), finish, usage, error, session);
    }
}
