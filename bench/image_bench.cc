// image_bench: how fast Berth pulls and unpacks a ~100 MB image, next to skopeo.
//
//   build/bench/image_bench [--n 5] [--size-mb 100] [--json FILE]   (as root)
//
// Builds five gzip layers (mostly pseudo-random file bytes, some text) totalling
// about --size-mb MB compressed, pushes them as one OCI image to Debian's
// docker-registry on loopback, then, N times each, alternating:
//   berth:  ImageManager::Pull into a fresh root (download, verify, unpack every
//           layer into its own dir, record in SQLite), which is when PullImage
//           answers; then Flush (the write-behind syncfs), timed on its own, so
//           "until durable" is printed too;
//   skopeo: `skopeo copy docker://... oci:<fresh dir>`, which fetches and stores
//           the blobs but unpacks nothing; and that copy plus `tar -xzf` of each
//           layer blob into one dir (GNU tar, no fsync), the other side of fair.
// One warm-up round first. Every timed step starts after a sync(2), so one
// side's writeback does not land in the other's time, and every round's files
// stay until the end: this VM's root is ext4 without a journal, where creating
// inodes within a minute of deleting thousands costs a scan per inode
// (ext4 recently_deleted()), which would tax whoever runs after a cleanup.
// Compare ratios, not seconds.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/images/images.h"
#include "agent/images/registry_testing.h"
#include "agent/images/unpack_testing.h"
#include "agent/store/db.h"
#include "os/files.h"

#include "bench/bench_support.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using bench::Figures;
using bench::Run;
using bench::TimeMs;
using images::testing::LayerEntry;

constexpr double kMB = 1e6;
constexpr char kRepo[] = "bench/big";

// What Die must not leave behind: the registry process and the temp dir.
std::unique_ptr<images::testing::TestRegistry> g_registry;
std::string g_dir;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "image_bench: %s\n", what.c_str());
  g_registry.reset();
  if (!g_dir.empty()) fs::remove_all(g_dir);
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + std::string(v.status().ToString()));
  return *std::move(v);
}

// posix_spawn + waitpid, stdin/stdout to /dev/null, stderr to `err`.

std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? *text : "";
}

std::string NativeArch() {
  struct utsname u;
  uname(&u);
  const std::string m = u.machine;
  return m == "x86_64" ? "amd64" : m == "aarch64" ? "arm64" : m;
}

// One layer of about `bytes` gzip bytes: files of pseudo-random bytes, 1 KiB to
// 2 MiB (log-uniform), in a few dirs, plus text files (config-like lines, which
// gzip shrinks ~4x) of a quarter as many bytes, and a symlink.
std::vector<LayerEntry> LayerEntries(int layer, double bytes, std::mt19937_64& rng) {
  using images::testing::Dir;
  using images::testing::File;
  const std::string top = "l" + std::to_string(layer);
  std::vector<LayerEntry> e = {Dir(top)};
  std::uniform_real_distribution<double> log_size(std::log(1024.0), std::log(2 << 20));
  double random_left = bytes * 0.93, text_left = bytes * 0.25;
  for (int f = 0; random_left > 0 || text_left > 0; ++f) {
    const std::string dir = top + "/d" + std::to_string(f / 16);
    if (f % 16 == 0) e.push_back(Dir(dir));
    std::string data;
    if (random_left > 0 && f % 4 != 3) {
      const double want = std::min(std::exp(log_size(rng)), random_left + 8);
      data.resize(static_cast<size_t>(want) & ~size_t{7});
      for (size_t i = 0; i < data.size(); i += 8) {
        uint64_t r = rng();
        std::memcpy(&data[i], &r, 8);
      }
      random_left -= data.size() + 1;
    } else if (text_left > 0) {
      while (data.size() < 64 * 1024) {
        data += "option." + std::to_string(rng() % 5000) + " = \"value-" +
                std::to_string(rng() % 100000) + "\"  # set by layer " + top + "\n";
      }
      text_left -= data.size();
    } else {
      continue;
    }
    e.push_back(File(dir + "/f" + std::to_string(f), std::move(data), f % 7 == 0 ? 0755 : 0644));
  }
  e.push_back(images::testing::Symlink(top + "/latest", "d0/f0"));
  return e;
}

