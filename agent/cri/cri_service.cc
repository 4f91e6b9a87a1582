#include "agent/cri/cri_service.h"
#include "absl/strings/str_cat.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"

namespace berth {

const std::vector<std::string>& BerthSchema() {
  // Append only: a released version's SQL never changes (Database::Open runs
  // the versions a file lacks, in order).
  static const std::vector<std::string> schema = {images::kImagesSchemaV1};
  return schema;
}

absl::StatusOr<std::unique_ptr<CriService>> CriService::Create(AgentOptions options) {
  std::unique_ptr<CriService> cri(new CriService(std::move(options)));
  const AgentOptions& o = cri->options_;
  BERTH_ASSIGN_OR_RETURN(store::Database db,
                         store::Database::Open(o.root_dir + "/berth.db", BerthSchema()));
  cri->db_ = std::make_unique<store::Database>(std::move(db));
  images::ImageManagerOptions io;
  io.root = o.root_dir + "/images";
  io.hosts_dir = o.registry_config_dir;
  BERTH_ASSIGN_OR_RETURN(cri->images_, images::ImageManager::Open(io, cri->db_.get()));
  for (const std::string& dir : o.import_dirs) {
    absl::StatusOr<std::vector<images::ImageRecord>> imported = cri->images_->ImportOciLayout(dir);
    if (!imported.ok()) return Annotate(imported.status(), absl::StrCat("--import ", dir));
    for (const images::ImageRecord& r : *imported) {
      BERTH_LOG(INFO) << "imported " << (r.repo_tags.empty() ? r.id : r.repo_tags[0]) << " from "
                      << dir;
    }
  }
  return cri;
}

}  // namespace berth
