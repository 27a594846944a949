#pragma once
// The hosts subprocess actions run on (SPEC 2): what each offers and what is taken (ResourcePool),
// the GPUs of `gpus = "auto"` hosts (asked of nvidia-smi without blocking, one host at a time), and
// the launcher that starts a job there (local; ssh and Slurm made when a job first needs them).
#include "daemon/config/config.hpp"
#include "daemon/exec/job.hpp"
#include "daemon/exec/local_launcher.hpp"
#include "daemon/exec/resources.hpp"
#include "loop/child_process.hpp"
#include "loop/uv_handle.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace luaflow::exec {

class SshLauncher;
class SlurmLauncher;

class Hosts {
  public:
    // `env`: what nvidia-smi runs with (env.pass); it outlives the hosts.
    Hosts(uv_loop_t* loop, std::string state_dir, const std::map<std::string, std::string>& env);
    ~Hosts();
    Hosts(const Hosts&) = delete;
    Hosts& operator=(const Hosts&) = delete;

    // The configured hosts. What is held stays held; "auto" GPUs are detected anew.
    void configure(const std::map<std::string, config::HostConfig>& hosts);
    // Called when a detection changed what a host offers: actions waiting for it may fit now.
    void set_on_change(std::function<void()> fn) { on_change_ = std::move(fn); }

    ResourcePool& resources() { return resources_; }
    const config::HostConfig* host(const std::string& name) const { return resources_.host(name); }
    bool has_gpus(const std::string& name) const { return resources_.has_gpus(name); }
    JobLauncher* launcher_for(const config::HostConfig& host);
    SlurmLauncher& slurm();

  private:
    void detect_gpus();

    uv_loop_t* loop_;
    std::string state_dir_;
    const std::map<std::string, std::string>& env_;
    ResourcePool resources_;
    LocalLauncher local_launcher_{loop_};
    std::unique_ptr<SshLauncher> ssh_launcher_;
    std::unique_ptr<SlurmLauncher> slurm_launcher_;
    std::unique_ptr<loop::ChildProcess> gpu_probe_;
    loop::Timer next_probe_{loop_}; // drops the finished probe on a later turn, then asks the next host
    std::function<void()> on_change_;
};

} // namespace luaflow::exec
