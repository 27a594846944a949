#pragma once
// env() for actions (SPEC 3): the variables of env.pass from the daemon's environment, and the secrets of
// env.secrets read from their files. A secret's value is replaced by "***" wherever it would be kept or
// shown: job logs, outputs, the shared context, errors, the daemon's log.
#include "daemon/config/config.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::exec {

class Secrets {
  public:
    // Reads the secret files (at start and reload); a file that cannot be read is a warning naming it.
    void load(const config::Config& config, const std::vector<std::string>& pass);
    // A passed variable or a secret; nothing when neither is set.
    std::optional<std::string> lookup(const std::string& name) const;
    std::string redact(std::string text) const;
    nlohmann::json redact(nlohmann::json value) const;

  private:
    std::vector<std::string> pass_;
    std::map<std::string, std::string> secrets_;
    std::vector<std::string> values_; // longest first, so a secret inside another is not cut short
};

// Shorter values would mask ordinary text everywhere; such a secret is refused (a warning).
inline constexpr std::size_t kMinSecretLength = 4;

} // namespace luaflow::exec
