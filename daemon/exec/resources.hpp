#pragma once
// What each host has and what the running subprocess actions hold of it (SPEC 3 `resources`). An action
// starts only when its host can give it all it asks for; GPUs are distinct devices, lowest ids first.
// Slurm hosts are not counted here: the cluster schedules its own resources.
#include "daemon/config/config.hpp"
#include "daemon/exec/job.hpp"
#include "scripting/workflow_def.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace luaflow::exec {

struct Grant {
    enum class Kind { granted, wait, impossible };
    Kind kind = Kind::granted;
    Allocation allocation; // granted
    std::string why;       // wait, impossible: for inspect and the error
};

class ResourcePool {
  public:
    // Takes the hosts' inventories. cpus and memory of the local host default to this machine's; a
    // host with gpus = "auto" has none until set_detected_gpus(). What is held stays held.
    void configure(const std::map<std::string, config::HostConfig>& hosts);
    void set_detected_gpus(const std::string& host, std::vector<std::string> gpus);
    // "auto" hosts whose detection has not reported yet.
    bool detecting(const std::string& host) const { return detecting_.count(host) > 0; }
    // The host has GPUs luaflow hands out, or is still looking for them: what holds none of them gets
    // CUDA_VISIBLE_DEVICES="" (SPEC 3). False for Slurm hosts, which pick their own.
    bool has_gpus(const std::string& host) const;

    Grant acquire(const std::string& host, const scripting::Resources& want);
    void release(const std::string& host, const Allocation& held);

    std::vector<std::string> host_names() const;
    const config::HostConfig* host(const std::string& name) const;

  private:
    struct Inventory {
        config::HostConfig config;
        std::optional<double> cpus;          // unset: not counted
        std::optional<std::uint64_t> memory; // unset: not counted
        std::vector<std::string> gpus;
    };
    struct Held {
        double cpus = 0;
        std::uint64_t memory = 0;
        std::set<std::string> gpus;
    };
    std::map<std::string, Inventory> hosts_;
    std::map<std::string, Held> held_;
    std::set<std::string> detecting_;
    std::map<std::string, std::vector<std::string>> detected_; // by "auto" host, kept across reloads
};

// The device ids `nvidia-smi -L` lists ("GPU 0: NVIDIA A100 (UUID: GPU-...)" gives "0").
std::vector<std::string> parse_nvidia_smi_list(const std::string& text);

// "1 GPU", "2.5 CPUs", "512 MiB": how a request reads in messages.
std::string describe(const scripting::Resources& r);

// {"cpus": 2, "gpu_count": 1, "gpus": ["0"], "memory": 1073741824}: what inspect shows of an allocation.
nlohmann::json allocation_json(const Allocation& a);

} // namespace luaflow::exec
