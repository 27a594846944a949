// The host inventory: what an action may take, distinct GPUs lowest first, waiting with a reason,
// what can never fit, Slurm hosts left to the cluster, and `nvidia-smi -L` parsing.
#include "daemon/exec/local_launcher.hpp"
#include "daemon/exec/process_runner.hpp"
#include "daemon/exec/resources.hpp"

#include <doctest/doctest.h>

using namespace luaflow;
using exec::Grant;
using exec::ResourcePool;

namespace {

scripting::Resources want(double cpus, int gpus, std::uint64_t memory = 0) {
    scripting::Resources r;
    r.cpus = cpus;
    r.gpus = gpus;
    r.memory = memory;
    return r;
}

std::map<std::string, config::HostConfig> hosts() {
    std::map<std::string, config::HostConfig> h;
    h["local"].cpus = 4;
    h["local"].memory = 8ull << 30;
    h["local"].gpus = {"0", "1"};
    config::HostConfig box;
    box.kind = config::HostConfig::Kind::ssh;
    box.ssh.target = "runner@box";
    box.gpus = {"2", "3", "5"};
    h["box"] = box;
    config::HostConfig cluster;
    cluster.kind = config::HostConfig::Kind::slurm;
    h["cluster"] = cluster;
    return h;
}

} // namespace

TEST_CASE("resources: GPUs are distinct devices, and a request that does not fit waits with a reason") {
    ResourcePool pool;
    pool.configure(hosts());
    Grant a = pool.acquire("local", want(1, 1));
    Grant b = pool.acquire("local", want(1, 1));
    REQUIRE(a.kind == Grant::Kind::granted);
    REQUIRE(b.kind == Grant::Kind::granted);
    CHECK(a.allocation.gpus == std::vector<std::string>{"0"});
    CHECK(b.allocation.gpus == std::vector<std::string>{"1"});
    Grant c = pool.acquire("local", want(1, 1));
    CHECK(c.kind == Grant::Kind::wait);
    CHECK(c.why == "host local: needs 1 CPU, 1 GPU; 0 of 2 GPUs free");
    pool.release("local", a.allocation);
    Grant d = pool.acquire("local", want(1, 1));
    REQUIRE(d.kind == Grant::Kind::granted);
    CHECK(d.allocation.gpus == std::vector<std::string>{"0"});
}

TEST_CASE("resources: CPUs and memory add up and come back") {
    ResourcePool pool;
    pool.configure(hosts());
    Grant a = pool.acquire("local", want(2.5, 0, 6ull << 30));
    REQUIRE(a.kind == Grant::Kind::granted);
    Grant b = pool.acquire("local", want(1.5, 0));
    REQUIRE(b.kind == Grant::Kind::granted);
    Grant c = pool.acquire("local", want(0.5, 0, 3ull << 30));
    CHECK(c.kind == Grant::Kind::wait);
    CHECK(c.why == "host local: needs 0.5 CPUs, 3 GiB; 0 of 4 CPUs free, 2 GiB of 8 GiB free");
    pool.release("local", a.allocation);
    CHECK(pool.acquire("local", want(0.5, 0, 3ull << 30)).kind == Grant::Kind::granted);
    // Nothing asked, nothing held: always fits.
    CHECK(pool.acquire("local", want(0, 0)).kind == Grant::Kind::granted);
}

TEST_CASE("resources: what a host does not have at all fails instead of waiting for ever") {
    ResourcePool pool;
    pool.configure(hosts());
    Grant g = pool.acquire("local", want(0, 3));
    CHECK(g.kind == Grant::Kind::impossible);
    CHECK(g.why == "needs 3 GPUs but host local has 2 GPUs");
    CHECK(pool.acquire("local", want(8, 0)).why == "needs 8 CPUs but host local has 4 CPUs");
    CHECK(pool.acquire("local", want(0, 0, 16ull << 30)).why ==
          "needs 16 GiB but host local has 8 GiB of memory");
    Grant unknown = pool.acquire("gpubox", want(0, 0));
    CHECK(unknown.kind == Grant::Kind::impossible);
    CHECK(unknown.why == "no host 'gpubox' in the config (hosts: box, cluster, local)");
}

TEST_CASE(
    "resources: an ssh host without cpus counts only its GPUs; a Slurm host is the cluster's to count") {
    ResourcePool pool;
    pool.configure(hosts());
    Grant a = pool.acquire("box", want(100, 2));
    REQUIRE(a.kind == Grant::Kind::granted);
    CHECK(a.allocation.gpus == std::vector<std::string>{"2", "3"});
    CHECK(pool.acquire("box", want(100, 2)).kind == Grant::Kind::wait);
    for (int k = 0; k < 10; ++k) {
        Grant s = pool.acquire("cluster", want(64, 8, 1ull << 40));
        REQUIRE(s.kind == Grant::Kind::granted);
        CHECK(s.allocation.gpu_count == 8); // for --gres=gpu:8
        CHECK(s.allocation.gpus.empty());   // the cluster picks them
    }
}

