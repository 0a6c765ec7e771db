// SPDX-License-Identifier: BSL-1.0
// The command line every example shares:
//   --port N (0 = any free port)  --threads N  --address A (default 127.0.0.1)
//   --cert FILE --key FILE (PEM; serve wss:// instead of ws://)
//   --memory-budget BYTES (server_options::memory_budget; 0 = none)
//   --drain-window-ms N (server_options::drain_window: SIGTERM closes the
//     connections spread over it) --drain-code CODE (drain_close_code, e.g. 1012)
// plus each example's own flags and valued options. Every example serves
// its metrics at /metrics and a live status page at /status. On success the example
// prints "listening on ws://ADDRESS:PORT" (or wss://) as its first line,
// flushed, so scripts can drive it. SIGUSR1 hands the memory glibc keeps
// back to the system (malloc_trim) and says "memory trimmed" on stderr: what
// is resident then is what the server holds (the soak test measures that).

#ifndef MALLARD_EXAMPLES_COMMON_EXAMPLE_ARGS_HPP
#define MALLARD_EXAMPLES_COMMON_EXAMPLE_ARGS_HPP

#include <mallard/mallard.hpp>

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <charconv>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace examples {

/// mallard::load_tls for a certificate and key file (example_tls.cpp).
std::shared_ptr<mallard::tls_context const> load_certificate(std::string const& cert,
                                                             std::string const& key);

struct example_args {
    mallard::server_options options;
    std::set<std::string, std::less<>> flags;
    std::map<std::string, std::string, std::less<>> values;

    bool has_flag(std::string_view flag) const { return flags.contains(flag); }

    std::string value(std::string_view name, std::string fallback) const
    {
        auto found = values.find(name);
        return found == values.end() ? fallback : found->second;
    }
};

template <class Number>
bool parse_number(std::string_view text, Number& out)
{
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && ptr == text.data() + text.size();
}

/// A server holds a socket per client: lift the soft limit on open files to
/// the hard one (Debian's soft default of 1024 would cap it at ~1,000 clients).
inline void raise_open_file_limit()
{
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

/// SIGUSR1: malloc_trim, then "NAME: memory trimmed" on stderr. The signal
/// is blocked in this thread and so in every thread made after it (the
/// server's); one thread of our own waits for it.
inline void trim_memory_on_sigusr1(std::string_view name)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set, program = std::string(name)] {
        for (;;) {
            int signal = 0;
            if (sigwait(&set, &signal) != 0)
                return;
            malloc_trim(0);
            std::cerr << program << ": memory trimmed" << std::endl;
        }
    }).detach();
}

/// Parses the shared options and the example's own; prints a usage line and
/// returns nothing on a mistake.
inline std::optional<example_args> parse_args(int argc, char** argv, std::string_view name,
                                              std::vector<std::string> const& own_flags = {},
                                              std::vector<std::string> const& own_values = {})
{
    raise_open_file_limit();
    trim_memory_on_sigusr1(name);
    example_args args;
    args.options.port = 8080;
    // What an operator reads: Prometheus metrics and the live status page.
    args.options.metrics_path = "/metrics";
    args.options.status_path = "/status";
    auto usage = [&](std::string const& problem) {
        std::cerr << name << ": " << problem << "\nusage: " << name
                  << " [--port N] [--threads N] [--address A] [--cert FILE --key FILE]"
                     " [--memory-budget BYTES] [--drain-window-ms N] [--drain-code CODE]";
        for (auto const& f : own_flags)
            std::cerr << " [" << f << "]";
        for (auto const& v : own_values)
            std::cerr << " [" << v << " VALUE]";
        std::cerr << '\n';
        return std::nullopt;
    };
    auto contains = [](std::vector<std::string> const& list, std::string_view item) {
        for (auto const& entry : list)
            if (entry == item)
                return true;
        return false;
    };
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        if (contains(own_flags, arg)) {
            args.flags.emplace(arg);
            continue;
        }
        bool const known = arg == "--port" || arg == "--threads" || arg == "--address" ||
                           arg == "--cert" || arg == "--key" || arg == "--memory-budget" ||
                           arg == "--drain-window-ms" || arg == "--drain-code" ||
                           contains(own_values, arg);
        if (!known)
            return usage("unknown option " + std::string(arg));
        if (i + 1 >= argc)
            return usage(std::string(arg) + " needs a value");
        std::string_view const value = argv[++i];
        if (arg == "--port") {
            if (!parse_number(value, args.options.port))
                return usage("--port takes a number from 0 to 65535");
        } else if (arg == "--threads") {
            if (!parse_number(value, args.options.threads) || args.options.threads == 0)
                return usage("--threads takes a positive number");
        } else if (arg == "--memory-budget") {
            if (!parse_number(value, args.options.memory_budget))
                return usage("--memory-budget takes a number of bytes (0: no budget)");
        } else if (arg == "--drain-window-ms") {
            unsigned milliseconds = 0;
            if (!parse_number(value, milliseconds))
                return usage("--drain-window-ms takes a number of milliseconds");
            args.options.drain_window = std::chrono::milliseconds{milliseconds};
        } else if (arg == "--drain-code") {
            std::uint16_t code = 0;
            if (!parse_number(value, code))
                return usage("--drain-code takes a close code, e.g. 1001 or 1012");
            args.options.drain_close_code = mallard::close_code{code};
        } else if (arg == "--address") {
            args.options.address = std::string(value);
        } else {
            args.values.insert_or_assign(std::string(arg), std::string(value));
        }
    }
    auto const cert = args.value("--cert", ""), key = args.value("--key", "");
    if (cert.empty() != key.empty())
        return usage("--cert and --key go together");
    if (!cert.empty()) {
        try { // every certificate problem shows here, before the server starts
            args.options.tls = load_certificate(cert, key);
        } catch (std::exception const& e) {
            std::cerr << name << ": " << e.what() << '\n';
            return std::nullopt;
        }
    }
    return args;
}

/// The line scripts wait for; printed once the server accepts connections.
inline void announce(mallard::server const& srv, example_args const& args)
{
    std::cout << "listening on " << (args.options.tls ? "wss" : "ws")
              << "://127.0.0.1:" << srv.port() << std::endl;
}

} // namespace examples

#endif
