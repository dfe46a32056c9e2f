package dev.kimimesh.client;

import dev.kimimesh.proto.v1.ChatMessage;
import dev.kimimesh.proto.v1.ChatRequest;
import dev.kimimesh.proto.v1.DetokenizeRequest;
import dev.kimimesh.proto.v1.GenerateRequest;
import dev.kimimesh.proto.v1.GenerateResponse;
import dev.kimimesh.proto.v1.KimiMeshGrpc;
import dev.kimimesh.proto.v1.ModelInfoRequest;
import dev.kimimesh.proto.v1.ModelInfoResponse;
import dev.kimimesh.proto.v1.ReleaseSessionRequest;
import dev.kimimesh.proto.v1.ResumeSessionRequest;
import dev.kimimesh.proto.v1.SessionInfo;
import dev.kimimesh.proto.v1.SamplingParams;
import dev.kimimesh.proto.v1.TokenIds;
import dev.kimimesh.proto.v1.TokenizeRequest;
import dev.kimimesh.proto.v1.TokenizeResponse;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Client of the public KimiMesh gRPC API (served by the gateway): blocking, asynchronous
 * ({@link CompletableFuture}) and streaming (callback, {@link Flow.Publisher}, iterator) calls. Thread-safe; one
 * instance per gateway is enough. Failures surface as {@link io.grpc.StatusRuntimeException} with the server's
 * status (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) and message.
 */
public final class KimiMeshClient implements AutoCloseable {
    private final Channel channel;
    private final ManagedChannel owned;
    private final KimiMeshGrpc.KimiMeshBlockingStub blocking;
    private final KimiMeshGrpc.KimiMeshStub async;

    private KimiMeshClient(Channel channel, ManagedChannel owned) {
        this.channel = channel;
        this.owned = owned;
        this.blocking = KimiMeshGrpc.newBlockingStub(channel);
        this.async = KimiMeshGrpc.newStub(channel);
    }

    /** Connects (plaintext) to a gateway at {@code host:port}. */
    public static KimiMeshClient connect(String target) {
        ManagedChannel ch = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
        return new KimiMeshClient(ch, ch);
    }

    /** Uses a channel the caller owns (TLS, interceptors, in-process); {@link #close()} leaves it open. */
    public static KimiMeshClient over(Channel channel) {
        return new KimiMeshClient(channel, null);
    }

    // ---- request builders

    /** A Generate request for a prompt given as token ids. */
    public static GenerateRequest tokens(SamplingParams sampling, int... ids) {
        TokenIds.Builder t = TokenIds.newBuilder();
        for (int id : ids) t.addIds(id);
        return GenerateRequest.newBuilder().setTokenIds(t).setSampling(sampling).build();
    }

    /** A Generate request for a text prompt. */
    public static GenerateRequest text(String prompt, SamplingParams sampling) {
        return GenerateRequest.newBuilder().setText(prompt).setSampling(sampling).build();
    }

    /** A Chat request of one user message. */
    public static ChatRequest userMessage(String content, SamplingParams sampling) {
        return ChatRequest.newBuilder().addMessages(ChatMessage.newBuilder().setRole("user").setContent(content))
                .setSampling(sampling).build();
    }

    /** Greedy decoding of up to {@code maxTokens} tokens. */
    public static SamplingParams greedy(int maxTokens) {
        return SamplingParams.newBuilder().setTemperature(0).setMaxTokens(maxTokens).build();
    }

    // ---- blocking

    /** Generates and waits for the whole answer. */
    public Completion generate(GenerateRequest request) {
        List<GenerateResponse> items = new ArrayList<>();
        blocking.generate(request).forEachRemaining(items::add);
        return Completion.of(items);
    }

    /** Chats and waits for the whole answer. */
    public Completion chat(ChatRequest request) {
        List<GenerateResponse> items = new ArrayList<>();
        blocking.chat(request).forEachRemaining(items::add);
        return Completion.of(items);
    }

    public TokenizeResponse tokenize(String text) {
        return blocking.tokenize(TokenizeRequest.newBuilder().setText(text).build());
    }

    public String detokenize(int... ids) {
        DetokenizeRequest.Builder b = DetokenizeRequest.newBuilder();
        for (int id : ids) b.addTokenIds(id);
        return blocking.detokenize(b.build()).getText();
    }

    public ModelInfoResponse modelInfo() {
        return blocking.modelInfo(ModelInfoRequest.getDefaultInstance());
    }

    /**
     * Renews a session's expiry and describes it (tokens in its state, expiry).
     *
     * @throws io.grpc.StatusRuntimeException NOT_FOUND for an unknown, released or expired session
     */
    public SessionInfo resumeSession(String sessionId) {
        return blocking.resumeSession(ResumeSessionRequest.newBuilder().setSessionId(sessionId).build());
    }

