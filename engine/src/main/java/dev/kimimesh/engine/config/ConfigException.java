package dev.kimimesh.engine.config;

/** A config.json that Kimi Mesh cannot serve: the message names the field. */
public final class ConfigException extends RuntimeException {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
