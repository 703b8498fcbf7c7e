/* RNNoise's matrix products on the model's int8 weights, for pyrnnoise's librnnoise.
 *
 * Why: pyrnnoise ships RNNoise 0.2 built as generic C.  Its layers carry both float and int8
 * weights, and the generic build prefers the float ones: ~2.9 M float weights (11.6 MB) are read
 * for every 10 ms frame, more than a core's caches hold, so a frame costs ~0.6 ms waiting on
 * memory (measured here: rnnoise_process_frame alone, 600 us per 10 ms).  The int8 copies are a
 * quarter of that (2.9 MB, shared by every stream of a process) and are what RNNoise's own x86
 * builds use (with the inputs quantized to 8 bits, as the model was trained for).
 *
 * How: librnnoise calls its exported `rnn_compute_linear_c` through its PLT, so this library,
 * loaded with RTLD_GLOBAL before librnnoise (media/rnnoise.py does), provides that symbol and the
 * dynamic linker binds librnnoise's calls here.  Everything else (features, pitch, GRU gates,
 * activations) stays librnnoise's own, but for its input high-pass, left out by default, and its
 * pitch filter, kept (both taken the same way: "RNNoise's fidelity" below).  The layer layout (LinearLayer, 8x4 weight blocks, the
 * sparse index) is RNNoise 0.2's (pyrnnoise 0.4.x); tests/unit/media/test_rnnoise_accel.py checks
 * the result against the stock library.
 *
 * Kernels: AVX-512 VNNI (vpdpbusd on 256-bit vectors, the unsigned-input form with the model's
 * "subias"), AVX2 (sign-extended to 16 bits and vpmaddwd: exact, no saturation), or portable C;
 * chosen once by CPUID.  All three are exact integer sums; they differ from each other only in
 * the last float rounding of scale and bias. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

typedef struct {
    const float *bias;
    const float *subias;
    const int8_t *weights;
    const float *float_weights;
    const int *weights_idx;
    const float *diag;
    const float *scale;
    int nb_inputs;
    int nb_outputs;
} LinearLayer;

#define MAX_INPUTS 4096

static int accel_level = -1; /* 0 portable, 1 AVX2, 2 AVX-512 VNNI; -1 not chosen yet */
static unsigned long long accel_calls; /* int8 products computed here */

static int choose_level(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2"))
        return 1;
#endif
    return 0;
}

/* RNNoise's quantization of an input in [-1, 1]: round(127 x), clamped (a value past 1 would wrap
 * in the reference C; the vector builds saturate) */
static void quantize(int8_t *x, const float *in, int n, int offset)
{
    for (int i = 0; i < n; i++) {
        float v = floorf(.5f + 127.f * in[i]);
        if (v > 127.f) v = 127.f;
        if (v < -127.f) v = -127.f;
        x[i] = (int8_t)((int)v + offset);
    }
}

/* out[i] = scale[i] * sum(w * x) over 8x4 blocks (row-major inside a block: 4 inputs of each of
 * 8 rows); idx: per group of 8 rows, a block count then each block's first input (sparse), or NULL
 * (dense: cols/4 blocks in order) */
static void gemv_portable(float *out, const int8_t *w, const int *idx, const float *scale,
                          int rows, int cols, const int8_t *x)
{
    for (int i = 0; i < rows; i += 8) {
        int32_t acc[8] = {0};
        int blocks = idx ? *idx++ : cols / 4;
        for (int j = 0; j < blocks; j++) {
            int pos = idx ? *idx++ : 4 * j;
            const int8_t *xj = x + pos;
            for (int k = 0; k < 8; k++)
                acc[k] += w[4 * k] * xj[0] + w[4 * k + 1] * xj[1] + w[4 * k + 2] * xj[2] + w[4 * k + 3] * xj[3];
            w += 32;
        }
        for (int k = 0; k < 8; k++)
            out[i + k] = (float)acc[k] * scale[i + k];
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2")))
static void gemv_avx2(float *out, const int8_t *w, const int *idx, const float *scale,
                      int rows, int cols, const int8_t *x)
{
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (int i = 0; i < rows; i += 8) {
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        int blocks = idx ? *idx++ : cols / 4;
        for (int j = 0; j < blocks; j++) {
            int pos = idx ? *idx++ : 4 * j;
            int32_t x4;
            memcpy(&x4, x + pos, 4);
            /* x0..x3 as 16-bit, four times: one row's 4 inputs per 64 bits */
            __m256i xv = _mm256_cvtepi8_epi16(_mm_set1_epi32(x4));
            __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));        /* rows 0-3 */
            __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16))); /* rows 4-7 */
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(w0, xv));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(w1, xv));
            w += 32;
        }
        /* lo: two half sums per row 0-3, hi: rows 4-7; hadd gives r0 r1 r4 r5 | r2 r3 r6 r7 */
        __m256i s = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(lo, hi), order);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_loadu_ps(scale + i)));
    }
}

