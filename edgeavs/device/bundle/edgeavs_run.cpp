// edgeavs-run: run an edgeavs model library on frames + audio from files, without Python.
//
//   edgeavs-run MODEL.so --frames FRAMES --audio AUDIO [--out LOGITS.npy|.bin] [--mask MASK.png]
//               [--runs N] [--warmup W] [--threads T] [--io IO.txt]
//
// FRAMES: (N,3,H,W) float32, AUDIO: (N,32000) float32, each a .npy file (little-endian <f4,
// C order) or raw little-endian float32 (any other name; the shape then comes from IO.txt,
// default: io.txt beside MODEL.so, lines "NAME DIM DIM ..." for frames, waveform, logits).
// --out writes the logits (.npy, or raw float32 for another name), --mask a grey PNG of the
// mask (logit > 0 is white; N frames stacked top to bottom). Both are written beside their
// name and renamed, so a failed run leaves nothing half-written. It runs W warm-up runs, then
// N timed ones, and prints their latency (median, min, max) in one line:
//   latency_ms median=... min=... max=... runs=N warmup=W threads=T
// Exit 0 on success, 1 if the model fails, 2 for bad arguments or inputs.
#include "edgeavs_model.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(int code, const std::string& why) {
  std::fprintf(stderr, "edgeavs-run: %s\n", why.c_str());
  std::exit(code);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die(2, path + ": cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Array {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

int64_t count_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + ")";
}

// A .npy file (format 1.x/2.x/3.x), float32 little-endian, C order.
Array read_npy(const std::string& path) {
  std::string b = read_file(path);
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) die(2, path + ": not a .npy file");
  int major = static_cast<unsigned char>(b[6]);
  size_t hlen, off;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | (static_cast<unsigned char>(b[9]) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) die(2, path + ": truncated .npy header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= size_t(static_cast<unsigned char>(b[8 + i])) << (8 * i);
    off = 12;
  } else {
    die(2, path + ": unsupported .npy version " + std::to_string(major));
  }
  if (off + hlen > b.size()) die(2, path + ": truncated .npy header");
  std::string h = b.substr(off, hlen);
  if (h.find("'descr': '<f4'") == std::string::npos)
    die(2, path + ": not float32 (<f4) data; save it with .astype(np.float32)");
  if (h.find("'fortran_order': False") == std::string::npos)
    die(2, path + ": Fortran-ordered array; save a C-ordered one");
  size_t p = h.find("'shape': (");
  size_t q = p == std::string::npos ? p : h.find(')', p);
  if (q == std::string::npos) die(2, path + ": .npy header has no shape");
  Array a;
  std::string dims = h.substr(p + 10, q - p - 10);
  std::stringstream ss(dims);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t s = item.find_first_not_of(" ");
    if (s == std::string::npos) continue;
    char* end = nullptr;
    long long v = std::strtoll(item.c_str() + s, &end, 10);
    if (v < 0 || v > (1LL << 31)) die(2, path + ": bad dimension in .npy shape");
    a.shape.push_back(v);
  }
  size_t body = off + hlen;
  size_t need = size_t(count_of(a.shape)) * sizeof(float);
  if (b.size() - body != need)
    die(2, path + ": holds " + std::to_string(b.size() - body) + " data bytes, shape " +
               shape_text(a.shape) + " needs " + std::to_string(need));
  a.data.resize(need / sizeof(float));
  std::memcpy(a.data.data(), b.data() + body, need);
  return a;
}

Array read_raw(const std::string& path, const std::vector<int64_t>& shape) {
  std::string b = read_file(path);
  size_t need = size_t(count_of(shape)) * sizeof(float);
  if (b.size() != need)
    die(2, path + ": " + std::to_string(b.size()) + " bytes; raw float32 of shape " +
               shape_text(shape) + " is " + std::to_string(need));
  Array a{shape, std::vector<float>(need / sizeof(float))};
  std::memcpy(a.data.data(), b.data(), need);
  return a;
}

