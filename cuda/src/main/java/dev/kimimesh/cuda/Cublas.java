package dev.kimimesh.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * Bindings of cuBLAS (libcublas.so.13) through FFM: a handle on the backend's stream and the mixed-precision GEMMs
 * (cublasGemmEx, cublasGemmStridedBatchedEx) with CUBLAS_COMPUTE_32F in the default math mode, i.e. IEEE fp32
 * accumulation and no TF32. Matrices are column-major as cuBLAS sees them; {@link #gemmRowMajor} maps row-major.
 */
public final class Cublas implements AutoCloseable {
    public static final int OP_N = 0, OP_T = 1;
    public static final int R_32F = 0, R_16BF = 14;
    private static final int COMPUTE_32F = 68;
    private static final int GEMM_DEFAULT = -1;

    private static final SymbolLookup LIB = NativeLibrary.load("libcublas.so.13", "libcublas.so");
    private static final Linker LINKER = Linker.nativeLinker();

    private static MethodHandle fn(String name, FunctionDescriptor d) {
        MemorySegment sym = LIB.find(name).orElseThrow(() -> new CudaException("libcublas has no symbol " + name));
        return LINKER.downcallHandle(sym, d);
    }

    private static final MethodHandle CREATE = fn("cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle DESTROY = fn("cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle SET_STREAM = fn("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SET_MATH = fn("cublasSetMathMode", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle STATUS_NAME = fn("cublasGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    private static final MethodHandle GEMM_EX = fn("cublasGemmEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS,
            JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle GEMM_BATCHED = fn("cublasGemmStridedBatchedEx", FunctionDescriptor.of(JAVA_INT, ADDRESS,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG,
            JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle GEMM_PTR_BATCHED = fn("cublasGemmBatchedEx", FunctionDescriptor.of(JAVA_INT, ADDRESS,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT,
            JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));

    private final MemorySegment handle;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment one, zero;

    public Cublas(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) CREATE.invokeExact(p), "cublasCreate");
            handle = p.get(ADDRESS, 0);
            check((int) SET_STREAM.invokeExact(handle, stream), "cublasSetStream");
            check((int) SET_MATH.invokeExact(handle, 0), "cublasSetMathMode(CUBLAS_DEFAULT_MATH)");
        } catch (Throwable t) {
            throw Driver.wrap("cublasCreate", t);
        }
        one = arena.allocateFrom(JAVA_FLOAT, 1f);
        zero = arena.allocateFrom(JAVA_FLOAT, 0f);
    }

    static void check(int status, String call) {
        if (status == 0) return;
        String name;
        try {
            name = ((MemorySegment) STATUS_NAME.invokeExact(status)).reinterpret(128).getString(0);
        } catch (Throwable t) {
            name = "cublasStatus " + status;
        }
        throw new CudaException(call + " failed: " + name + " (" + status + ")");
    }

    /**
     * Row-major {@code C[m,n] = A[m,k] op(B) (+ C if accumulate)} with fp32 accumulation: {@code transB} means B is
     * stored [n,k] (C = A B^T, a linear layer), else [k,n]. Leading dimensions are row strides in elements.
     */
    public void gemmRowMajor(int m, int n, int k, long a, int aType, int lda, long b, int bType, int ldb, boolean transB,
                             long c, int ldc, boolean accumulate) {
        // row-major C = A op(B) is column-major C^T = op(B)^T A^T: swap the operands and the m/n roles
        try {
            // the status first: the message is built only on failure (a prefill issues thousands of GEMMs)
            LaunchTimeline.before("gemm");
            int s = (int) GEMM_EX.invokeExact(handle, transB ? OP_T : OP_N, OP_N, n, m, k, one, b, bType, ldb, a, aType, lda,
                    (MemorySegment) (accumulate ? one : zero), c, R_32F, ldc, COMPUTE_32F, GEMM_DEFAULT);
            LaunchTimeline.after();
            if (s != 0) check(s, "cublasGemmEx(" + m + "x" + n + "x" + k + ")");
        } catch (Throwable t) {
            throw Driver.wrap("cublasGemmEx", t);
        }
    }

    /** {@link #gemmRowMajor} with C of type {@code cType} (bf16 output: the fp32 sums rounded once), never accumulating. */
    public void gemmRowMajorTo(int m, int n, int k, long a, int aType, int lda, long b, int bType, int ldb, boolean transB,
                               long c, int cType, int ldc) {
        try {
            LaunchTimeline.before("gemm");
            int s = (int) GEMM_EX.invokeExact(handle, transB ? OP_T : OP_N, OP_N, n, m, k, one, b, bType, ldb, a, aType, lda, zero,
                    c, cType, ldc, COMPUTE_32F, GEMM_DEFAULT);
            LaunchTimeline.after();
            if (s != 0) check(s, "cublasGemmEx(" + m + "x" + n + "x" + k + ", C type " + cType + ")");
        } catch (Throwable t) {
            throw Driver.wrap("cublasGemmEx", t);
        }
    }

    /** {@link #gemmRowMajor} over {@code batch} problems at element strides sa, sb, sc (a stride may be 0). */
    public void gemmRowMajorBatched(int m, int n, int k, long a, int aType, int lda, long sa, long b, int bType, int ldb,
                                    long sb, boolean transB, long c, int ldc, long sc, int batch, boolean accumulate) {
        try {
            LaunchTimeline.before("gemm strided");
            int s = (int) GEMM_BATCHED.invokeExact(handle, transB ? OP_T : OP_N, OP_N, n, m, k, one, b, bType, ldb, sb, a,
                    aType, lda, sa, (MemorySegment) (accumulate ? one : zero), c, R_32F, ldc, sc, batch, COMPUTE_32F, GEMM_DEFAULT);
            LaunchTimeline.after();
            if (s != 0) check(s, "cublasGemmStridedBatchedEx(" + batch + " x " + m + "x" + n + "x" + k + ")");
        } catch (Throwable t) {
            throw Driver.wrap("cublasGemmStridedBatchedEx", t);
        }
    }

    /**
     * {@link #gemmRowMajor} over {@code batch} problems of one shape whose operands lie anywhere: aPtrs, bPtrs and
     * cPtrs are device arrays of {@code batch} device pointers each (cublasGemmBatchedEx).
     */
    public void gemmRowMajorPointers(int m, int n, int k, long aPtrs, int aType, int lda, long bPtrs, int bType, int ldb,
                                     boolean transB, long cPtrs, int ldc, int batch) {
        gemmRowMajorPointers(m, n, k, aPtrs, aType, lda, bPtrs, bType, ldb, transB, cPtrs, R_32F, ldc, batch);
    }

    /** {@link #gemmRowMajorPointers} with C of type {@code cType} (bf16: the fp32 sums rounded once). */
    public void gemmRowMajorPointers(int m, int n, int k, long aPtrs, int aType, int lda, long bPtrs, int bType, int ldb,
                                     boolean transB, long cPtrs, int cType, int ldc, int batch) {
        try {
            LaunchTimeline.before("gemm batched");
            int s = (int) GEMM_PTR_BATCHED.invokeExact(handle, transB ? OP_T : OP_N, OP_N, n, m, k, one, bPtrs, bType, ldb, aPtrs,
                    aType, lda, zero, cPtrs, cType, ldc, batch, COMPUTE_32F, GEMM_DEFAULT);
            LaunchTimeline.after();
            if (s != 0) check(s, "cublasGemmBatchedEx(" + batch + " x " + m + "x" + n + "x" + k + ")");
        } catch (Throwable t) {
            throw Driver.wrap("cublasGemmBatchedEx", t);
        }
    }

    @Override
    public void close() {
        try {
            check((int) DESTROY.invokeExact(handle), "cublasDestroy");
        } catch (Throwable t) {
            throw Driver.wrap("cublasDestroy", t);
        }
        arena.close();
    }
}
