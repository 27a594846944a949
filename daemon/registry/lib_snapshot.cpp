#include "daemon/registry/lib_snapshot.hpp"

#include "common/read_source_file.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace luaflow::registry {

namespace {

// Deeper than any sensible module tree, and a bound on a symlink loop.
constexpr int kMaxDepth = 16;

bool ends_with_lua(const std::string& name) {
    return name.size() > 4 && name.compare(name.size() - 4, 4, ".lua") == 0;
}

void walk(const std::string& abs_dir, const std::string& rel_dir, int depth, LibSnapshot& out,
          std::vector<std::pair<std::string, std::string>>& found) {
    DIR* d = ::opendir(abs_dir.c_str());
    if (!d) {
        if (errno != ENOENT)
            out.errors.push_back(abs_dir + ": cannot read the directory: " + std::strerror(errno));
        return;
    }
    out.dirs.push_back(abs_dir);
    std::vector<std::string> names;
    while (dirent* ent = ::readdir(d)) {
        std::string name = ent->d_name;
        if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
        std::string abs = abs_dir + "/" + name;
        struct stat st {};
        if (::stat(abs.c_str(), &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < kMaxDepth) walk(abs, rel_dir + "/" + name, depth + 1, out, found);
        } else if (ends_with_lua(name)) {
            // A module that is not a regular file (a FIFO, a device) is named, and never opened.
            if (S_ISREG(st.st_mode))
                found.emplace_back(rel_dir + "/" + name, abs);
            else if (auto r = read_source_file(abs); !r)
                out.errors.push_back(r.error().message);
        }
    }
}

} // namespace

std::optional<FileStamp> stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return FileStamp{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                     static_cast<std::int64_t>(st.st_size)};
}

LibSnapshot scan_lib(const std::string& workflows_dir, const LibSnapshot* previous) {
    LibSnapshot out;
    std::vector<std::pair<std::string, std::string>> found; // relative path, absolute path
    walk(workflows_dir + "/lib", "lib", 0, out, found);
    auto files = std::make_shared<scripting::SourceFiles>();
    bool same = previous && previous->files && previous->stamps.size() == found.size();
    for (const auto& [rel, abs] : found) {
        auto stamp = stamp_of(abs);
        if (!stamp) continue;
        if (previous) {
            auto old = previous->stamps.find(rel);
            if (old != previous->stamps.end() && old->second == *stamp) {
                auto text = previous->files->find(rel);
                if (text != previous->files->end()) {
                    files->emplace(rel, text->second);
                    out.stamps.emplace(rel, *stamp);
                    continue;
                }
            }
        }
        same = false;
        auto text = read_source_file(abs);
        if (!text) {
            out.errors.push_back(text.error().message);
            continue;
        }
        files->emplace(rel, std::move(*text));
        out.stamps.emplace(rel, *stamp);
    }
    if (same && out.stamps.size() == previous->stamps.size())
        out.files = previous->files;
    else
        out.files = std::move(files);
    return out;
}

} // namespace luaflow::registry
