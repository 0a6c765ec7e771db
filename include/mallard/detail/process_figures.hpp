// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_PROCESS_FIGURES_HPP
#define MALLARD_DETAIL_PROCESS_FIGURES_HPP

// The process's memory, descriptors and CPU time, read from /proc as the
// Prometheus client libraries read them for their process_* metrics.

#include <mallard/server_metrics.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>

#if defined(__linux__)
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace mallard::detail {

/// The calling process's figures; zero where they cannot be read.
inline process_metrics read_process_figures()
{
    process_metrics figures;
#if defined(__linux__)
    auto const page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    if (std::ifstream statm("/proc/self/statm"); statm) {
        std::uint64_t size = 0, resident = 0;
        if (statm >> size >> resident) {
            figures.virtual_memory_bytes = size * page;
            figures.resident_memory_bytes = resident * page;
        }
    }
    std::error_code ec;
    for (std::filesystem::directory_iterator fd("/proc/self/fd", ec), end; !ec && fd != end;
         fd.increment(ec))
        ++figures.open_fds;
    if (figures.open_fds != 0)
        --figures.open_fds; // the one reading the folder
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        figures.max_fds = limit.rlim_cur;
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) == 0)
        figures.cpu_seconds =
            static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
            static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    // Start: field 22 of /proc/self/stat, in clock ticks after boot (btime
    // in /proc/stat). Field 2, the command, may hold spaces: skip past ')'.
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (std::getline(stat, line)) {
        auto const after_name = line.rfind(')');
        if (after_name != std::string::npos) {
            std::istringstream fields(line.substr(after_name + 2));
            std::string field;
            std::uint64_t start_ticks = 0;
            for (int i = 3; i <= 22 && fields >> field; ++i)
                if (i == 22)
                    start_ticks = std::stoull(field);
            std::ifstream system_stat("/proc/stat");
            std::string key;
            std::uint64_t boot_time = 0;
            while (system_stat >> key) {
                if (key == "btime") {
                    system_stat >> boot_time;
                    break;
                }
                system_stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
            }
            auto const ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
            if (boot_time != 0 && ticks > 0)
                figures.start_time_seconds =
                    static_cast<double>(boot_time) + static_cast<double>(start_ticks) / ticks;
        }
    }
#endif
    return figures;
}

} // namespace mallard::detail

#endif
