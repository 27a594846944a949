#include "daemon/exec/resources.hpp"

#include "common/size.hpp"

#include <uv.h>

#include <cmath>
#include <cstdio>
#include <sstream>

namespace luaflow::exec {

namespace {

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

std::string plural(double n, const char* one, const char* many) {
    return number(n) + " " + (n == 1 ? one : many);
}

} // namespace

std::string describe(const scripting::Resources& r) {
    std::string out;
    auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
    if (r.cpus > 0) add(plural(r.cpus, "CPU", "CPUs"));
    if (r.gpus > 0) add(plural(r.gpus, "GPU", "GPUs"));
    if (r.memory > 0) add(format_size(r.memory));
    return out.empty() ? "nothing" : out;
}

nlohmann::json allocation_json(const Allocation& a) {
    return {{"cpus", a.cpus}, {"gpu_count", a.gpu_count}, {"gpus", a.gpus}, {"memory", a.memory}};
}

std::vector<std::string> parse_nvidia_smi_list(const std::string& text) {
    std::vector<std::string> ids;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        unsigned index = 0;
        // "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-...)"; MIG lines ("  MIG 1g.5gb Device 0: ...") are
        // parts of the GPU above them and are not handed over separately.
        if (std::sscanf(line.c_str(), "GPU %u:", &index) == 1) ids.push_back(std::to_string(index));
    }
    return ids;
}

void ResourcePool::configure(const std::map<std::string, config::HostConfig>& hosts) {
    hosts_.clear();
    for (const auto& [name, h] : hosts) {
        Inventory inv;
        inv.config = h;
        inv.cpus = h.cpus;
        inv.memory = h.memory;
        if (h.kind == config::HostConfig::Kind::local) {
            if (!inv.cpus) inv.cpus = static_cast<double>(uv_available_parallelism());
            if (!inv.memory) inv.memory = uv_get_total_memory();
        }
        if (h.gpus_auto) {
            // Keep what an earlier detection found; a reload does not forget the devices.
            if (auto old = detected_.find(name); old != detected_.end())
                inv.gpus = old->second;
            else
                detecting_.insert(name);
        } else {
            inv.gpus = h.gpus;
            detecting_.erase(name);
        }
        hosts_[name] = std::move(inv);
    }
}

void ResourcePool::set_detected_gpus(const std::string& host, std::vector<std::string> gpus) {
    detecting_.erase(host);
    detected_[host] = gpus;
    if (auto it = hosts_.find(host); it != hosts_.end() && it->second.config.gpus_auto)
        it->second.gpus = std::move(gpus);
}

std::vector<std::string> ResourcePool::host_names() const {
    std::vector<std::string> names;
    for (const auto& [name, inv] : hosts_)
        names.push_back(name);
    return names;
}

bool ResourcePool::has_gpus(const std::string& name) const {
    auto it = hosts_.find(name);
    if (it == hosts_.end() || it->second.config.kind == config::HostConfig::Kind::slurm) return false;
    return !it->second.gpus.empty() || detecting_.count(name) > 0;
}

const config::HostConfig* ResourcePool::host(const std::string& name) const {
    auto it = hosts_.find(name);
    return it == hosts_.end() ? nullptr : &it->second.config;
}

Grant ResourcePool::acquire(const std::string& name, const scripting::Resources& want) {
    Grant g;
    auto it = hosts_.find(name);
    if (it == hosts_.end()) {
        std::string known;
        for (const auto& [n, inv] : hosts_)
            known += (known.empty() ? "" : ", ") + n;
        g.kind = Grant::Kind::impossible;
        g.why = "no host '" + name + "' in the config (hosts: " + known + ")";
        return g;
    }
    const Inventory& inv = it->second;
    g.allocation.cpus = want.cpus;
    g.allocation.gpu_count = want.gpus;
    g.allocation.memory = want.memory;
    // The cluster counts and picks the devices itself (--gres=gpu:N).
    if (inv.config.kind == config::HostConfig::Kind::slurm) return g;
    if (want.gpus > 0 && detecting_.count(name)) {
        g.kind = Grant::Kind::wait;
        g.why = "host " + name + ": looking for GPUs (nvidia-smi -L)";
        return g;
    }
    g.allocation.host_has_gpus = has_gpus(name);
    // More than the host has at all: it would wait for ever.
    std::string lacks;
    if (inv.cpus && want.cpus > *inv.cpus) lacks = plural(*inv.cpus, "CPU", "CPUs");
    if (want.gpus > static_cast<int>(inv.gpus.size()))
        lacks = inv.gpus.empty() ? "no GPUs" : plural(static_cast<double>(inv.gpus.size()), "GPU", "GPUs");
    if (inv.memory && want.memory > *inv.memory) lacks = format_size(*inv.memory) + " of memory";
    if (!lacks.empty()) {
        g.kind = Grant::Kind::impossible;
        g.why = "needs " + describe(want) + " but host " + name + " has " + lacks;
        return g;
    }
    Held& held = held_[name];
    std::vector<std::string> free_gpus;
    for (const std::string& id : inv.gpus)
        if (!held.gpus.count(id)) free_gpus.push_back(id);
    std::string short_of;
    auto add = [&](const std::string& s) { short_of += (short_of.empty() ? "" : ", ") + s; };
    // A small tolerance: fractions of CPUs add up in floating point.
    if (inv.cpus && held.cpus + want.cpus > *inv.cpus + 1e-9)
        add(number(*inv.cpus - held.cpus) + " of " + plural(*inv.cpus, "CPU", "CPUs") + " free");
    if (want.gpus > static_cast<int>(free_gpus.size()))
        add(number(static_cast<double>(free_gpus.size())) + " of " +
            plural(static_cast<double>(inv.gpus.size()), "GPU", "GPUs") + " free");
    if (inv.memory && held.memory + want.memory > *inv.memory)
        add(format_size(*inv.memory - held.memory) + " of " + format_size(*inv.memory) + " free");
    if (!short_of.empty()) {
        g.kind = Grant::Kind::wait;
        g.why = "host " + name + ": needs " + describe(want) + "; " + short_of;
        return g;
    }
    held.cpus += want.cpus;
    held.memory += want.memory;
    for (int k = 0; k < want.gpus; ++k) {
        held.gpus.insert(free_gpus[static_cast<std::size_t>(k)]);
        g.allocation.gpus.push_back(free_gpus[static_cast<std::size_t>(k)]);
    }
    return g;
}

void ResourcePool::release(const std::string& name, const Allocation& a) {
    auto it = hosts_.find(name);
    if (it != hosts_.end() && it->second.config.kind == config::HostConfig::Kind::slurm) return;
    Held& held = held_[name];
    held.cpus = std::max(0.0, held.cpus - a.cpus);
    held.memory = held.memory >= a.memory ? held.memory - a.memory : 0;
    for (const std::string& id : a.gpus)
        held.gpus.erase(id);
}

} // namespace luaflow::exec