/* xu: the inputs + 127 (unsigned); the caller adds the model's subias, which subtracts 127 * the
 * row's weights */
__attribute__((target("avx2,avx512f,avx512vl,avx512vnni")))
static void gemv_vnni(float *out, const int8_t *w, const int *idx, const float *scale,
                      int rows, int cols, const uint8_t *xu)
{
    for (int i = 0; i < rows; i += 8) {
        __m256i acc = _mm256_setzero_si256();
        int blocks = idx ? *idx++ : cols / 4;
        for (int j = 0; j < blocks; j++) {
            int pos = idx ? *idx++ : 4 * j;
            int32_t x4;
            memcpy(&x4, xu + pos, 4);
            acc = _mm256_dpbusd_epi32(acc, _mm256_set1_epi32(x4), _mm256_loadu_si256((const __m256i *)w));
            w += 32;
        }
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(scale + i)));
    }
}
#endif

/* float weights: column-major (dense), or 8x4 blocks column-major inside (sparse) */
static void sgemv(float *out, const float *w, const int *idx, int rows, int cols, const float *x)
{
    if (idx == NULL) {
        int i = 0;
        for (; i + 16 <= rows; i += 16) { /* 16 rows summed in registers over all the inputs */
            float acc[16] = {0};
            for (int j = 0; j < cols; j++) {
                const float *wj = w + (size_t)j * rows + i;
                for (int k = 0; k < 16; k++)
                    acc[k] += wj[k] * x[j];
            }
            memcpy(out + i, acc, sizeof acc);
        }
        for (; i < rows; i++) {
            float acc = 0.f;
            for (int j = 0; j < cols; j++)
                acc += w[(size_t)j * rows + i] * x[j];
            out[i] = acc;
        }
        return;
    }
    memset(out, 0, sizeof(float) * (size_t)rows);
    for (int i = 0; i < rows; i += 8) {
        int blocks = *idx++;
        for (int j = 0; j < blocks; j++) {
            int pos = *idx++;
            for (int l = 0; l < 4; l++)
                for (int k = 0; k < 8; k++)
                    out[i + k] += w[8 * l + k] * x[pos + l];
            w += 32;
        }
    }
}

/* librnnoise's own symbol: its calls land here (see the top) */
void rnn_compute_linear_c(const LinearLayer *linear, float *out, const float *in)
{
    int M = linear->nb_inputs, N = linear->nb_outputs;
    const float *bias = linear->bias;
    if (accel_level < 0)
        accel_level = choose_level();
    if (linear->weights != NULL && M <= MAX_INPUTS && (M & 3) == 0 && (N & 7) == 0) {
        int8_t x[MAX_INPUTS];
        __atomic_fetch_add(&accel_calls, 1, __ATOMIC_RELAXED);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        if (accel_level == 2 && linear->subias != NULL) {
            quantize(x, in, M, 127);
            gemv_vnni(out, linear->weights, linear->weights_idx, linear->scale, N, M, (const uint8_t *)x);
            bias = linear->subias;
        } else if (accel_level >= 1) {
            quantize(x, in, M, 0);
            gemv_avx2(out, linear->weights, linear->weights_idx, linear->scale, N, M, x);
        } else
#endif
        {
            quantize(x, in, M, 0);
            gemv_portable(out, linear->weights, linear->weights_idx, linear->scale, N, M, x);
        }
    } else if (linear->float_weights != NULL) {
        sgemv(out, linear->float_weights, linear->weights_idx, N, M, in);
    } else {
        memset(out, 0, sizeof(float) * (size_t)N);
    }
    if (bias != NULL)
        for (int i = 0; i < N; i++)
            out[i] += bias[i];
    if (linear->diag != NULL) { /* GRU recurrent weights only: N == 3 M */
        for (int i = 0; i < M; i++) {
            out[i] += linear->diag[i] * in[i];
            out[i + M] += linear->diag[i + M] * in[i];
            out[i + 2 * M] += linear->diag[i + 2 * M] * in[i];
        }
    }
}

/* for media/rnnoise.py (ctypes): the kernel chosen, and how many int8 products ran here (0 after
 * a frame: librnnoise did not call this library, the binding failed) */
int urok_rnnoise_accel_level(void)
{
    if (accel_level < 0)
        accel_level = choose_level();
    return accel_level;
}

/* force a kernel (tests, benchmarks): 0 portable, 1 AVX2, 2 VNNI; a level the CPU lacks is lowered */
int urok_rnnoise_accel_set_level(int level)
{
    int best = choose_level();
    accel_level = level < best ? (level < 0 ? 0 : level) : best;
    return accel_level;
}

