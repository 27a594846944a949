#include "daemon/exec/hosts.hpp"

#include "common/log.hpp"
#include "daemon/exec/slurm_launcher.hpp"
#include "daemon/exec/ssh_launcher.hpp"

namespace luaflow::exec {

Hosts::Hosts(uv_loop_t* loop, std::string state_dir, const std::map<std::string, std::string>& env)
    : loop_(loop), state_dir_(std::move(state_dir)), env_(env) {}

Hosts::~Hosts() = default;

void Hosts::configure(const std::map<std::string, config::HostConfig>& hosts) {
    resources_.configure(hosts);
    detect_gpus();
}

JobLauncher* Hosts::launcher_for(const config::HostConfig& host) {
    switch (host.kind) {
    case config::HostConfig::Kind::local:
        return &local_launcher_;
    case config::HostConfig::Kind::ssh:
        if (!ssh_launcher_) ssh_launcher_ = std::make_unique<SshLauncher>(loop_, state_dir_ + "/ssh");
        return ssh_launcher_.get();
    case config::HostConfig::Kind::slurm:
        return &slurm();
    }
    return nullptr;
}

SlurmLauncher& Hosts::slurm() {
    if (!slurm_launcher_) slurm_launcher_ = std::make_unique<SlurmLauncher>(loop_);
    return *slurm_launcher_;
}

// Hosts with gpus = "auto": the devices `nvidia-smi -L` lists, read without blocking (SPEC 2).
void Hosts::detect_gpus() {
    if (gpu_probe_) return; // one at a time; its end looks for the next
    for (const std::string& host : resources_.host_names()) {
        if (!resources_.detecting(host)) continue;
        auto out = std::make_shared<std::string>();
        loop::ChildOptions o;
        o.argv = {"nvidia-smi", "-L"};
        o.env = env_;
        o.timeout_ms = 30'000;
        loop::ChildCallbacks cb;
        cb.on_chunk = [out](loop::ChildStream s, std::string_view d) {
            if (s == loop::ChildStream::out) out->append(d);
        };
        cb.on_exit = [this, host, out](const loop::ChildExit& e) {
            std::vector<std::string> gpus =
                e.code == 0 && e.signal == 0 ? parse_nvidia_smi_list(*out) : std::vector<std::string>{};
            log::info("host %s: %zu GPU(s) found by nvidia-smi -L", host.c_str(), gpus.size());
            resources_.set_detected_gpus(host, std::move(gpus));
            // The probe is dropped on a later turn: this callback runs inside it.
            next_probe_.start(0, [this] {
                gpu_probe_.reset();
                detect_gpus();
            });
            if (on_change_) on_change_();
        };
        auto child = loop::ChildProcess::spawn(loop_, std::move(o), std::move(cb));
        if (!child) {
            log::info("host %s: gpus = \"auto\" but nvidia-smi cannot run (%s): no GPUs", host.c_str(),
                      child.error().message.c_str());
            resources_.set_detected_gpus(host, {});
            continue;
        }
        gpu_probe_ = std::move(*child);
        return;
    }
}

} // namespace luaflow::exec
