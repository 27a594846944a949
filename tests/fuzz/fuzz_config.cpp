// The config loader (daemon/config/config_loader.cpp): the input is the text of luaflowd.lua, read as the
// daemon reads it at start and at SIGHUP. What must hold: it returns a config or an error of the form
// "FILE:LINE: message" that names the file.
#include "daemon/config/config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstdint>
#include <fstream>

namespace {

struct Scratch {
    luaflow::testing::TempDir dir;
    std::string file = dir.file("luaflowd.lua");
    Scratch() { luaflow::fuzz::quiet_process(); }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Scratch* scratch = new Scratch(); // once per process; never destroyed
    {
        std::ofstream out(scratch->file, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    auto cfg = luaflow::config::load_config(scratch->file, scratch->dir.path());
    if (!cfg && cfg.error().message.rfind(scratch->file, 0) != 0)
        luaflow::fuzz::violated("a config error that does not name the file: " + cfg.error().message);
    return 0;
}
