#include "common/bounded_read.hpp"

#include "common/size.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace luaflow {

Result<std::string> read_bounded(const std::string& path, std::size_t limit, const std::string& what) {
    bool is_stdin = path == "-";
    int fd = is_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(ErrorCode::invalid, "cannot read " + what + ": " + std::strerror(errno));
    struct FdCloser {
        int fd;
        bool owned;
        ~FdCloser() {
            if (owned) ::close(fd);
        }
    } closer{fd, !is_stdin};
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > limit)
        return make_error(ErrorCode::invalid, what + " is " +
                                                  format_size(static_cast<std::uint64_t>(st.st_size)) +
                                                  "; the limit is " + format_size(limit));
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(ErrorCode::invalid, "cannot read " + what + ": " + std::strerror(errno));
        if (n == 0) return text;
        // Never more than the limit and one byte: enough to know it is over.
        text.append(buf, std::min(static_cast<std::size_t>(n), limit + 1 - text.size()));
        if (text.size() > limit)
            return make_error(ErrorCode::invalid, what + ": larger than " + format_size(limit));
    }
}

} // namespace luaflow
