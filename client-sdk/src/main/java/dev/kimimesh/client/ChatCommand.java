package dev.kimimesh.client;

import dev.kimimesh.proto.v1.GenerateResponse;
import dev.kimimesh.proto.v1.SamplingParams;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * `kimi-mesh chat "..."`: sends one user message to a gateway through the SDK and streams the reply to stdout.
 * {@code --ids 1,2,3} sends token ids to Generate instead (for models without a tokenizer) and prints the ids.
 */
public final class ChatCommand {
    private ChatCommand() {}

    public static void main(String[] args) throws Exception {
        // grpc-netty's start-up notices are not part of the reply
        java.util.logging.Logger.getLogger("io.grpc").setLevel(java.util.logging.Level.WARNING);
        String gateway = System.getenv().getOrDefault("KIMI_GATEWAY", "127.0.0.1:8080");
        int maxTokens = 256;
        double temperature = 0.7;
        String ids = null;
        List<String> words = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--gateway" -> gateway = value(args, ++i);
                case "--max-tokens" -> maxTokens = Integer.parseInt(value(args, ++i));
                case "--temperature" -> temperature = Double.parseDouble(value(args, ++i));
                case "--ids" -> ids = value(args, ++i);
                default -> words.add(args[i]);
            }
        }
        if (ids == null && words.isEmpty()) {
            System.err.println("usage: kimi-mesh chat [--gateway HOST:PORT] [--max-tokens N] [--temperature T] \"message\" | --ids 1,2,3");
            System.exit(2);
        }
        SamplingParams sampling = SamplingParams.newBuilder().setMaxTokens(maxTokens).setTemperature(temperature).build();
        CompletableFuture<Void> done = new CompletableFuture<>();
        boolean printIds = ids != null;
        TokenListener printer = new TokenListener() {
            @Override
            public void onResponse(GenerateResponse r) {
                if (printIds) r.getTokenIdsList().forEach(id -> System.out.print(id + " "));
                else System.out.print(r.getText());
                System.out.flush();
                if (!r.getErrorMessage().isEmpty()) System.err.println("\n[error] " + r.getErrorMessage());
            }

            @Override
            public void onCompleted() {
                System.out.println();
                done.complete(null);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        };
        try (KimiMeshClient client = KimiMeshClient.connect(gateway)) {
            StreamHandle h = ids != null
                    ? client.generate(KimiMeshClient.tokens(sampling, Arrays.stream(ids.split(",")).map(String::trim)
                            .mapToInt(Integer::parseInt).toArray()), printer)
                    : client.chat(KimiMeshClient.userMessage(String.join(" ", words), sampling), printer);
            Runtime.getRuntime().addShutdownHook(new Thread(h::cancel));
            try {
                done.get();
            } catch (ExecutionException e) {
                String msg = e.getCause() instanceof StatusRuntimeException s
                        ? s.getStatus().getCode() + ": " + s.getStatus().getDescription() : String.valueOf(e.getCause());
                System.err.println("kimi-mesh chat: " + gateway + ": " + msg);
                System.exit(1);
            }
        }
    }

    private static String value(String[] args, int i) {
        if (i >= args.length) {
            System.err.println("kimi-mesh chat: " + args[i - 1] + " needs a value");
            System.exit(2);
        }
        return args[i];
    }
}
