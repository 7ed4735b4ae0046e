/* edgeavs_model.h: run an edgeavs-compiled LightAVSeg library (model.so) from C or C++.
 *
 * The library is a TVM Relax executable; this API loads it with the TVM runtime shipped in the
 * bundle (lib/libtvm_runtime.so, lib/libtvm_ffi.so) and runs its "main" function on the CPU.
 * No Python is involved. Link with -ledgeavs_model (lib/libedgeavs_model.so).
 *
 *   char err[512];
 *   edgeavs_model* m = edgeavs_model_open("model/model-linux-aarch64.so", 0, err, sizeof err);
 *   if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *   int64_t fshape[4] = {1, 3, 224, 224}, wshape[2] = {1, 32000}, oshape[8];
 *   int ondim = 0;
 *   if (edgeavs_model_run(m, frames, fshape, 4, waveform, wshape, 2,
 *                         logits, 224 * 224, oshape, &ondim) != 0)
 *     fprintf(stderr, "%s\n", edgeavs_model_error(m));
 *   edgeavs_model_close(m);
 *
 * Inputs: frames (N,3,H,W) float32, ImageNet-normalised RGB; waveform (N,32000) float32, one
 * second of 32 kHz mono audio per frame; N, H, W as the model was compiled (bundle.json).
 * Output: logits (N,1,H,W) float32; a pixel is in the mask where its logit is > 0.
 *
 * Threads: the TVM thread pool is sized once per process, at the first run: num_threads > 0
 * sets TVM_NUM_THREADS for it (unless the variable is already set); 0 leaves TVM's default.
 * A handle may be used by one thread at a time.
 *
 * Android / JNI: build the bundle with --os android (NDK); load lib/libtvm_ffi.so,
 * lib/libtvm_runtime.so and lib/libedgeavs_model.so with System.loadLibrary in that order from
 * the app's jniLibs/arm64-v8a, copy model.so to the app's files directory (a path dlopen can
 * read), and call these functions from a JNI method; they take plain pointers, so a
 * GetFloatArrayElements / direct ByteBuffer is all the glue there is.
 */
#ifndef EDGEAVS_MODEL_H_
#define EDGEAVS_MODEL_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define EDGEAVS_API __declspec(dllexport)
#else
#define EDGEAVS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edgeavs_model edgeavs_model;

/* Load the library at `library_path`. NULL on failure, with the reason in `err`. */
EDGEAVS_API edgeavs_model* edgeavs_model_open(const char* library_path, int num_threads,
                                              char* err, size_t err_len);

/* Run once. Shapes are int64 arrays of ndim entries. The output is copied into `logits`
 * (capacity in floats); its shape goes to `out_shape` (room for 8) and `out_ndim`.
 * 0 on success, -1 on failure (edgeavs_model_error tells why). */
EDGEAVS_API int edgeavs_model_run(edgeavs_model* model, const float* frames,
                                  const int64_t* frames_shape, int frames_ndim,
                                  const float* waveform, const int64_t* waveform_shape,
                                  int waveform_ndim, float* logits, size_t logits_capacity,
                                  int64_t* out_shape, int* out_ndim);

/* The last error of `model` (an empty string when none). */
EDGEAVS_API const char* edgeavs_model_error(const edgeavs_model* model);

EDGEAVS_API void edgeavs_model_close(edgeavs_model* model);

#ifdef __cplusplus
}
#endif

#endif /* EDGEAVS_MODEL_H_ */