    /**
     * Frees a session's state on every shard (a busy session is freed when its running request ends).
     *
     * @throws io.grpc.StatusRuntimeException NOT_FOUND for an unknown, released or expired session
     */
    public boolean releaseSession(String sessionId) {
        return blocking.releaseSession(ReleaseSessionRequest.newBuilder().setSessionId(sessionId).build()).getReleased();
    }

    // ---- asynchronous

    /** Generates; the future completes with the whole answer (or the call's failure). */
    public CompletableFuture<Completion> generateAsync(GenerateRequest request) {
        return gather((r, o) -> async.generate(r, o), request);
    }

    public CompletableFuture<Completion> chatAsync(ChatRequest request) {
        return gather((r, o) -> async.chat(r, o), request);
    }

    private interface StreamingCall<Q> {
        void start(Q request, ClientResponseObserver<Q, GenerateResponse> observer);
    }

    private <Q> CompletableFuture<Completion> gather(StreamingCall<Q> call, Q request) {
        CompletableFuture<Completion> result = new CompletableFuture<>();
        List<GenerateResponse> items = Collections.synchronizedList(new ArrayList<>());
        StreamHandle handle = new StreamHandle();
        call.start(request, observer(handle, new TokenListener() {
            @Override
            public void onResponse(GenerateResponse response) {
                items.add(response);
            }

            @Override
            public void onCompleted() {
                result.complete(Completion.of(items));
            }

            @Override
            public void onError(Throwable error) {
                result.completeExceptionally(error);
            }
        }));
        // Cancelling the future cancels the call, so the server frees the sequence.
        result.whenComplete((c, e) -> {
            if (result.isCancelled()) handle.cancel();
        });
        return result;
    }

    // ---- streaming

    /** Streams the answer to a listener; the handle cancels the call. */
    public StreamHandle generate(GenerateRequest request, TokenListener listener) {
        StreamHandle handle = new StreamHandle();
        async.generate(request, observer(handle, listener));
        return handle;
    }

    public StreamHandle chat(ChatRequest request, TokenListener listener) {
        StreamHandle handle = new StreamHandle();
        async.chat(request, observer(handle, listener));
        return handle;
    }

    /** Streams the answer as an iterator; closing it early cancels the call. */
    public ResponseIterator generateIterator(GenerateRequest request) {
        Context.CancellableContext ctx = Context.current().withCancellation();
        Context previous = ctx.attach();
        try {
            return new ResponseIterator(KimiMeshGrpc.newBlockingStub(channel).generate(request), ctx);
        } finally {
            ctx.detach(previous);
        }
    }

    /**
     * The answer as a {@link Flow.Publisher} of streamed items: each subscription starts one call; cancelling the
     * subscription cancels it. Items are delivered as they arrive (the demand only bounds nothing beyond gRPC's own
     * buffering, since a generation cannot be paused).
     */
    public Flow.Publisher<GenerateResponse> generatePublisher(GenerateRequest request) {
        return subscriber -> {
            AtomicLong demand = new AtomicLong();
            AtomicBoolean done = new AtomicBoolean();
            StreamHandle handle = new StreamHandle();
            subscriber.onSubscribe(new Flow.Subscription() {
                @Override
                public void request(long n) {
                    if (n <= 0) {
                        handle.cancel();
                        if (done.compareAndSet(false, true)) subscriber.onError(new IllegalArgumentException("request(" + n + "): demand must be positive"));
                    } else {
                        demand.addAndGet(n);
                    }
                }

                @Override
                public void cancel() {
                    done.set(true);
                    handle.cancel();
                }
            });
            async.generate(request, observer(handle, new TokenListener() {
                @Override
                public void onResponse(GenerateResponse response) {
                    if (!done.get()) subscriber.onNext(response);
                }

                @Override
                public void onCompleted() {
                    if (done.compareAndSet(false, true)) subscriber.onComplete();
                }

                @Override
                public void onError(Throwable error) {
                    if (done.compareAndSet(false, true)) subscriber.onError(error);
                }
            }));
        };
    }

    private static <Q> ClientResponseObserver<Q, GenerateResponse> observer(StreamHandle handle, TokenListener listener) {
        return new ClientResponseObserver<>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<Q> call) {
                handle.attach(call);
            }

            @Override
            public void onNext(GenerateResponse value) {
                listener.onResponse(value);
            }

            @Override
            public void onError(Throwable t) {
                listener.onError(t);
            }

            @Override
            public void onCompleted() {
                listener.onCompleted();
            }
        };
    }

    /** Closes the channel this client opened (not one passed to {@link #over}). */
    @Override
    public void close() {
        if (owned != null) {
            owned.shutdown();
            try {
                if (!owned.awaitTermination(5, TimeUnit.SECONDS)) owned.shutdownNow();
            } catch (InterruptedException e) {
                owned.shutdownNow();
                Thread.currentThread().interrupt();
            }
        }
    }
}
