// exec::SlurmLauncher: the batch script's quoting (run by a real sh), the sbatch command line and its
// environment, the parsing of squeue/scontrol/sacct output and what each end state means; then, on a
// one-node cluster (tests/unit/support/slurm_cluster.hpp), jobs driven on a real loop: output lines and
// LUAFLOW_OUTPUT, exit codes and signals, GPUs assigned by Slurm, sbatch refusing, the timeout, and
// destroying the Job or cancel_by_name scancelling it.
#include "daemon/exec/slurm_launcher.hpp"
#include "loop/uv_handle.hpp"
#include "tests/unit/support/peers.hpp"
#include "tests/unit/support/slurm_cluster.hpp"
#include "tests/unit/support/temp_dir.hpp"
#include "tests/unit/support/test_loop.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

using namespace luaflow;
using exec::JobExit;
using exec::JobSpec;
using loop::ChildStream;
namespace slurm = exec::slurm;

namespace {

using testing::Loop;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

JobSpec base_spec(const std::string& scratch, std::vector<std::string> argv) {
    JobSpec spec;
    static int counter = 0;
    spec.name = "unit-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "/a/1";
    spec.argv = std::move(argv);
    const char* path = std::getenv("PATH");
    spec.env = {{"PATH", path ? path : "/usr/bin:/bin"}};
    spec.scratch = scratch;
    spec.output_file = scratch + "/.luaflow/output.json";
    spec.env["LUAFLOW_OUTPUT"] = spec.output_file;
    spec.allocation.cpus = 1;
    // Without --mem a job holds the node's whole memory, and the next one waits.
    spec.allocation.memory = 50u << 20;
    spec.host_name = "cluster";
    spec.host.kind = config::HostConfig::Kind::slurm;
    spec.host.slurm.partition = "debug";
    return spec;
}

// What a job delivered.
struct Seen {
    std::vector<std::pair<ChildStream, std::string>> lines;
    std::optional<JobExit> exit;
    int exits = 0;
    std::size_t lines_at_exit = 0;

