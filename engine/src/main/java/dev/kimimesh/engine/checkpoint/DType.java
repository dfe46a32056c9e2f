package dev.kimimesh.engine.checkpoint;

/** Element types of safetensors tensors that Kimi Mesh reads. */
public enum DType {
    BF16(2),
    F16(2),
    F32(4),
    F64(8),
    I64(8),
    I32(4),
    I8(1),
    U8(1),
    BOOL(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** The safetensors header spelling ("BF16", "F32", ...). */
    public String safetensorsName() {
        return name();
    }

    public static DType fromSafetensors(String s) {
        for (DType d : values()) if (d.name().equals(s)) return d;
        throw new IllegalArgumentException("unsupported dtype '" + s + "'");
    }
}
