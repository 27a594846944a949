#include "common/result.hpp"

namespace luaflow {

const char* to_string(ErrorCode code) {
    switch (code) {
    case ErrorCode::invalid:
        return "invalid";
    case ErrorCode::not_found:
        return "not_found";
    case ErrorCode::conflict:
        return "conflict";
    case ErrorCode::unavailable:
        return "unavailable";
    case ErrorCode::internal:
        return "internal";
    }
    return "internal";
}

} // namespace luaflow
