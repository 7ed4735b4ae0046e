/* run_model.c: call an edgeavs model from C (see include/edgeavs_model.h).
 *
 *   cc -O2 -Iinclude examples/run_model.c -Llib -ledgeavs_model -Wl,-rpath,'$ORIGIN/lib' -o run_model
 *   ./run_model model/model-linux-aarch64.so [frames.f32 audio.f32]
 *
 * Reads the input shapes from model/io.txt beside the library, runs the model once on zero
 * inputs (or on raw float32 files given after the library), and prints the output's shape and
 * how many pixels are in the mask. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeavs_model.h"

static int read_shape(const char* io_path, const char* name, int64_t* shape) {
  FILE* f = fopen(io_path, "r");
  char line[256];
  int ndim = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    char key[64];
    int used = 0;
    if (sscanf(line, "%63s%n", key, &used) != 1 || strcmp(key, name) != 0) continue;
    char* p = line + used;
    long long d;
    int n;
    while (ndim < 8 && sscanf(p, "%lld%n", &d, &n) == 1) {
      shape[ndim++] = d;
      p += n;
    }
    break;
  }
  fclose(f);
  return ndim;
}

static size_t count(const int64_t* shape, int ndim) {
  size_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= (size_t)shape[i];
  return n;
}

static float* load(const char* path, size_t n) {
  float* data = calloc(n, sizeof(float));
  if (!data || !path) return data;
  FILE* f = fopen(path, "rb");
  if (!f || fread(data, sizeof(float), n, f) != n) {
    fprintf(stderr, "run_model: %s: expected %zu float32 values\n", path, n);
    exit(2);
  }
  fclose(f);
  return data;
}

int main(int argc, char** argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: run_model MODEL.so [FRAMES.f32 AUDIO.f32]\n");
    return 2;
  }
  char io[4096];
  const char* slash = strrchr(argv[1], '/');
  snprintf(io, sizeof io, "%.*s/io.txt", slash ? (int)(slash - argv[1]) : 1,
           slash ? argv[1] : ".");
  int64_t fshape[8], wshape[8], oshape[8];
  int fnd = read_shape(io, "frames", fshape), wnd = read_shape(io, "waveform", wshape);
  int ond = read_shape(io, "logits", oshape);
  if (fnd != 4 || wnd != 2 || ond == 0) {
    fprintf(stderr, "run_model: %s does not give the frames, waveform and logits shapes\n", io);
    return 2;
  }
  float* frames = load(argc == 4 ? argv[2] : NULL, count(fshape, fnd));
  float* audio = load(argc == 4 ? argv[3] : NULL, count(wshape, wnd));
  size_t cap = count(oshape, ond);
  float* logits = calloc(cap, sizeof(float));

  char err[512];
  edgeavs_model* m = edgeavs_model_open(argv[1], 0, err, sizeof err);
  if (!m) {
    fprintf(stderr, "run_model: %s\n", err);
    return 1;
  }
  int64_t got[8];
  int got_ndim = 0;
  if (edgeavs_model_run(m, frames, fshape, fnd, audio, wshape, wnd, logits, cap, got,
                        &got_ndim) != 0) {
    fprintf(stderr, "run_model: %s\n", edgeavs_model_error(m));
    return 1;
  }
  size_t on = 0;
  for (size_t i = 0; i < count(got, got_ndim); ++i) on += logits[i] > 0;
  printf("output (");
  for (int i = 0; i < got_ndim; ++i) printf(i ? ",%lld" : "%lld", (long long)got[i]);
  printf(") float32, %zu pixels in the mask, logits[0] = %.6g\n", on, logits[0]);
  edgeavs_model_close(m);
  free(frames);
  free(audio);
  free(logits);
  return 0;
}
