#include "daemon/registry/workflow_files.hpp"

#include "common/read_source_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <sys/stat.h>

namespace luaflow::registry {

namespace {

constexpr int kMaxWatchDepth = 16;
constexpr std::size_t kMaxWatchedDirs = 4096;

void add_directories(const std::string& dir, int depth, std::vector<std::string>& out) {
    if (out.size() >= kMaxWatchedDirs) return;
    out.push_back(dir);
    if (depth >= kMaxWatchDepth) return;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> subdirs;
    while (dirent* ent = ::readdir(d)) {
        std::string name = ent->d_name;
        if (name.empty() || name[0] == '.') continue;
        std::string path = dir + "/" + name;
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) subdirs.push_back(std::move(path));
    }
    ::closedir(d);
    std::sort(subdirs.begin(), subdirs.end());
    for (const std::string& sub : subdirs)
        add_directories(sub, depth + 1, out);
}

} // namespace

Result<std::vector<WorkflowFile>> workflow_files(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d)
        return make_error(ErrorCode::unavailable,
                          "cannot read the workflows directory " + dir + ": " + std::strerror(errno));
    std::vector<WorkflowFile> files;
    while (dirent* ent = ::readdir(d)) {
        std::string name = ent->d_name;
        if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".lua") != 0) continue;
        std::string path = dir + "/" + name;
        // stat, not d_type: it follows a symlink, and some file systems leave d_type unknown.
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
        files.push_back({name.substr(0, name.size() - 4), std::move(path),
                         S_ISREG(st.st_mode) ? std::string() : std::string(file_kind(st.st_mode))});
    }
    ::closedir(d);
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
    return files;
}

std::vector<std::string> watched_directories(const std::string& dir) {
    std::vector<std::string> out;
    add_directories(dir, 0, out);
    return out;
}

} // namespace luaflow::registry
