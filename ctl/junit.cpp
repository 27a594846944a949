#include "ctl/junit.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace luaflow::ctl {

using nlohmann::json;

namespace {

// Text for an attribute or element: the five entities, and the characters XML 1.0 cannot carry (C0
// controls but tab and newlines) as U+FFFD; the input is UTF-8 already (the engine's JSON is).
std::string xml_escaped(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                out += "\xEF\xBF\xBD";
            else
                out += static_cast<char>(c);
        }
    }
    return out;
}

std::string seconds(std::int64_t ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ms) / 1000.0);
    return buf;
}

std::string text_of(const json& v) {
    return v.is_string() ? v.get<std::string>() : v.is_null() ? std::string() : v.dump();
}

} // namespace

std::string junit_xml(const json& doc) {
    const json cases = doc.value("cases", json::array());
    const json errors = doc.value("errors", json::array());
    std::int64_t total_ms = 0;
    int failures = 0;
    for (const json& c : cases) {
        total_ms += c.value("duration_ms", std::int64_t{0});
        if (!c.value("ok", false)) ++failures;
    }
    std::string counts = "tests=\"" + std::to_string(cases.size() + errors.size()) + "\" failures=\"" +
                         std::to_string(failures) + "\" errors=\"" + std::to_string(errors.size()) +
                         "\" time=\"" + seconds(total_ms) + "\"";
    std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    x += "<testsuites name=\"luaflow\" " + counts + ">\n";
    x += "  <testsuite name=\"luaflow\" " + counts + ">\n";
    for (const json& c : cases) {
        x += "    <testcase classname=\"" + xml_escaped(text_of(c.value("workflow", json()))) + "\" name=\"" +
             xml_escaped(text_of(c.value("name", json()))) + "\" file=\"" +
             xml_escaped(text_of(c.value("file", json()))) + "\" time=\"" +
             seconds(c.value("duration_ms", std::int64_t{0})) + "\"";
        const json f = c.value("failures", json::array());
        if (c.value("ok", false) || f.empty()) {
            x += "/>\n";
            continue;
        }
        std::string all;
        for (const json& line : f)
            all += text_of(line) + "\n";
        x += ">\n      <failure message=\"" + xml_escaped(text_of(f[0])) + "\" type=\"expectation\">" +
             xml_escaped(all) + "</failure>\n    </testcase>\n";
    }
    for (const json& e : errors) {
        std::string where = text_of(e.value("file", json()));
        if (e.value("line", 0) > 0) where += ":" + std::to_string(e.value("line", 0));
        std::string message = text_of(e.value("message", json()));
        x += "    <testcase classname=\"luaflow\" name=\"" + xml_escaped(where) +
             "\">\n      <error message=\"" + xml_escaped(message) + "\" type=\"broken test file\">" +
             xml_escaped(where + ": " + message) + "</error>\n    </testcase>\n";
    }
    x += "  </testsuite>\n</testsuites>\n";
    return x;
}

Result<void> write_junit(const std::string& path, const json& doc) {
    std::string xml = junit_xml(doc);
    std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) return make_error(ErrorCode::unavailable, "cannot write " + tmp + ": " + std::strerror(errno));
    bool ok = std::fwrite(xml.data(), 1, xml.size(), f) == xml.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::string why = std::strerror(errno);
        std::remove(tmp.c_str());
        return make_error(ErrorCode::unavailable, "cannot write " + path + ": " + why);
    }
    return {};
}

} // namespace luaflow::ctl