std::map<std::string, std::vector<int64_t>> read_io(const std::string& path) {
  std::map<std::string, std::vector<int64_t>> io;
  std::ifstream in(path);
  if (!in) return io;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name;
    if (!(ls >> name) || name[0] == '#') continue;
    int64_t d;
    while (ls >> d) io[name].push_back(d);
  }
  return io;
}

// Write `bytes` to `path` through a temporary file in the same folder and a rename.
void write_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) die(2, path + ": cannot be written");
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (fsync(fileno(f)) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    die(2, path + ": writing failed");
  }
}

std::string npy_bytes(const std::vector<int64_t>& shape, const float* data) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += std::to_string(shape[i]) + ",";
  if (shape.size() > 1) dims.pop_back();
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  size_t total = 10 + h.size() + 1;
  h += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += char(h.size() & 255);
  out += char(h.size() >> 8);
  out += h;
  out.append(reinterpret_cast<const char*>(data), size_t(count_of(shape)) * sizeof(float));
  return out;
}

uint32_t crc32(const unsigned char* p, size_t n, uint32_t c = 0xFFFFFFFFu) {
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c;
}

void put32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) *s += char((v >> (8 * i)) & 255);
}

void chunk(std::string* png, const char* type, const std::string& data) {
  put32(png, uint32_t(data.size()));
  std::string body = std::string(type, 4) + data;
  *png += body;
  put32(png, ~crc32(reinterpret_cast<const unsigned char*>(body.data()), body.size()));
}

// An 8-bit greyscale PNG, its pixels in stored (uncompressed) deflate blocks: no zlib needed.
std::string png_bytes(int width, int height, const std::vector<unsigned char>& grey) {
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw += char(0);  // filter: none
    raw.append(reinterpret_cast<const char*>(&grey[size_t(y) * width]), width);
  }
  std::string z = "\x78\x01";
  for (size_t pos = 0; pos < raw.size() || pos == 0;) {
    size_t n = std::min<size_t>(65535, raw.size() - pos);
    bool last = pos + n == raw.size();
    z += char(last ? 1 : 0);
    z += char(n & 255);
    z += char(n >> 8);
    z += char(~n & 255);
    z += char((~n >> 8) & 255);
    z.append(raw, pos, n);
    pos += n;
    if (last) break;
  }
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put32(&z, (b << 16) | a);
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put32(&ihdr, uint32_t(width));
  put32(&ihdr, uint32_t(height));
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit, greyscale, deflate, no filter/interlace
  chunk(&png, "IHDR", ihdr);
  chunk(&png, "IDAT", z);
  chunk(&png, "IEND", "");
  return png;
}

int parse_int(const std::string& opt, const char* v, int lo, int hi) {
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (!end || *end || x < lo || x > hi)
    die(2, opt + " " + v + ": expected an integer in " + std::to_string(lo) + ".." +
               std::to_string(hi));
  return int(x);
}

