#include "common/read_source_file.hpp"

#include "common/size.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace luaflow {

namespace {

Error file_error(const std::string& path, const std::string& what) {
    return make_error(ErrorCode::invalid, path + ": " + what);
}

// Closes the descriptor on every path out.
struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

} // namespace

const char* file_kind(unsigned mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "not a regular file";
}

Result<std::string> read_source_file(const std::string& path, std::size_t limit) {
    // O_NONBLOCK: opening a FIFO for reading blocks until a writer comes; with it, open returns at once
    // and fstat says what the file is. A regular file ignores the flag.
    Fd f{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
    if (f.fd < 0) return file_error(path, std::string("cannot open the file: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(f.fd, &st) != 0)
        return file_error(path, std::string("cannot stat the file: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return file_error(path, std::string("is ") + file_kind(st.st_mode) + ", not read");
    if (static_cast<std::uint64_t>(st.st_size) > limit)
        return file_error(path, "is " + format_size(static_cast<std::uint64_t>(st.st_size)) +
                                    ", larger than the limit of " + format_size(limit) + "; not read");
    std::string text;
    text.resize(static_cast<std::size_t>(st.st_size));
    std::size_t have = 0;
    // One byte past the limit tells a file that grew since fstat from one that did not.
    while (true) {
        if (have == text.size()) {
            if (text.size() > limit) break;
            text.resize(std::min(limit + 1, text.size() + 4096));
        }
        ssize_t n = ::read(f.fd, text.data() + have, text.size() - have);
        if (n < 0) {
            if (errno == EINTR) continue;
            return file_error(path, std::string("cannot read the file: ") + std::strerror(errno));
        }
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
    }
    if (have > limit)
        return file_error(path, "is larger than the limit of " + format_size(limit) + "; not read");
    text.resize(have);
    return text;
}

} // namespace luaflow
