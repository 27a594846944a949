#include "daemon/exec/secrets.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace luaflow::exec {

void Secrets::load(const config::Config& config, const std::vector<std::string>& pass) {
    pass_ = pass;
    secrets_.clear();
    values_.clear();
    for (const auto& [name, file] : config.env.secrets) {
        std::ifstream in(file, std::ios::binary); // a few bytes, at start and reload
        if (!in) {
            log::warn("env.secrets.%s: cannot read %s; env(\"%s\") is nil", name.c_str(), file.c_str(),
                      name.c_str());
            continue;
        }
        std::stringstream ss;
        ss << in.rdbuf();
        std::string value = ss.str();
        while (!value.empty() && (value.back() == '\n' || value.back() == '\r'))
            value.pop_back(); // the newline an editor or `echo` leaves is not part of the secret
        if (value.size() < kMinSecretLength) {
            log::warn(
                "env.secrets.%s: the secret in %s is shorter than %zu bytes and could not be kept out of "
                "logs; env(\"%s\") is nil",
                name.c_str(), file.c_str(), kMinSecretLength, name.c_str());
            continue;
        }
        secrets_[name] = value;
        values_.push_back(value);
    }
    std::sort(values_.begin(), values_.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::optional<std::string> Secrets::lookup(const std::string& name) const {
    if (auto it = secrets_.find(name); it != secrets_.end()) return it->second;
    if (std::find(pass_.begin(), pass_.end(), name) != pass_.end())
        if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}

std::string Secrets::redact(std::string text) const {
    for (const std::string& v : values_)
        for (std::size_t at = text.find(v); at != std::string::npos; at = text.find(v, at + 3))
            text.replace(at, v.size(), "***");
    return text;
}

nlohmann::json Secrets::redact(nlohmann::json value) const {
    if (values_.empty()) return value;
    if (value.is_string()) return redact(value.get<std::string>());
    if (value.is_array())
        for (auto& v : value)
            v = redact(std::move(v));
    if (value.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (auto it = value.begin(); it != value.end(); ++it)
            out[redact(it.key())] = redact(it.value());
        return out;
    }
    return value;
}

} // namespace luaflow::exec
