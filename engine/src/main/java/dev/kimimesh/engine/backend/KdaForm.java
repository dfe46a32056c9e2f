package dev.kimimesh.engine.backend;

/** Which evaluation of the KDA recurrence a backend uses; both compute the same function. */
public enum KdaForm {
    /** Chunkwise (chunk 64, WY/UT transform) for segments longer than one token, recurrent for single tokens. */
    AUTO,
    /** Chunkwise for every segment (a single token is a chunk of one). */
    CHUNKED,
    /** Token by token, the decode form, for every segment. */
    RECURRENT
}