int Main(int argc, char** argv) {
  int n = 5;
  double size_mb = 100;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    auto [a, v] = bench::TakeFlag(argc, argv, i);
    if (a == "--n") {
      n = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--size-mb") {
      size_mb = std::max(1.0, std::atof(v.c_str()));
    } else if (a == "--json") {
      json_path = v;
    } else {
      std::fprintf(stderr, "usage: image_bench [--n N] [--size-mb MB] [--json FILE]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::printf("image_bench: skipped, needs root (layers are unpacked with their owners)\n");
    return 0;
  }
  const bool have_skopeo = access("/usr/bin/skopeo", X_OK) == 0;

  char tmpl[] = "/tmp/berth-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  g_dir = tmpl;
  const std::string dir = g_dir;
  fs::create_directories(dir + "/registry");
  fs::create_directories(dir + "/hosts");

  // The image: five layers, the base the biggest, as images tend to be.
  const std::vector<double> shares = {0.35, 0.25, 0.20, 0.12, 0.08};
  std::mt19937_64 rng(42);
  std::vector<std::string> layers;
  double image_bytes = 0, tar_bytes = 0;
  for (size_t i = 0; i < shares.size(); ++i) {
    const std::string tar = dir + "/layer" + std::to_string(i) + ".tar";
    absl::Status s = images::testing::WriteLayer(tar, images::testing::Compression::kNone,
                                                 LayerEntries(i, shares[i] * size_mb * kMB, rng));
    if (!s.ok()) Die("write layer: " + s.ToString());
    tar_bytes += fs::file_size(tar);
    if (Run({"/usr/bin/gzip", "-n", "-f", tar}) != 0) Die("gzip " + tar);
    layers.push_back(Must(ReadFile(tar + ".gz"), "read layer"));
    fs::remove(tar + ".gz");
    image_bytes += layers.back().size();
  }
  g_registry = Must(images::testing::TestRegistry::Start(dir + "/registry", {}), "registry");
  const images::testing::PushedImage pushed =
      Must(g_registry->PushImage(kRepo, "v1", layers, NativeArch()), "push");
  layers.clear();
  layers.shrink_to_fit();
  const std::string ref = g_registry->host() + "/" + kRepo + ":v1";

  // Berth: Database and ImageManager opened outside the timing, in a fresh dir.
  auto berth_iter = [&](const std::string& tag, double* flush_ms) {
    const std::string root = dir + "/b" + tag;
    fs::create_directories(root);
    store::Database db = Must(store::Database::Open(root + "/berth.db", {images::kImagesSchemaV1,
                                                                         images::kImagesSchemaV2}),
                              "open database");
    std::unique_ptr<images::ImageManager> m =
        Must(images::ImageManager::Open(
                 images::ImageManagerOptions{.root = root + "/images", .hosts_dir = dir + "/hosts"},
                 &db),
             "open image manager");
    images::ImageRecord img;
    sync();
    double ms = TimeMs([&] { img = Must(m->Pull(ref, {}), "berth pull"); });
    if (img.layers != pushed.layer_digests) Die("berth pulled other layers than were pushed");
    *flush_ms = TimeMs([&] {
      if (absl::Status s = m->Flush(); !s.ok()) Die("flush: " + s.ToString());
    });
    m.reset();
    return ms;
  };
  // skopeo: the copy, then GNU tar over the blobs it stored; both times.
  auto skopeo_iter = [&](const std::string& tag, double* copy, double* unpack) {
    const std::string dest = dir + "/s" + tag, rootfs = dest + "-rootfs", err = dir + "/err";
    fs::create_directories(rootfs);
    int rc = 0;
    sync();
    *copy = TimeMs([&] {
      rc = Run({"/usr/bin/skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + ref,
                "oci:" + dest + ":v1"},
               err);
    });
    if (rc != 0) Die("skopeo copy: " + Slurp(err));
    sync();
    *unpack = TimeMs([&] {
      for (const std::string& d : pushed.layer_digests) {
        const std::string blob = dest + "/blobs/sha256/" + d.substr(d.find(':') + 1);
        if (Run({"/usr/bin/tar", "-xzf", blob, "-C", rootfs}, err) != 0) Die("tar: " + Slurp(err));
      }
    });
  };

  Figures berth{"berth pull+unpack (PullImage answers)"},
      durable{"berth pull+unpack, until flushed to disk"},
      copy{"skopeo copy (fetch+store, no unpack)"}, copy_tar{"skopeo copy + tar -xzf each layer"};
  // One warm-up round, then alternate; who goes first swaps each round.
  for (int i = -1; i < n; ++i) {
    const std::string tag = i < 0 ? "w" : std::to_string(i);
    double b = 0, f = 0, c = 0, t = 0;
    if (have_skopeo && i % 2 != 0) skopeo_iter(tag, &c, &t);
    b = berth_iter(tag, &f);
    if (have_skopeo && i % 2 == 0) skopeo_iter(tag, &c, &t);
    if (i < 0) continue;
    berth.ms.push_back(b);
    durable.ms.push_back(b + f);
    if (have_skopeo) {
      copy.ms.push_back(c);
      copy_tar.ms.push_back(c + t);
    }
  }
  g_registry.reset();
  fs::remove_all(dir);
  g_dir.clear();

  std::vector<const Figures*> all = {&berth, &durable};
  if (have_skopeo) all.insert(all.end(), {&copy, &copy_tar});
  nlohmann::json json;
  std::printf(
      "image: %zu gzip layers, %.1f MB compressed (%.1f MB as tar), docker-registry on "
      "loopback, 1 warm-up round\n",
      pushed.layer_digests.size(), image_bytes / kMB, tar_bytes / kMB);
  std::printf("%-40s %6s %9s %9s %9s %9s\n", "ms", "n", "p50", "p90", "p99", "max");
  for (const Figures* f : all) {
    std::printf("%-40s %6zu %9.1f %9.1f %9.1f %9.1f\n", f->name.c_str(), f->ms.size(), f->Pct(0.5),
                f->Pct(0.9), f->Pct(0.99), f->Pct(1.0));
    nlohmann::json row = {{"name", f->name}, {"n", f->ms.size()}, {"p50_ms", f->Pct(0.5)}};
    row.update({{"p90_ms", f->Pct(0.9)}, {"p99_ms", f->Pct(0.99)}, {"max_ms", f->Pct(1.0)}});
    json["times"].push_back(row);
  }
  const double mbps = image_bytes / kMB / (berth.Pct(0.5) / 1000);
  std::printf("berth throughput, p50: %.1f MB/s compressed\n", mbps);
  json["image_mb"] = image_bytes / kMB;
  json["image_tar_mb"] = tar_bytes / kMB;
  json["berth_mb_per_s_p50"] = mbps;
  if (have_skopeo) {
    const double r_copy = berth.Pct(0.5) / copy.Pct(0.5);
    const double r_tar = berth.Pct(0.5) / copy_tar.Pct(0.5);
    std::printf("ratio berth / skopeo copy, p50:        %.2f   [target <= 1: %s]\n", r_copy,
                r_copy <= 1 ? "met" : "MISSED");
    const double r_durable = durable.Pct(0.5) / copy.Pct(0.5);
    std::printf("ratio berth until flushed / skopeo copy, p50: %.2f\n", r_durable);
    std::printf("ratio berth / (skopeo copy + tar), p50: %.2f\n", r_tar);
    std::printf(
        "note: skopeo copy stores blobs only, without fsync; berth also unpacks each layer, and "
        "flushes all of it behind the answer; the tar row unpacks too, without fsync\n");
    json["ratio_berth_flushed_over_skopeo_copy_p50"] = r_durable;
    json["ratio_berth_over_skopeo_copy_p50"] = r_copy;
    json["ratio_berth_over_skopeo_copy_tar_p50"] = r_tar;
  } else {
    std::printf("skopeo: not installed (/usr/bin/skopeo), no peer rows\n");
  }
  if (!json_path.empty()) std::ofstream(json_path) << json.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace berth

int main(int argc, char** argv) { return berth::Main(argc, argv); }