TEST_CASE("resources: gpus = \"auto\" waits for the detection, and a reload keeps what it found") {
    auto h = hosts();
    h["local"].gpus.clear();
    h["local"].gpus_auto = true;
    ResourcePool pool;
    pool.configure(h);
    CHECK(pool.detecting("local"));
    Grant g = pool.acquire("local", want(0, 1));
    CHECK(g.kind == Grant::Kind::wait);
    CHECK(g.why == "host local: looking for GPUs (nvidia-smi -L)");
    CHECK(pool.acquire("local", want(1, 0)).kind == Grant::Kind::granted); // no GPU asked: no wait
    pool.set_detected_gpus("local", {"0"});
    CHECK(pool.acquire("local", want(0, 1)).kind == Grant::Kind::granted);
    pool.configure(h);
    CHECK_FALSE(pool.detecting("local"));
    CHECK(pool.acquire("local", want(0, 1)).kind == Grant::Kind::wait); // still held by the first
}

TEST_CASE("resources: a job that holds no GPU on a host with GPUs is told so (CUDA_VISIBLE_DEVICES=\"\")") {
    auto h = hosts();
    config::HostConfig plain;
    plain.kind = config::HostConfig::Kind::ssh;
    plain.ssh.target = "runner@plain";
    h["plain"] = plain;
    config::HostConfig detecting;
    detecting.gpus_auto = true;
    h["auto"] = detecting;
    ResourcePool pool;
    pool.configure(h);
    for (const char* host : {"local", "box", "auto"}) {
        CAPTURE(host);
        CHECK(pool.has_gpus(host));
        Grant g = pool.acquire(host, want(1, 0));
        REQUIRE(g.kind == Grant::Kind::granted);
        CHECK(g.allocation.gpus.empty());
        CHECK(g.allocation.host_has_gpus);
    }
    for (const char* host : {"plain", "cluster", "nowhere"}) {
        CAPTURE(host);
        CHECK_FALSE(pool.has_gpus(host));
    }
    CHECK_FALSE(pool.acquire("plain", want(1, 0)).allocation.host_has_gpus);
    CHECK_FALSE(pool.acquire("cluster", want(1, 0)).allocation.host_has_gpus); // Slurm picks its own
    // "auto" that found none: there is nothing to hide.
    pool.set_detected_gpus("auto", {});
    CHECK_FALSE(pool.has_gpus("auto"));
    CHECK_FALSE(pool.acquire("auto", want(1, 0)).allocation.host_has_gpus);
}

TEST_CASE("resources: nvidia-smi -L lists devices by index; MIG lines belong to their GPU") {
    std::string text = "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1b6b2b66-2d8f-4b19-9d77-0c9dcd5e7a52)\n"
                       "  MIG 1g.5gb      Device  0: (UUID: MIG-a5e1b0b2-...)\n"
                       "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-7f2d...)\n"
                       "GPU 10: Tesla T4 (UUID: GPU-x)\n";
    CHECK(exec::parse_nvidia_smi_list(text) == std::vector<std::string>{"0", "1", "10"});
    CHECK(exec::parse_nvidia_smi_list("No devices were found\n").empty());
    CHECK(exec::parse_nvidia_smi_list("").empty());
}

TEST_CASE("resources: out-of-memory messages under RLIMIT_AS are recognised, other failures are not") {
    CHECK(exec::out_of_memory_line({"Traceback (most recent call last):", "  File \"<string>\", line 1",
                                    "MemoryError"}) == std::optional<std::string>("MemoryError"));
    CHECK(exec::out_of_memory_line({"terminate called after throwing an instance of 'std::bad_alloc'"}));
    CHECK(exec::out_of_memory_line({"memory allocation of 1073741824 bytes failed"}));
    CHECK(exec::out_of_memory_line({"fatal error: runtime: out of memory"}));
    CHECK(exec::out_of_memory_line({"sort: Cannot allocate memory"}));
    CHECK_FALSE(exec::out_of_memory_line({"error: file not found", "exit 1"}));
    CHECK_FALSE(exec::out_of_memory_line({}));
}

TEST_CASE("resources: a memory limit runs the job under prlimit, or in a systemd scope with MemoryMax=") {
    std::vector<std::string> argv = {"python3", "-c", "pass"};
    CHECK(exec::memory_limited_argv(argv, 64u << 20, exec::MemoryLimitKind::rlimit, "", false) ==
          std::vector<std::string>{"prlimit", "--as=67108864", "--", "python3", "-c", "pass"});
    CHECK(exec::memory_limited_argv(argv, 1000, exec::MemoryLimitKind::systemd_scope, "luaflow-x-1", true) ==
          std::vector<std::string>{"systemd-run", "--scope", "--quiet", "--collect", "--unit=luaflow-x-1",
                                   "--user", "-p", "MemoryMax=1000", "-p", "MemorySwapMax=0", "--", "python3",
                                   "-c", "pass"});
}
