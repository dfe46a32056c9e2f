package dev.kimimesh.engine.cli;

import java.util.List;

/** One command of the `kimi-mesh` launcher. */
public interface Verb {
    String name();

    /** One line for `--help`: arguments and what it does. */
    String usage();

    /** Runs the verb; the return value is the process exit code. */
    int run(List<String> args) throws Exception;
}
