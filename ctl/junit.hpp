#pragma once
// JUnit XML for CI systems (`luaflowctl test --junit FILE`, SPEC 13), from the cases document of
// `luaflowd --offline`: one <testcase> per case (classname: its workflow), a <failure> with every
// difference, and one <testcase> with an <error> per broken case file. The dialect Jenkins, GitLab and
// GitHub's test reporters read.
#include "common/result.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace luaflow::ctl {

std::string junit_xml(const nlohmann::json& cases_doc);
// Writes it to `path` (through a temporary file: a CI job never reads half of it).
Result<void> write_junit(const std::string& path, const nlohmann::json& cases_doc);

} // namespace luaflow::ctl
