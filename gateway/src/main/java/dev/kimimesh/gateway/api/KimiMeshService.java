package dev.kimimesh.gateway.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.gateway.app.MeshRuntime;
import dev.kimimesh.gateway.embedded.LocalPipeline;
import dev.kimimesh.gateway.mesh.ShardPipeline;
import dev.kimimesh.gateway.schedule.QueueFullException;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.text.KimiTextCodec;
import dev.kimimesh.gateway.text.TextCodec;
import dev.kimimesh.proto.v1.ChatMessage;
import dev.kimimesh.proto.v1.ChatRequest;
import dev.kimimesh.proto.v1.DetokenizeRequest;
import dev.kimimesh.proto.v1.DetokenizeResponse;
import dev.kimimesh.proto.v1.ExpertPlacement;
import dev.kimimesh.proto.v1.FinishReason;
import dev.kimimesh.proto.v1.GenerateRequest;
import dev.kimimesh.proto.v1.GenerateResponse;
import dev.kimimesh.proto.v1.KimiMeshGrpc;
import dev.kimimesh.proto.v1.ModelInfoRequest;
import dev.kimimesh.proto.v1.ModelInfoResponse;
import dev.kimimesh.proto.v1.ReleaseSessionRequest;
import dev.kimimesh.proto.v1.ReleaseSessionResponse;
import dev.kimimesh.proto.v1.ResumeSessionRequest;
import dev.kimimesh.proto.v1.SessionInfo;
import dev.kimimesh.proto.v1.ShardPlacement;
import dev.kimimesh.proto.v1.TokenLogprob;
import dev.kimimesh.proto.v1.TopLogprob;
import dev.kimimesh.gateway.schedule.SampledToken;
import dev.kimimesh.gateway.schedule.SequenceOptions;
import dev.kimimesh.gateway.session.SessionBusyException;
import dev.kimimesh.gateway.session.SessionNotFoundException;
import dev.kimimesh.gateway.session.SessionTurn;
import dev.kimimesh.gateway.session.Sessions;
import dev.kimimesh.proto.v1.TokenizeRequest;
import dev.kimimesh.proto.v1.TokenizeResponse;
import dev.kimimesh.proto.v1.Topology;
import dev.kimimesh.proto.v1.Usage;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/** The public gRPC API: Generate and Chat stream tokens from the scheduler; bad input is INVALID_ARGUMENT. */
@GrpcService
public class KimiMeshService extends KimiMeshGrpc.KimiMeshImplBase {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Inject
    MeshRuntime runtime;