    exec::JobCallbacks callbacks() {
        exec::JobCallbacks c;
        c.on_line = [this](ChildStream s, std::string line) { lines.emplace_back(s, std::move(line)); };
        c.on_exit = [this](const JobExit& e) {
            exit = e;
            ++exits;
            lines_at_exit = lines.size();
        };
        return c;
    }
    std::vector<std::string> of(ChildStream s, bool notes = false) const {
        std::vector<std::string> v;
        for (const auto& [stream, line] : lines)
            if (stream == s && (notes || line.rfind("slurm: ", 0) != 0)) v.push_back(line);
        return v;
    }
    std::string notes() const {
        std::string all;
        for (const auto& [stream, line] : lines)
            if (line.rfind("slurm: ", 0) == 0) all += line + "\n";
        return all;
    }
    // The id from "slurm: submitted batch job N ...", or 0.
    std::string job_id() const {
        for (const auto& [stream, line] : lines) {
            const std::string prefix = "slurm: submitted batch job ";
            if (line.rfind(prefix, 0) == 0)
                return line.substr(prefix.size(), line.find(' ', prefix.size()) - prefix.size());
        }
        return {};
    }
};

// The state Slurm's controller has for the job (squeue -t all also lists ended ones), or "".
std::string state_by_name(const std::string& job_name) {
    auto r = testing::run_capture({"squeue", "-h", "-t", "all", "--name=luaflow:" + job_name, "-o", "%T"});
    std::string s = r.out;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// A condition checked at most every 200 ms (each check runs a Slurm command).
template <class F> auto every_200ms(F f) {
    return [f, last = std::uint64_t{0}, value = false]() mutable {
        if (!value && uv_hrtime() - last > 200'000'000) {
            last = uv_hrtime();
            value = f();
        }
        return value;
    };
}

bool cluster_ready() {
    auto& cluster = testing::SlurmCluster::get();
    if (cluster.available()) return true;
    if (cluster.skipped()) {
        testing::missing_peer(cluster.why_not());
        return false;
    }
    FAIL("no Slurm cluster: " << cluster.why_not());
    return false;
}

} // namespace

TEST_CASE("slurm launcher: the batch script hands its argv over exactly, in its directory") {
    testing::TempDir dir;
    std::string odd = dir.file("it's a \"dir\" $HOME");
    std::filesystem::create_directories(odd);
    JobSpec spec = base_spec(dir.path(), {"sh", "-c", "pwd; printf '%s\\n' \"$@\"", "sh", "it's", "$HOME",
                                          "a  b", "`id`", "\"q\"", "back\\slash", "new\nline", ""});
    spec.cwd = odd;
    std::string script = slurm::batch_script(spec);
    CHECK(script.rfind("#!/bin/sh\n", 0) == 0);
    write_file(dir.file("job.sh"), script);
    auto r = testing::run_capture({"sh", dir.file("job.sh")});
    CHECK(r.status == 0);
    CHECK(r.out == odd + "\nit's\n$HOME\na  b\n`id`\n\"q\"\nback\\slash\nnew\nline\n\n");

    // Without a cwd: the scratch directory; one that is missing fails the job, not run elsewhere.
    spec.cwd = "";
    spec.argv = {"pwd"};
    write_file(dir.file("job.sh"), slurm::batch_script(spec));
    CHECK(testing::run_capture({"sh", dir.file("job.sh")}).out == dir.path() + "\n");
    spec.cwd = dir.file("missing");
    write_file(dir.file("job.sh"), slurm::batch_script(spec));
    CHECK(testing::run_capture({"sh", dir.file("job.sh")}).status == 1);
    CHECK(slurm::shell_quote("a'b") == "'a'\\''b'");
}

TEST_CASE("slurm launcher: sbatch's command line maps the resources, the timeout and the host's options") {
    JobSpec spec = base_spec("/scratch/x", {"true"});
    spec.name = "e1/a/2";
    spec.allocation.cpus = 1.5;
    spec.allocation.gpu_count = 2;
    spec.allocation.memory = 100u << 20;
    spec.timeout_ms = 61'000;
    spec.host.slurm.account = "ml";
    spec.host.slurm.options = {"--qos=low", "--constraint=a100"};
    auto files = slurm::job_files(spec.scratch);
    auto argv = slurm::sbatch_argv(spec, files);
    REQUIRE(argv);
    std::vector<std::string> expected = {"sbatch",
                                         "--parsable",
                                         "--job-name=luaflow:e1/a/2",
                                         "--output=/scratch/x/.luaflow/slurm-stdout.log",
                                         "--error=/scratch/x/.luaflow/slurm-stderr.log",
                                         "--chdir=/scratch/x",
                                         "--export=ALL",
                                         "--no-requeue",
                                         "--partition=debug",
                                         "--account=ml",
                                         "--cpus-per-task=2",
                                         "--gres=gpu:2",
                                         "--mem=100M",
                                         "--time=2",
                                         "--qos=low",
                                         "--constraint=a100",
                                         "/scratch/x/.luaflow/job.sh"};
    CHECK(*argv == expected);

    // No CPUs asked: one; a byte of memory: a MiB; nothing else set: left out.
    spec = base_spec("/s/100%", {"true"});
    spec.allocation.cpus = 0;
    spec.allocation.memory = 1;
    spec.host.slurm.partition = "";
    argv = slurm::sbatch_argv(spec, slurm::job_files(spec.scratch));
    REQUIRE(argv);
    std::string joined;
    for (const auto& a : *argv)
        joined += a + " ";
    CHECK(joined.find("--cpus-per-task=1 --mem=1M /s/100%/.luaflow/job.sh") != std::string::npos);
    CHECK(joined.find("--output=/s/100%%/.luaflow/slurm-stdout.log") != std::string::npos); // not a pattern
    CHECK(joined.find("--partition") == std::string::npos);
    CHECK(joined.find("--gres") == std::string::npos);
    CHECK(joined.find("--time") == std::string::npos);

    spec.scratch = "/s/back\\slash";
    argv = slurm::sbatch_argv(spec, slurm::job_files(spec.scratch));
    REQUIRE_FALSE(argv);
    CHECK(argv.error().message.find("backslash") != std::string::npos);
}

TEST_CASE("slurm launcher: sbatch's environment is the job's, with Slurm's GPUs and the daemon's SLURM_*") {
    JobSpec spec = base_spec("/s", {"true"});
    spec.env["CUDA_VISIBLE_DEVICES"] = "0,1";
    spec.env["SLURM_MINE"] = "job";
    std::string conf = "SLURM_CONF=/etc/slurm/test.conf", mine = "SLURM_MINE=daemon", other = "HOME=/root";
    char* daemon_env[] = {conf.data(), mine.data(), other.data(), nullptr};
    auto env = slurm::sbatch_env(spec, daemon_env);
    CHECK(env.count("CUDA_VISIBLE_DEVICES") == 0);
    CHECK(env["SLURM_CONF"] == "/etc/slurm/test.conf");
    CHECK(env["SLURM_MINE"] == "job");
    CHECK(env.count("HOME") == 0);
    CHECK(env["LUAFLOW_OUTPUT"] == spec.output_file);
}

TEST_CASE("slurm launcher: parses what sbatch, squeue, scontrol and sacct print") {
    CHECK(slurm::parse_job_id("12\n") == 12);
    CHECK(slurm::parse_job_id("12;cluster\n") == 12);
    CHECK_FALSE(slurm::parse_job_id("Submitted batch job 12"));
    CHECK_FALSE(slurm::parse_job_id(""));

    auto q = slurm::parse_squeue("PENDING|Resources\n");
    REQUIRE(q);
    CHECK(q->state == "PENDING");
    CHECK(q->reason == "Resources");
    CHECK_FALSE(slurm::parse_squeue("\n"));

    // As scontrol 22.05 prints it; a job name that looks like fields does not count.
    std::string shown = "JobId=7 JobName=luaflow:x JobState=COMPLETED ExitCode=0:0\n"
                        "   UserId=root(0) GroupId=root(0) MCS_label=N/A\n"
                        "   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n"
                        "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0\n"
                        "   Command=/tmp/a JobState=COMPLETED\n";
    auto s = slurm::parse_scontrol(shown);
    REQUIRE(s);
    CHECK(s->state == "FAILED");
    CHECK(s->reason == "NonZeroExitCode");
    CHECK(s->exit_code == 3);
    CHECK(s->exit_signal == 0);
    s = slurm::parse_scontrol("JobId=8 JobName=j\n   JobState=CANCELLED Reason=None Dependency=(null)\n"
                              "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15\n");
    REQUIRE(s);
    CHECK(s->exit_signal == 15);
    CHECK_FALSE(slurm::parse_scontrol("slurm_load_jobs error: Invalid job id specified\n"));

    auto a = slurm::parse_sacct("CANCELLED by 0|0:15\nCANCELLED|0:15\n");
    REQUIRE(a);
    CHECK(a->state == "CANCELLED");
    CHECK(a->exit_signal == 15);
    CHECK_FALSE(slurm::parse_sacct(""));

    CHECK(slurm::is_final("COMPLETED"));
    CHECK(slurm::is_final("OUT_OF_MEMORY"));
    CHECK_FALSE(slurm::is_final("COMPLETING"));
    CHECK_FALSE(slurm::is_final("PENDING"));
}

TEST_CASE("slurm launcher: what each end state means for the attempt") {
    auto end = [](std::string state, std::int64_t code = 0, int sig = 0, std::string reason = "None") {
        slurm::JobState st;
        st.state = std::move(state);
        st.exit_code = code;
        st.exit_signal = sig;
        st.reason = std::move(reason);
        return st;
    };
    JobExit e = slurm::job_exit(12, end("COMPLETED"), {});
    CHECK((e.code == 0 && e.signal == 0 && !e.timed_out && e.error.empty() && e.resource.empty()));
    e = slurm::job_exit(12, end("FAILED", 3), {});
    CHECK((e.code == 3 && e.signal == 0 && e.error.empty()));
    e = slurm::job_exit(12, end("FAILED", 0, 9), {});
    CHECK(e.signal == 9);
    e = slurm::job_exit(12, end("TIMEOUT", 0, 0, "TimeLimit"), {});
    CHECK(e.timed_out);
    e = slurm::job_exit(12, end("CANCELLED", 0, 15), {.timed_out = true});
    CHECK(e.timed_out);
    CHECK(e.error.empty());
    e = slurm::job_exit(12, end("CANCELLED", 0, 15), {});
    CHECK(e.error == "slurm job 12 was cancelled outside luaflow");
    e = slurm::job_exit(12, end("OUT_OF_MEMORY", 0, 9), {.memory = 100u << 20});
    CHECK(e.resource == "slurm job 12 ran out of memory (--mem=100M)");
    CHECK(e.error.empty());
    e = slurm::job_exit(12, end("NODE_FAIL", 0, 0, "NodeDown"), {});
    CHECK(e.error == "slurm job 12 ended NODE_FAIL (NodeDown)");
    e = slurm::job_exit(12, end("FAILED", 0, 0, "JobLaunchFailure"), {});
    CHECK(e.error == "slurm job 12 ended FAILED (JobLaunchFailure)");
}

TEST_CASE("slurm launcher: a job's output comes line by line, its exit code and Slurm's GPUs") {
    if (!cluster_ready()) return;
    Loop l;
    exec::SlurmLauncher launcher(&l.uv);
    testing::TempDir ok_dir, fail_dir, sig_dir, big_dir;
    // Two at once: with --mem, both fit on the node.
    JobSpec ok =
        base_spec(ok_dir.path(), {"sh", "-c",
                                  "echo one; echo err1 >&2; echo two; echo \"gpu=$CUDA_VISIBLE_DEVICES\"; "
                                  "echo '{\"n\": 1}' > \"$LUAFLOW_OUTPUT\"; printf tail"});
    ok.allocation.gpu_count = 1;
    ok.env["CUDA_VISIBLE_DEVICES"] = "7"; // passed on from the daemon: Slurm's must show instead
    JobSpec failing = base_spec(fail_dir.path(), {"sh", "-c", "echo failing; exit 3"});
    JobSpec killed = base_spec(sig_dir.path(), {"sh", "-c", "kill -KILL $$"});
    JobSpec big = base_spec(big_dir.path(), {"seq", "1", "300000"}); // 2 MB: more than one read
    Seen s_ok, s_fail, s_sig, s_big;
    auto j_ok = launcher.start(ok, s_ok.callbacks());
    auto j_fail = launcher.start(failing, s_fail.callbacks());
    auto j_sig = launcher.start(killed, s_sig.callbacks());
    REQUIRE(j_ok);
    REQUIRE(j_fail);
    REQUIRE(j_sig);
    auto j_big = launcher.start(big, s_big.callbacks());
    REQUIRE(j_big);
    REQUIRE(l.run_until([&] { return s_ok.exit && s_fail.exit && s_sig.exit && s_big.exit; }, 40'000));
    INFO(s_ok.notes() << s_fail.notes() << s_sig.notes());

    CHECK(s_ok.exit->code == 0);
    CHECK(s_ok.exit->error.empty());
    auto out = s_ok.of(ChildStream::out);
    REQUIRE(out.size() == 4);
    CHECK(out[0] == "one");
    CHECK(out[1] == "two");
    CHECK((out[2] == "gpu=0" || out[2] == "gpu=1"));
    CHECK(out[3] == "tail"); // the last line without a newline, before the exit
    CHECK(s_ok.of(ChildStream::err) == std::vector<std::string>{"err1"});
    CHECK(s_ok.lines_at_exit == s_ok.lines.size());
    CHECK(read_file(ok.output_file) == "{\"n\": 1}\n");
    struct stat st {};
    REQUIRE(::stat(slurm::job_files(ok.scratch).script.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600); // the argv may hold secrets
    CHECK(s_ok.notes().find("slurm: submitted batch job " + s_ok.job_id() + " to partition debug\n") == 0);
    CHECK(s_ok.notes().find("slurm: job " + s_ok.job_id() + " COMPLETED") != std::string::npos);

    CHECK(s_fail.exit->code == 3);
    CHECK(s_fail.exit->signal == 0);
    CHECK(s_fail.exit->error.empty());
    CHECK(s_fail.of(ChildStream::out) == std::vector<std::string>{"failing"});
    CHECK(s_sig.exit->signal == 9);
    auto numbers = s_big.of(ChildStream::out);
    REQUIRE(numbers.size() == 300000);
    bool in_order = true;
    for (std::size_t i = 0; i < numbers.size() && in_order; ++i)
        in_order = numbers[i] == std::to_string(i + 1);
    CHECK(in_order);
    CHECK(s_ok.exits + s_fail.exits + s_sig.exits + s_big.exits == 4);
}

TEST_CASE("slurm launcher: sbatch refusing the job is the attempt's error") {
    if (!cluster_ready()) return;
    Loop l;
    exec::SlurmLauncher launcher(&l.uv);
    testing::TempDir dir;
    JobSpec spec = base_spec(dir.path(), {"true"});
    spec.host.slurm.partition = "nope";
    Seen seen;
    auto job = launcher.start(spec, seen.callbacks());
    REQUIRE(job);
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }));
    CHECK(seen.exit->error.rfind("sbatch refused the job: ", 0) == 0);
    CHECK(seen.exit->error.find("invalid partition specified: nope") != std::string::npos);

    // Nothing is started without a program.
    CHECK_FALSE(launcher.start(base_spec(dir.path(), {}), Seen().callbacks()));
}

TEST_CASE("slurm launcher: at the timeout the job is scancelled, and reported timed out once it ended") {
    if (!cluster_ready()) return;
    Loop l;
    exec::SlurmLauncher launcher(&l.uv);
    testing::TempDir dir;
    JobSpec spec = base_spec(dir.path(), {"sh", "-c",
                                          "trap 'echo got TERM; exit 1' TERM; echo started; "
                                          "sleep 60 & wait"});
    spec.timeout_ms = 1500;
    Seen seen;
    auto job = launcher.start(spec, seen.callbacks());
    REQUIRE(job);
    REQUIRE(l.run_until([&] { return seen.exit.has_value(); }, 40'000));
    INFO(seen.notes());
    CHECK(seen.exit->timed_out);
    CHECK(seen.exit->error.empty());
    CHECK(seen.notes().find("timed out after 1.5s: scancel") != std::string::npos);
    CHECK(seen.of(ChildStream::out) == std::vector<std::string>{"started", "got TERM"});
    CHECK(state_by_name(spec.name) == "CANCELLED");
}

TEST_CASE("slurm launcher: destroying the job scancels it, even while sbatch still runs") {
    if (!cluster_ready()) return;
    Loop l;
    exec::SlurmLauncher launcher(&l.uv);
    testing::TempDir running_dir, submitting_dir, writing_dir;
    JobSpec running = base_spec(running_dir.path(), {"sh", "-c", "echo started; exec sleep 60"});
    Seen s_running;
    auto j_running = launcher.start(running, s_running.callbacks());
    REQUIRE(j_running);
    REQUIRE(l.run_until([&] { return !s_running.of(ChildStream::out).empty(); }, 40'000));

    // An sbatch that takes its time: the Job is gone before the job id is known.
    std::string slow_bin = submitting_dir.file("bin");
    std::filesystem::create_directories(slow_bin);
    write_file(slow_bin + "/sbatch", "#!/bin/sh\nsleep 0.5\nexec /usr/bin/sbatch \"$@\"\n");
    ::chmod((slow_bin + "/sbatch").c_str(), 0755);
    JobSpec submitting = base_spec(submitting_dir.path(), {"sleep", "60"});
    submitting.env["PATH"] = slow_bin + ":" + submitting.env["PATH"];
    Seen s_submitting;
    auto j_submitting = launcher.start(submitting, s_submitting.callbacks());
    REQUIRE(j_submitting);
    l.run_until([] { return false; }, 200);

    // Gone before its script was written: nothing is submitted.
    JobSpec writing = base_spec(writing_dir.path(), {"sleep", "60"});
    Seen s_writing;
    auto j_writing = launcher.start(writing, s_writing.callbacks());
    REQUIRE(j_writing);

    std::string id = s_running.job_id();
    j_running->reset();
    j_submitting->reset();
    j_writing->reset();
    CHECK(l.run_until(every_200ms([&] {
                          return state_by_name(running.name) == "CANCELLED" &&
                                 state_by_name(submitting.name) == "CANCELLED";
                      }),
                      20'000));
    CHECK(state_by_name(running.name) == "CANCELLED");
    CHECK(state_by_name(submitting.name) == "CANCELLED");
    CHECK(state_by_name(writing.name) == "");
    CHECK_FALSE(s_running.exit);
    CHECK_FALSE(s_submitting.exit);
    CHECK(s_submitting.lines.empty());
    CHECK_FALSE(s_writing.exit);
    CHECK(testing::run_capture({"scontrol", "show", "job", id}).out.find("JobState=CANCELLED") !=
          std::string::npos);
}

TEST_CASE("slurm launcher: cancel_by_name scancels a job a previous daemon submitted") {
    if (!cluster_ready()) return;
    testing::TempDir dir;
    write_file(dir.file("job.sh"), "#!/bin/sh\nexec sleep 60\n");
    std::string name = "unit-" + std::to_string(::getpid()) + "-orphan/a/1";
    auto submitted = testing::run_capture({"sbatch", "--parsable", "--mem=10M", "--job-name=luaflow:" + name,
                                           "--output=/dev/null", dir.file("job.sh")});
    REQUIRE(submitted.status == 0);
    Loop l;
    {
        exec::SlurmLauncher launcher(&l.uv);
        launcher.cancel_by_name(name);
    } // fire-and-forget: it runs on after the launcher is gone
    CHECK(l.run_until(every_200ms([&] { return state_by_name(name) == "CANCELLED"; }), 20'000));
}