unsigned long long urok_rnnoise_accel_calls(void)
{
    return accel_calls;
}

/* int16 in, int16 out, ``frames`` RNNoise frames of 480 samples through librnnoise's
 * ``rnnoise_process_frame`` (``process``, from ctypes): one ctypes call per 20 ms instead of numpy
 * conversions around each 10 ms call.  Returns the highest voice probability of the frames. */
typedef float (*process_frame_fn)(void *state, float *out, const float *in);

float urok_rnnoise_process_pcm(void *process, void *state, const int16_t *in, int16_t *out, int frames)
{
    process_frame_fn fn = (process_frame_fn)process;
    float x[480], y[480], voice = 0.f;
    for (int f = 0; f < frames; f++, in += 480, out += 480) {
        for (int i = 0; i < 480; i++)
            x[i] = in[i];
        float p = fn(state, y, x);
        if (p > voice)
            voice = p;
        for (int i = 0; i < 480; i++) {
            float v = y[i] < -32768.f ? -32768.f : y[i] > 32767.f ? 32767.f : y[i];
            out[i] = (int16_t)lrintf(v);
        }
    }
    return voice;
}

/* RNNoise's fidelity on audio that an Opus decoder gives (media/rnnoise.py, docs/benchmarks.md).
 *
 * rnnoise_process_frame first runs its input through a second-order high-pass (poles at r 0.998,
 * ~25 Hz: rnn_biquad).  It removes DC and rumble, which an Opus decoder's output no longer has
 * (the publisher's libopus removed them: a high-pass of 60 Hz or more in VoIP mode, a 3 Hz DC
 * reject otherwise), but its phase shift reaches well into a man's fundamental (100-200 Hz), and
 * there it adds to the publisher's own high-pass: through the WebRTC path (aiortc publisher at
 * 96 kbps VoIP, recorded speech) it cost clean speech 3.0 dB of SI-SDR, with it kept out 0.55 dB,
 * and pink noise at 0 dB SNR went from +3.1 to +5.4 dB.  The model sees the same features either
 * way (its lowest band starts at 0 Hz, but a 25 Hz filter changes nothing above the 60 Hz the
 * publisher left).  librnnoise calls rnn_biquad and rnn_pitch_filter through its PLT, like
 * rnn_compute_linear_c, so they land here too: with UROK_KEEP_LOW set the input goes on unfiltered;
 * otherwise (and for the pitch filter, which stays as it is by default: it removes noise between
 * the harmonics, 1 dB of spectral SNR in pink noise) librnnoise's own functions run, which
 * media/rnnoise.py registers right after loading librnnoise.  Unregistered (not loaded through
 * media/rnnoise.py), a filter asked for is skipped. */
#define UROK_KEEP_LOW 1 /* no input high-pass */
#define UROK_NO_PITCH_FILTER 2 /* no comb filter on the pitch harmonics */

typedef void (*biquad_fn)(float *y, float *mem, const float *x, const float *b, const float *a, int n);
typedef void (*pitch_filter_fn)(void *X, const void *P, const float *Ex, const float *Ep, const float *Exp,
                                const float *g);
static int fidelity = UROK_KEEP_LOW;
static biquad_fn stock_biquad;
static pitch_filter_fn stock_pitch_filter;

/* for media/rnnoise.py: librnnoise's own functions (dlsym on its handle finds them, not these) */
void urok_rnnoise_register(void *biquad, void *pitch_filter)
{
    stock_biquad = (biquad_fn)biquad;
    stock_pitch_filter = (pitch_filter_fn)pitch_filter;
}

/* UROK_* flags for every stream of the process; returns them (-1: ask only) */
int urok_rnnoise_fidelity(int flags)
{
    if (flags >= 0)
        fidelity = flags & (UROK_KEEP_LOW | UROK_NO_PITCH_FILTER);
    return fidelity;
}

void rnn_biquad(float *y, float *mem, const float *x, const float *b, const float *a, int n)
{
    if ((fidelity & UROK_KEEP_LOW) || stock_biquad == NULL) {
        if (y != x)
            memmove(y, x, sizeof(float) * (size_t)n);
        return;
    }
    stock_biquad(y, mem, x, b, a, n);
}

void rnn_pitch_filter(void *X, const void *P, const float *Ex, const float *Ep, const float *Exp, const float *g)
{
    if ((fidelity & UROK_NO_PITCH_FILTER) || stock_pitch_filter == NULL)
        return;
    stock_pitch_filter(X, P, Ex, Ep, Exp, g);
}

/* built by setuptools as an extension module (pyproject's ext-modules, like sfu's); never
 * imported: media/rnnoise.py loads the file with ctypes */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rnnoise_accel", NULL, -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__rnnoise_accel(void)
{
    return PyModule_Create(&module);
}
