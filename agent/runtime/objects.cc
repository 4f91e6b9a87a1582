#include "agent/runtime/objects.h"

#include <errno.h>
#include <sys/random.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "os/log.h"

namespace berth::lifecycle {
namespace {

// The one object whose id is `id` or starts with it; nullptr when none.
template <typename T>
absl::StatusOr<std::shared_ptr<T>> Match(const std::map<std::string, std::shared_ptr<T>>& objects,
                                         const std::string& id, const char* kind) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " id is empty"));
  auto it = objects.lower_bound(id);
  if (it == objects.end() || !absl::StartsWith(it->first, id)) return std::shared_ptr<T>();
  if (it->first != id) {
    auto next = std::next(it);
    if (next != objects.end() && absl::StartsWith(next->first, id)) {
      return absl::InvalidArgumentError(absl::StrCat(kind, " id prefix `", id,
                                                     "` is ambiguous: it matches `", it->first,
                                                     "` and `", next->first, "`"));
    }
  }
  return it->second;
}

template <typename T>
absl::StatusOr<std::shared_ptr<T>> Required(absl::StatusOr<std::shared_ptr<T>> found,
                                            const std::string& id, const char* field,
                                            const char* kind) {
  if (!found.ok()) {
    return absl::Status(found.status().code(), absl::StrCat(field, ": ", found.status().message()));
  }
  if (*found == nullptr) {
    return absl::NotFoundError(absl::StrCat(field, ": no ", kind, " `", id, "`"));
  }
  return found;
}

}  // namespace

absl::Status Registry::Reserve(const std::string& name, const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = names_.emplace(name, id);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("name `", name, "` is already reserved for `", it->second, "`"));
  }
  return absl::OkStatus();
}

void Registry::Release(const std::string& name) {
  absl::MutexLock lock(&mu_);
  names_.erase(name);
}

void Registry::Add(std::shared_ptr<SandboxObject> sandbox) {
  absl::MutexLock lock(&mu_);
  sandboxes_[sandbox->id] = std::move(sandbox);
}

void Registry::Add(std::shared_ptr<ContainerObject> container) {
  absl::MutexLock lock(&mu_);
  containers_[container->id] = std::move(container);
}

void Registry::EraseSandbox(const std::string& id) {
  absl::MutexLock lock(&mu_);
  sandboxes_.erase(id);
}

void Registry::EraseContainer(const std::string& id) {
  absl::MutexLock lock(&mu_);
  containers_.erase(id);
}

absl::StatusOr<std::shared_ptr<SandboxObject>> Registry::LookupSandbox(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  return Match(sandboxes_, id, "pod sandbox");
}

absl::StatusOr<std::shared_ptr<ContainerObject>> Registry::LookupContainer(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  return Match(containers_, id, "container");
}

absl::StatusOr<std::shared_ptr<SandboxObject>> Registry::FindSandbox(const std::string& id,
                                                                     const char* field) const {
  return Required(LookupSandbox(id), id, field, "pod sandbox");
}

absl::StatusOr<std::shared_ptr<ContainerObject>> Registry::FindContainer(const std::string& id,
                                                                         const char* field) const {
  return Required(LookupContainer(id), id, field, "container");
}

std::vector<std::shared_ptr<SandboxObject>> Registry::Sandboxes() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<SandboxObject>> out;
  out.reserve(sandboxes_.size());
  for (const auto& [id, s] : sandboxes_) out.push_back(s);
  return out;
}

std::vector<std::shared_ptr<ContainerObject>> Registry::Containers() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<ContainerObject>> out;
  out.reserve(containers_.size());
  for (const auto& [id, c] : containers_) out.push_back(c);
  return out;
}

std::vector<std::shared_ptr<ContainerObject>> Registry::ContainersOf(
    const std::string& sandbox_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<ContainerObject>> out;
  for (const auto& [id, c] : containers_) {
    if (c->sandbox_id == sandbox_id) out.push_back(c);
  }
  return out;
}

bool Registry::ImageInUse(const std::string& image_id) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, c] : containers_) {
    if (c->image_id == image_id) return true;
  }
  return false;
}

size_t Registry::ContainerCount() const {
  absl::MutexLock lock(&mu_);
  return containers_.size();
}

std::string NewId() {
  char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      BERTH_LOG(ERROR) << "getrandom: " << strerror(errno);
      abort();  // no randomness: no safe ids
    }
    got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

std::string SandboxName(const ::runtime::v1::PodSandboxMetadata& m) {
  return absl::StrCat(m.name(), "_", m.namespace_(), "_", m.uid(), "_", m.attempt());
}

std::string ContainerName(const ::runtime::v1::ContainerMetadata& c,
                          const ::runtime::v1::PodSandboxMetadata& s) {
  return absl::StrCat(c.name(), "_", s.name(), "_", s.namespace_(), "_", s.uid(), "_", c.attempt());
}

}  // namespace berth::lifecycle
