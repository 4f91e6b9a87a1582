#include "agent/images/unpack_testing.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <clocale>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace berth::images::testing {
namespace {

struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

absl::Status Error(archive* a, absl::string_view call) {
  return absl::InternalError(absl::StrCat(call, ": ", archive_error_string(a)));
}

}  // namespace

LayerEntry File(std::string path, std::string data, mode_t perm) {
  LayerEntry e{.path = std::move(path), .type = AE_IFREG, .perm = perm};
  e.data = std::move(data);
  return e;
}

LayerEntry Dir(std::string path, mode_t perm) {
  return LayerEntry{.path = std::move(path), .type = AE_IFDIR, .perm = perm};
}

LayerEntry Symlink(std::string path, std::string target) {
  LayerEntry e{.path = std::move(path), .type = AE_IFLNK, .perm = 0777};
  e.link = std::move(target);
  return e;
}

LayerEntry Hardlink(std::string path, std::string target) {
  LayerEntry e{.path = std::move(path), .type = AE_IFREG};
  e.link = std::move(target);
  e.hardlink = true;
  return e;
}

LayerEntry Node(std::string path, mode_t type, unsigned major, unsigned minor) {
  LayerEntry e{.path = std::move(path), .type = type, .perm = 0666};
  e.rdev_major = major;
  e.rdev_minor = minor;
  return e;
}

absl::Status WriteLayer(const std::string& path, Compression compression,
                        const std::vector<LayerEntry>& entries) {
  // Names as UTF-8 in pax headers, as Go's archive/tar writes them; libarchive's
  // writer takes the locale's charset and crashes converting non-ASCII in "C".
  std::string old_locale = setlocale(LC_CTYPE, nullptr);
  setlocale(LC_CTYPE, "C.UTF-8");
  absl::Cleanup restore = [&old_locale] { setlocale(LC_CTYPE, old_locale.c_str()); };
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  archive_write_set_format_pax(a.get());
  int rc = ARCHIVE_OK;
  if (compression == Compression::kGzip) rc = archive_write_add_filter_gzip(a.get());
  if (compression == Compression::kZstd) rc = archive_write_add_filter_zstd(a.get());
  if (rc != ARCHIVE_OK) return Error(a.get(), "archive_write_add_filter");
  if (archive_write_open_filename(a.get(), path.c_str()) != ARCHIVE_OK) {
    return Error(a.get(), "archive_write_open_filename");
  }
  for (const LayerEntry& in : entries) {
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), in.path.c_str());
    archive_entry_set_filetype(e.get(), in.type);
    archive_entry_set_perm(e.get(), in.perm);
    archive_entry_set_uid(e.get(), in.uid >= 0 ? in.uid : geteuid());
    archive_entry_set_gid(e.get(), in.gid >= 0 ? in.gid : getegid());
    archive_entry_set_mtime(e.get(), in.mtime, in.mtime_nsec);
    archive_entry_set_rdevmajor(e.get(), in.rdev_major);
    archive_entry_set_rdevminor(e.get(), in.rdev_minor);
    if (in.hardlink) {
      archive_entry_set_hardlink(e.get(), in.link.c_str());
    } else if (in.type == AE_IFLNK) {
      archive_entry_set_symlink(e.get(), in.link.c_str());
    }
    for (const auto& [key, value] : in.xattrs) {
      archive_entry_xattr_add_entry(e.get(), key.c_str(), value.data(), value.size());
    }
    bool has_data = in.type == AE_IFREG && !in.hardlink;
    archive_entry_set_size(e.get(), has_data ? in.data.size() : 0);
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
      return Error(a.get(), "archive_write_header");
    }
    if (has_data && !in.data.empty() &&
        archive_write_data(a.get(), in.data.data(), in.data.size()) !=
            static_cast<la_ssize_t>(in.data.size())) {
      return Error(a.get(), "archive_write_data");
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return Error(a.get(), "archive_write_close");
  return absl::OkStatus();
}

}  // namespace berth::images::testing