std::string dir_of(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? "." : path.substr(0, s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, frames_path, audio_path, out_path, mask_path, io_path;
  int runs = 10, warmup = 2, threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) die(2, a + " needs a value");
      return argv[++i];
    };
    if (a == "--frames") frames_path = value();
    else if (a == "--audio") audio_path = value();
    else if (a == "--out") out_path = value();
    else if (a == "--mask") mask_path = value();
    else if (a == "--io") io_path = value();
    else if (a == "--runs") runs = parse_int(a, value(), 1, 1000000);
    else if (a == "--warmup") warmup = parse_int(a, value(), 0, 1000000);
    else if (a == "--threads") threads = parse_int(a, value(), 0, 1024);
    else if (a == "-h" || a == "--help") {
      std::printf("usage: edgeavs-run MODEL.so --frames FRAMES --audio AUDIO [--out LOGITS.npy] "
                  "[--mask MASK.png] [--runs N] [--warmup W] [--threads T] [--io IO.txt]\n");
      return 0;
    } else if (!a.empty() && a[0] == '-') die(2, "unknown option " + a);
    else if (model.empty()) model = a;
    else die(2, "unexpected argument " + a);
  }
  if (model.empty() || frames_path.empty() || audio_path.empty())
    die(2, "usage: edgeavs-run MODEL.so --frames FRAMES --audio AUDIO [--out LOGITS.npy] "
           "[--mask MASK.png] [--runs N] [--warmup W] [--threads T]");
  if (io_path.empty()) io_path = dir_of(model) + "/io.txt";
  auto io = read_io(io_path);

  auto load = [&](const std::string& path, const char* name) {
    if (ends_with(path, ".npy")) {
      Array a = read_npy(path);
      if (io.count(name) && a.shape != io[name])
        die(2, path + ": shape " + shape_text(a.shape) + ", the model takes " + name + " " +
                   shape_text(io[name]));
      return a;
    }
    if (!io.count(name))
      die(2, path + ": raw float32 needs the shape of " + name + " (from " + io_path + ")");
    return read_raw(path, io[name]);
  };
  Array frames = load(frames_path, "frames");
  Array audio = load(audio_path, "waveform");
  if (frames.shape.size() != 4 || frames.shape[1] != 3)
    die(2, frames_path + ": frames must be (N,3,H,W), not " + shape_text(frames.shape));
  if (audio.shape.size() != 2 || audio.shape[0] != frames.shape[0])
    die(2, audio_path + ": audio must be (N,32000) with the frames' N, not " +
               shape_text(audio.shape));

  char err[1024];
  edgeavs_model* m = edgeavs_model_open(model.c_str(), threads, err, sizeof err);
  if (!m) die(1, err);
  std::vector<int64_t> out_want =
      io.count("logits") ? io["logits"]
                         : std::vector<int64_t>{frames.shape[0], 1, frames.shape[2], frames.shape[3]};
  std::vector<float> logits(size_t(count_of(out_want)));
  int64_t oshape[8];
  int ondim = 0;
  std::vector<double> ms;
  for (int r = 0; r < warmup + runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = edgeavs_model_run(m, frames.data.data(), frames.shape.data(), int(frames.shape.size()),
                               audio.data.data(), audio.shape.data(), int(audio.shape.size()),
                               logits.data(), logits.size(), oshape, &ondim);
    auto t1 = std::chrono::steady_clock::now();
    if (rc != 0) die(1, std::string("run failed: ") + edgeavs_model_error(m));
    if (r >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  edgeavs_model_close(m);
  std::vector<int64_t> shape(oshape, oshape + ondim);
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  size_t n = sorted.size();
  double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);

  if (!out_path.empty()) {
    if (ends_with(out_path, ".npy")) {
      write_atomic(out_path, npy_bytes(shape, logits.data()));
    } else {
      write_atomic(out_path, std::string(reinterpret_cast<const char*>(logits.data()),
                                         size_t(count_of(shape)) * sizeof(float)));
    }
  }
  if (!mask_path.empty()) {
    if (shape.size() != 4) die(1, "the output " + shape_text(shape) + " is not (N,1,H,W)");
    int h = int(shape[2]), w = int(shape[3]), frames_n = int(shape[0]);
    std::vector<unsigned char> grey(size_t(frames_n) * h * w);
    size_t plane = size_t(h) * w;
    for (int f = 0; f < frames_n; ++f)  // channel 0 of each frame
      for (size_t p = 0; p < plane; ++p)
        grey[f * plane + p] = logits[size_t(f) * shape[1] * plane + p] > 0 ? 255 : 0;
    write_atomic(mask_path, png_bytes(w, h * frames_n, grey));
  }
  std::printf("output %s float32%s%s\n", shape_text(shape).c_str(),
              out_path.empty() ? "" : (" -> " + out_path).c_str(),
              mask_path.empty() ? "" : (", mask -> " + mask_path).c_str());
  std::printf("latency_ms median=%.3f min=%.3f max=%.3f runs=%d warmup=%d threads=%s\n", median,
              sorted.front(), sorted.back(), runs, warmup,
              std::getenv("TVM_NUM_THREADS") ? std::getenv("TVM_NUM_THREADS") : "default");
  return 0;
}
