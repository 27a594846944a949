#pragma once
// An optional library, opened with dlopen when first needed (as systemd does its optional libraries,
// src/shared/dlfcn-util.h): what an idle daemon does not use, it does not map. The functions we call are
// resolved all at once, so that a library too old for us fails when it loads, naming what it lacks,
// rather than at the first call of that function. libcurl (loop/curl_api), libical (daemon/tz/ical_api)
// and libsystemd (loop/service_notify) are loaded through it.
#include "common/result.hpp"

#include <dlfcn.h>

#include <string>

namespace luaflow {

class SharedLibrary {
  public:
    // Opens `soname`, never to be unloaded (RTLD_NODELETE): what it hands out (handles, zones, its own
    // threads) may outlive any owner we could give it. The error names the library and dlerror().
    static Result<SharedLibrary> open(const char* soname) {
        void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!handle)
            return make_error(ErrorCode::unavailable,
                              std::string("cannot load ") + soname + ": " + ::dlerror());
        return SharedLibrary(handle, soname);
    }

    // Points fn at the function `name`; once one is missing, the rest are left alone and done() says so.
    template <class Fn> void resolve(const char* name, Fn*& fn) {
        if (!missing_.empty()) return;
        fn = reinterpret_cast<Fn*>(::dlsym(handle_, name));
        if (fn) return;
        const char* why = ::dlerror();
        missing_ = why ? why : name;
    }

    // Every function found, or an error naming the first that was not.
    Result<void> done() const {
        if (missing_.empty()) return {};
        return make_error(ErrorCode::unavailable, std::string("cannot use ") + soname_ + ": " + missing_);
    }

  private:
    SharedLibrary(void* handle, const char* soname) : handle_(handle), soname_(soname) {}
    void* handle_;
    const char* soname_;
    std::string missing_;
};

} // namespace luaflow
