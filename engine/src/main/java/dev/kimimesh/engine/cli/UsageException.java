package dev.kimimesh.engine.cli;

/** Wrong command-line arguments: printed with the verb's usage line, exit code 2. */
public final class UsageException extends Exception {
    public UsageException(String message) {
        super(message);
    }
}
