#include "stdlib/fs_path.hpp"

#include <optional>

namespace luaflow::stdlib {

namespace {

using Parts = std::vector<std::string_view>;

// The parts of a path between '/', without empty and "." parts.
Parts split(std::string_view path) {
    Parts parts;
    std::size_t i = 0;
    while (i <= path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view part = path.substr(i, j - i);
        if (!part.empty() && part != ".") parts.push_back(part);
        i = j + 1;
    }
    return parts;
}

std::string join(const Parts& parts, std::size_t from, bool absolute) {
    std::string out;
    for (std::size_t i = from; i < parts.size(); ++i) {
        if (absolute || i > from) out += '/';
        out.append(parts[i]);
    }
    return out;
}

bool starts_with(const Parts& path, const Parts& root) {
    if (root.size() > path.size()) return false;
    for (std::size_t i = 0; i < root.size(); ++i)
        if (path[i] != root[i]) return false;
    return true;
}

bool is_absolute(const std::string& dir) {
    return !dir.empty() && dir.front() == '/';
}

std::string allowed_list(const FsRoots& roots) {
    std::vector<std::string> names;
    for (const auto& p : roots.paths)
        if (is_absolute(p)) names.push_back(normalise_root(p));
    bool scratch = is_absolute(roots.scratch);
    if (scratch) names.push_back("the job's scratch directory");
    if (names.empty()) return "nothing: there is no scratch directory and sandbox.paths is empty";
    if (names.size() == 1) return scratch ? "only the job's scratch directory" : names[0];
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
        out += names[i];
    }
    return out;
}

} // namespace

std::string normalise_root(std::string_view dir) {
    Parts kept;
    for (std::string_view part : split(dir)) {
        if (part == "..") {
            if (!kept.empty()) kept.pop_back();
        } else {
            kept.push_back(part);
        }
    }
    std::string out = join(kept, 0, true);
    return out.empty() ? "/" : out;
}

Result<FsTarget> resolve_fs_path(std::string_view fn, std::string_view path, const FsRoots& roots) {
    std::string name(fn);
    std::string shown(path);
    if (path.empty()) return make_error(ErrorCode::invalid, name + ": the path is empty");
    if (path.find('\0') != std::string_view::npos)
        return make_error(ErrorCode::invalid, name + ": the path contains a NUL byte");
    Parts parts = split(path);
    for (std::string_view part : parts)
        if (part == "..")
            return make_error(ErrorCode::invalid, name + ": '" + shown + "' may not contain '..'");

    // Roots that are not absolute are ignored: the config loader refuses them, and the engine hands over
    // an absolute scratch directory.
    std::string scratch = is_absolute(roots.scratch) ? normalise_root(roots.scratch) : "";
    std::string absolute;
    if (path.front() == '/') {
        absolute = normalise_root(path);
    } else {
        if (scratch.empty())
            return make_error(ErrorCode::invalid,
                              name + ": '" + shown + "' is relative, and there is no scratch directory here");
        absolute = scratch + (scratch == "/" ? "" : "/") + join(parts, 0, false);
    }
    Parts full = split(absolute);

    // The outermost root: a symlink may then lead anywhere inside the widest directory that allows it.
    std::optional<FsTarget> best;
    std::size_t best_depth = 0;
    auto consider = [&](const std::string& root, bool is_scratch_root) {
        if (!is_absolute(root)) return;
        std::string normal = normalise_root(root);
        Parts root_parts = split(normal);
        if (!starts_with(full, root_parts)) return;
        if (best && root_parts.size() > best_depth) return;
        if (best && root_parts.size() == best_depth) {
            best->root_is_scratch = best->root_is_scratch || is_scratch_root;
            return;
        }
        FsTarget t;
        t.root = normal;
        t.rel = full.size() == root_parts.size() ? "." : join(full, root_parts.size(), false);
        t.root_is_scratch = is_scratch_root;
        best = std::move(t);
        best_depth = root_parts.size();
    };
    for (const auto& p : roots.paths)
        consider(p, false);
    if (!scratch.empty()) consider(scratch, true);
    if (!best)
        return make_error(ErrorCode::invalid, name + ": " + shown + " is outside the sandbox (allowed: " +
                                                  allowed_list(roots) + ")");
    best->fn = std::move(name);
    best->shown = std::move(shown);
    best->is_scratch = !scratch.empty() && full == split(scratch);
    return std::move(*best);
}

} // namespace luaflow::stdlib