    @Override
    @Blocking // tokenising and template rendering stay off the event loop
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> out) {
        serve(() -> switch (request.getPromptCase()) {
            case TEXT -> runtime.codec().encode(request.getText(), request.getAddSpecialTokens());
            case TOKEN_IDS -> request.getTokenIds().getIdsList().stream().mapToInt(Integer::intValue).toArray();
            case PROMPT_NOT_SET -> throw new IllegalArgumentException("prompt: give text or token_ids");
        }, request.getSampling(), List.of(), request.getSkipSpecialTokens(), request.getRequestId(), request.getSessionId(),
                request.getKeepSession(), out);
    }

    @Override
    @Blocking // tokenising and template rendering stay off the event loop
    public void chat(ChatRequest request, StreamObserver<GenerateResponse> out) {
        // in a session the messages are rendered alone and follow the session's tokens (the template renders each
        // message on its own, so the concatenation is the whole conversation's rendering)
        serve(() -> chatIds(request), request.getSampling(), chatStops(), request.getSkipSpecialTokens(), request.getRequestId(),
                request.getSessionId(), request.getKeepSession(), out);
    }

    private void serve(java.util.function.Supplier<int[]> promptOf, dev.kimimesh.proto.v1.SamplingParams sp, List<Integer> extraStops,
                       boolean skipSpecial, String requestId, String sessionId, boolean keepSession, StreamObserver<GenerateResponse> out) {
        SessionTurn turn = null;
        try {
            int[] prompt = promptOf.get();
            turn = runtime.sessions().begin(sessionId, keepSession);
            start(prompt, sp, extraStops, skipSpecial, requestId, turn, out);
        } catch (IllegalArgumentException e) {
            abort(turn);
            out.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
        } catch (QueueFullException e) {
            abort(turn);
            out.onError(Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage()).asRuntimeException());
        } catch (SessionNotFoundException e) {
            out.onError(Status.NOT_FOUND.withDescription(e.getMessage()).asRuntimeException());
        } catch (SessionBusyException e) {
            out.onError(Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException());
        }
    }

    private void abort(SessionTurn turn) {
        if (turn != null) runtime.sessions().abort(turn);
    }

    /** The end-of-turn token ends a chat reply as eos does. */
    private List<Integer> chatStops() {
        List<Integer> stops = new ArrayList<>();
        if (runtime.codec() instanceof KimiTextCodec k) {
            int imEnd = k.specialIdOrNone("<|im_end|>");
            if (imEnd >= 0 && imEnd < runtime.config().vocabSize()) stops.add(imEnd);
        }
        return stops;
    }

    private int[] chatIds(ChatRequest request) {
        if (request.getMessagesCount() == 0) throw new IllegalArgumentException("messages: at least one message is required");
        ArrayNode messages = JSON.createArrayNode();
        for (ChatMessage m : request.getMessagesList()) {
            if (m.getRole().isEmpty()) throw new IllegalArgumentException("messages: every message needs a role");
            ObjectNode o = messages.addObject();
            o.put("role", m.getRole());
            o.put("content", m.getContent());
            if (!m.getName().isEmpty()) o.put("name", m.getName());
            if (!m.getToolCallId().isEmpty()) o.put("tool_call_id", m.getToolCallId());
            if (!m.getToolCallsJson().isEmpty()) o.set("tool_calls", parse("tool_calls_json", m.getToolCallsJson()));
        }
        JsonNode tools = request.getToolsJson().isEmpty() ? null : parse("tools_json", request.getToolsJson());
        boolean addGen = !request.hasAddGenerationPrompt() || request.getAddGenerationPrompt();
        return runtime.codec().encodeChat(messages, tools, addGen);
    }

    private static JsonNode parse(String field, String json) {
        try {
            return JSON.readTree(json);
        } catch (Exception e) {
            throw new IllegalArgumentException(field + " is not valid JSON: " + e.getMessage());
        }
    }

    private void start(int[] own, dev.kimimesh.proto.v1.SamplingParams sp, List<Integer> extraStops, boolean skipSpecial,
                       String requestId, SessionTurn turn, StreamObserver<GenerateResponse> out) {
        Scheduler scheduler = runtime.scheduler();
        int[] prompt = turn == null ? own : turn.prompt(own);
        int position = turn == null ? 0 : turn.sequence().position();
        scheduler.validatePrompt(prompt, position);
        List<Integer> stops = new ArrayList<>(sp.getStopTokenIdsList());
        stops.addAll(extraStops);
        if (sp.getMaxTokens() < 0) throw new IllegalArgumentException("max_tokens must be >= 1 (0 = the rest of the context), got " + sp.getMaxTokens());
        if (!sp.getStopList().isEmpty() && !runtime.codec().available()) {
            throw new IllegalArgumentException("stop: stop strings need a tokenizer; this model has none (use stop_token_ids)");
        }
        SamplingParams params = SamplingDefaults.of(sp.hasTemperature() ? sp.getTemperature() : null, sp.hasTopP() ? sp.getTopP() : null,
                sp.getTopK(), sp.hasSeed() ? sp.getSeed() : null, sp.getMaxTokens() == 0 ? null : sp.getMaxTokens(), stops,
                sp.getIgnoreEos(), sp.getLogprobs(), position + prompt.length, scheduler.contextLimit());
        if (sp.getTopLogprobs() < 0 || sp.getTopLogprobs() > 20) {
            throw new IllegalArgumentException("top_logprobs must be in 0..20, got " + sp.getTopLogprobs());
        }
        if (sp.getTopLogprobs() > 0 && !sp.getLogprobs()) throw new IllegalArgumentException("top_logprobs needs logprobs = true");
        SequenceOptions sequence = turn == null ? SequenceOptions.topLogprobs(sp.getTopLogprobs()) : turn.sequence().withTopLogprobs(sp.getTopLogprobs());
        String id = requestId.isEmpty() ? "gen-" + UUID.randomUUID() : requestId;
        GrpcGenerationListener listener = new GrpcGenerationListener(out, id, params, runtime.codec(), turn == null ? "" : turn.sessionId());
        Generation g = Generation.start(scheduler, runtime.codec(), new GenerationRequest(prompt, params, sp.getStopList(), skipSpecial,
                sequence), listener, runtime.sessions(), turn);
        if (out instanceof ServerCallStreamObserver<GenerateResponse> call) {
            call.setOnCancelHandler(g::cancel);
            if (call.isCancelled()) g.cancel();
        }
    }

    @Override
    @Blocking // tokenising and template rendering stay off the event loop
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> out) {
        try {
            int[] ids = switch (request.getInputCase()) {
                case TEXT -> runtime.codec().encode(request.getText(), request.getAddSpecialTokens());
                case CHAT -> chatIds(request.getChat());
                case INPUT_NOT_SET -> throw new IllegalArgumentException("input: give text or chat");
            };
            TokenizeResponse.Builder b = TokenizeResponse.newBuilder().setCount(ids.length);
            for (int id : ids) {
                b.addTokenIds(id);
                b.addTokens(runtime.codec().tokenText(id));
            }
            out.onNext(b.build());
            out.onCompleted();
        } catch (RuntimeException e) {
            out.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
        }
    }

    @Override
    @Blocking // tokenising and template rendering stay off the event loop
    public void detokenize(DetokenizeRequest request, StreamObserver<DetokenizeResponse> out) {
        try {
            int[] ids = request.getTokenIdsList().stream().mapToInt(Integer::intValue).toArray();
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] < 0 || ids[i] >= runtime.config().vocabSize()) {
                    throw new IllegalArgumentException("token_ids[" + i + "] = " + ids[i] + " is outside the vocabulary 0.."
                            + (runtime.config().vocabSize() - 1));
                }
            }
            if (!runtime.codec().available()) throw new IllegalArgumentException("this model has no tokenizer");
            out.onNext(DetokenizeResponse.newBuilder().setText(runtime.codec().decode(ids, request.getSkipSpecialTokens())).build());
            out.onCompleted();
        } catch (RuntimeException e) {
            out.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
        }
    }

    @Override
    public void modelInfo(ModelInfoRequest request, StreamObserver<ModelInfoResponse> out) {
        KimiLinearConfig c = runtime.config();
        ModelInfoResponse.Builder b = ModelInfoResponse.newBuilder()
                .setModelName(runtime.modelName())
                .setConfigSummary(c.describe())
                .setContextLength(runtime.scheduler().contextLimit())
                .setVocabSize(c.vocabSize())
                .setNumHiddenLayers(c.numHiddenLayers())
                .setHiddenSize(c.hiddenSize())
                .setNumExperts(c.numExperts())
                .setNumExpertsPerToken(c.numExpertsPerToken())
                .addEosTokenIds(c.eosTokenId())
                .setBosTokenId(c.bosTokenId())
                .setRouterWeights(runtime.routerWeights())
                .setTopology(topology());
        out.onNext(b.build());
        out.onCompleted();
    }

    private Topology topology() {
        Topology.Builder t = Topology.newBuilder();
        if (runtime.pipeline() instanceof ShardPipeline sp) {
            var infos = sp.shardInfos();
            var addresses = sp.shardAddresses();
            for (int i = 0; i < infos.size(); i++) {
                t.addShards(ShardPlacement.newBuilder().setAddress(addresses.get(i)).setLayerFrom(infos.get(i).getLayerFrom())
                        .setLayerTo(infos.get(i).getLayerTo()).setBackend(infos.get(i).getBackend()).setHealthy(true));
            }
            for (var e : sp.expertServices().values()) {
                t.addExpertServices(ExpertPlacement.newBuilder().setAddress(e.address()).addAllLayers(e.layers())
                        .setExperts(e.experts()).setHealthy(true));
            }
        } else if (runtime.pipeline() instanceof LocalPipeline) {
            t.addShards(ShardPlacement.newBuilder().setAddress("in-process").setLayerFrom(0)
                    .setLayerTo(runtime.config().numHiddenLayers()).setBackend("embedded").setHealthy(true));
        }
        return t.build();
    }

    @Override
    public void resumeSession(ResumeSessionRequest request, StreamObserver<SessionInfo> out) {
        try {
            Sessions.Info info = runtime.sessions().touch(request.getSessionId());
            out.onNext(SessionInfo.newBuilder().setSessionId(info.sessionId()).setNumTokens(info.tokens()).setLive(true)
                    .setExpiresUnixMs(info.expiresAtMs()).build());
            out.onCompleted();
        } catch (SessionNotFoundException e) {
            out.onError(Status.NOT_FOUND.withDescription(e.getMessage()).asRuntimeException());
        }
    }

    @Override
    public void releaseSession(ReleaseSessionRequest request, StreamObserver<ReleaseSessionResponse> out) {
        try {
            runtime.sessions().release(request.getSessionId());
            out.onNext(ReleaseSessionResponse.newBuilder().setReleased(true).build());
            out.onCompleted();
        } catch (SessionNotFoundException e) {
            out.onError(Status.NOT_FOUND.withDescription(e.getMessage()).asRuntimeException());
        }
    }

    /** Streams one generation to a gRPC call. */
    private static final class GrpcGenerationListener implements GenerationListener {
        private final StreamObserver<GenerateResponse> out;
        private final String requestId;
        private final SamplingParams params;
        private final TextCodec codec;
        private final String sessionId;
        private boolean first = true;

        GrpcGenerationListener(StreamObserver<GenerateResponse> out, String requestId, SamplingParams params, TextCodec codec,
                               String sessionId) {
            this.out = out;
            this.requestId = requestId;
            this.params = params;
            this.codec = codec;
            this.sessionId = sessionId;
        }

        private boolean gone() {
            return out instanceof ServerCallStreamObserver<GenerateResponse> c && c.isCancelled();
        }

        @Override
        public void onToken(SampledToken t, String text) {
            if (gone()) return;
            int token = t.token();
            GenerateResponse.Builder b = GenerateResponse.newBuilder().setRequestId(requestId).addTokenIds(token).setText(text);
            if (params.logprobs()) {
                TokenLogprob.Builder lp = TokenLogprob.newBuilder().setTokenId(token).setLogprob(t.logprob()).setText(codec.tokenText(token));
                for (int j = 0; j < t.topIds().length; j++) {
                    lp.addTop(TopLogprob.newBuilder().setTokenId(t.topIds()[j]).setLogprob(t.topLogprobs()[j]).setText(codec.tokenText(t.topIds()[j])));
                }
                b.addLogprobs(lp);
            }
            if (first) {
                b.setSeed(params.seed()).setSessionId(sessionId);
                first = false;
            }
            out.onNext(b.build());
        }

        @Override
        public void onFinish(GenerationOutcome o) {
            if (gone()) return;
            FinishReason reason = switch (o.reason()) {
                case STOP -> FinishReason.FINISH_REASON_STOP;
                case LENGTH -> FinishReason.FINISH_REASON_LENGTH;
                case CANCELLED -> FinishReason.FINISH_REASON_CANCELLED;
                case ERROR -> FinishReason.FINISH_REASON_ERROR;
            };
            GenerateResponse.Builder b = GenerateResponse.newBuilder().setRequestId(requestId).setText(o.text()).setFinishReason(reason)
                    .setUsage(Usage.newBuilder().setPromptTokens(o.promptTokens()).setCompletionTokens(o.completionTokens())
                            .setTotalTokens(o.totalTokens()).setCachedPromptTokens(o.cachedPromptTokens()))
                    .setStopReason(o.stopReason() == null ? "" : o.stopReason());
            if (o.error() != null) b.setErrorMessage(o.error());
            b.setSessionId(sessionId);
            if (first) b.setSeed(params.seed());
            try {
                out.onNext(b.build());
                out.onCompleted();
            } catch (RuntimeException e) {
                // the client went away between the check and the write
            }
        }
    }
}
