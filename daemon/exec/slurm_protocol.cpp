#include "daemon/exec/slurm_protocol.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

namespace luaflow::exec {

namespace slurm {

std::string trim(std::string_view s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    size_t e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

std::string first_line(std::string_view s) {
    for (size_t at = 0; at < s.size();) {
        size_t nl = s.find('\n', at);
        std::string line = trim(s.substr(at, nl == std::string_view::npos ? nl : nl - at));
        if (!line.empty()) return line;
        if (nl == std::string_view::npos) break;
        at = nl + 1;
    }
    return {};
}

std::string workdir(const JobSpec& spec) {
    return spec.cwd.empty() ? spec.scratch : spec.cwd;
}

std::string mebibytes(std::uint64_t bytes) {
    return std::to_string((bytes + kMiB - 1) / kMiB) + "M";
}

// "N:S" of ExitCode= (sacct and scontrol spell it alike).
void parse_exit_code(std::string_view text, JobState& st) {
    size_t colon = text.find(':');
    std::string code(text.substr(0, colon));
    std::string sig = colon == std::string_view::npos ? "0" : std::string(text.substr(colon + 1));
    st.exit_code = std::strtoll(code.c_str(), nullptr, 10);
    st.exit_signal = static_cast<int>(std::strtol(sig.c_str(), nullptr, 10));
}

// sbatch expands %j, %u, ... in --output and --error, and "%%" is a "%". A backslash anywhere turns that
// expansion off and is dropped from the name, so a path holding one cannot be given.
Result<std::string> slurm_filename(const std::string& path) {
    if (path.find('\\') != std::string::npos)
        return make_error(ErrorCode::invalid, "slurm: the scratch path '" + path +
                                                  "' holds a backslash, which sbatch would drop from it");
    std::string escaped;
    for (char c : path)
        escaped += c == '%' ? std::string("%%") : std::string(1, c);
    return escaped;
}

} // namespace

JobFiles job_files(const std::string& scratch) {
    std::string dir = scratch + "/.luaflow";
    return {dir + "/job.sh", dir + "/slurm-stdout.log", dir + "/slurm-stderr.log"};
}

std::string shell_quote(std::string_view s) {
    std::string q = "'";
    for (char c : s)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string batch_script(const JobSpec& spec) {
    std::string dir = workdir(spec);
    if (!dir.empty() && dir[0] == '-') dir = "./" + dir; // not an option of cd
    // sbatch --chdir alone is not enough: slurmstepd runs the script in /tmp when it cannot enter it.
    std::string script = "#!/bin/sh\ncd " + shell_quote(dir) + " || exit 1\nexec";
    for (const std::string& arg : spec.argv)
        script += " " + shell_quote(arg);
    return script + "\n";
}

Result<std::vector<std::string>> sbatch_argv(const JobSpec& spec, const JobFiles& files) {
    auto out = slurm_filename(files.stdout_file);
    if (!out) return out.error();
    auto err = slurm_filename(files.stderr_file);
    if (!err) return err.error();
    std::vector<std::string> argv = {
        "sbatch", "--parsable", "--job-name=luaflow:" + spec.name, "--output=" + *out, "--error=" + *err,
        "--chdir=" + workdir(spec),
        // The job's environment is sbatch's own (sbatch_env), whatever SBATCH_EXPORT says.
        "--export=ALL",
        // Retrying is luaflow's decision; a job Slurm requeued would also rewrite the files being tailed.
        "--no-requeue"};
    const auto& slurm = spec.host.slurm;
    if (!slurm.partition.empty()) argv.push_back("--partition=" + slurm.partition);
    if (!slurm.account.empty()) argv.push_back("--account=" + slurm.account);
    auto cpus = static_cast<long long>(std::ceil(spec.allocation.cpus));
    argv.push_back("--cpus-per-task=" + std::to_string(std::max(1LL, cpus)));
    if (spec.allocation.gpu_count > 0)
        argv.push_back("--gres=gpu:" + std::to_string(spec.allocation.gpu_count));
    // Without --mem Slurm gives the job the whole node's memory.
    if (spec.allocation.memory > 0) argv.push_back("--mem=" + mebibytes(spec.allocation.memory));
    // A backstop: luaflow scancels the job at its timeout itself.
    if (spec.timeout_ms) argv.push_back("--time=" + std::to_string((*spec.timeout_ms + 59'999) / 60'000));
    // Last, so that they override ours.
    argv.insert(argv.end(), slurm.options.begin(), slurm.options.end());
    argv.push_back(files.script);
    return argv;
}

std::map<std::string, std::string> sbatch_env(const JobSpec& spec, char** daemon_environ) {
    std::map<std::string, std::string> env = spec.env;
    // Slurm sets it to the devices it assigned; one passed on from the daemon would hide them.
    env.erase("CUDA_VISIBLE_DEVICES");
    for (char** e = daemon_environ; e && *e; ++e) {
        std::string_view entry(*e);
        size_t eq = entry.find('=');
        if (eq == std::string_view::npos || !entry.starts_with("SLURM_")) continue;
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

std::optional<std::int64_t> parse_job_id(std::string_view out) {
    std::string line = first_line(out);
    line = line.substr(0, line.find(';'));
    if (line.empty() || line.size() > 18 ||
        !std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
        return std::nullopt;
    return std::stoll(line);
}

std::optional<JobState> parse_squeue(std::string_view out) {
    std::string line = first_line(out);
    if (line.empty()) return std::nullopt;
    size_t bar = line.find('|');
    JobState st;
    st.state = trim(line.substr(0, bar));
    st.reason = bar == std::string::npos ? "None" : trim(line.substr(bar + 1));
    return st;
}

std::optional<JobState> parse_scontrol(std::string_view out) {
    std::map<std::string, std::string> fields;
    bool first = true;
    for (size_t at = 0; at < out.size();) {
        size_t nl = out.find('\n', at);
        std::string_view line = out.substr(at, nl == std::string_view::npos ? nl : nl - at);
        at = nl == std::string_view::npos ? out.size() : nl + 1;
        // JobName= is the rest of the first line, whatever it holds (a name may have spaces or '=').
        if (first) line = line.substr(0, line.find(" JobName="));
        first = false;
        for (size_t i = 0; i < line.size();) {
            size_t b = line.find_first_not_of(" \t\r", i);
            if (b == std::string_view::npos) break;
            size_t e = line.find_first_of(" \t\r", b);
            std::string_view word = line.substr(b, e == std::string_view::npos ? e : e - b);
            i = e == std::string_view::npos ? line.size() : e;
            size_t eq = word.find('=');
            if (eq != std::string_view::npos)
                fields.emplace(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
        }
    }
    auto state = fields.find("JobState");
    if (state == fields.end() || state->second.empty()) return std::nullopt;
    JobState st;
    st.state = state->second;
    st.reason = fields.count("Reason") ? fields["Reason"] : "None";
    if (fields.count("ExitCode")) parse_exit_code(fields["ExitCode"], st);
    return st;
}

std::optional<JobState> parse_sacct(std::string_view out) {
    // The allocation's line comes first; the steps' lines (batch, extern) follow.
    std::string line = first_line(out);
    size_t bar = line.find('|');
    if (line.empty() || bar == std::string::npos) return std::nullopt;
    JobState st;
    std::string state = trim(line.substr(0, bar));
    st.state = state.substr(0, state.find(' ')); // "CANCELLED by 0"
    st.reason = "None";
    parse_exit_code(trim(line.substr(bar + 1)), st);
    if (st.state.empty()) return std::nullopt;
    return st;
}

bool is_final(std::string_view state) {
    static const std::set<std::string_view> kFinal = {"COMPLETED",     "FAILED",    "CANCELLED", "TIMEOUT",
                                                      "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "PREEMPTED",
                                                      "DEADLINE",      "REVOKED"};
    return kFinal.count(state) > 0;
}

JobExit job_exit(std::int64_t job_id, const JobState& end, const Requested& requested) {
    JobExit exit;
    std::string job = "slurm job " + std::to_string(job_id);
    std::string reason = end.reason.empty() || end.reason == "None" ? "" : " (" + end.reason + ")";
    if (end.state == "COMPLETED") {
        exit.code = end.exit_code;
    } else if (end.state == "TIMEOUT" || requested.timed_out) {
        // luaflow's scancel at the timeout, or Slurm's own limit (--time) a little before it.
        exit.timed_out = true;
        exit.code = end.exit_code;
        exit.signal = end.exit_signal;
    } else if (end.state == "FAILED" && (end.exit_signal != 0 || end.exit_code != 0)) {
        exit.signal = end.exit_signal;
        if (exit.signal == 0) exit.code = end.exit_code;
    } else if (end.state == "OUT_OF_MEMORY") {
        exit.resource = job + " ran out of memory (" +
                        (requested.memory ? "--mem=" + mebibytes(requested.memory)
                                          : std::string("no --mem: the node's memory")) +
                        ")";
    } else if (end.state == "CANCELLED") {
        exit.error = job + " was cancelled outside luaflow";
    } else {
        exit.error = job + " ended " + end.state + reason;
    }
    return exit;
}

} // namespace slurm

} // namespace luaflow::exec
