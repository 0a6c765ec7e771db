// SPDX-License-Identifier: BSL-1.0
/// @file
/// Where the server writes its log lines, and how much.
#ifndef MALLARD_LOGGER_HPP
#define MALLARD_LOGGER_HPP

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace mallard {

/// Severity of a log record, in syslog order.
enum class log_level {
    debug,   ///< per-message detail, for development
    info,    ///< each connection's upgrade and close
    notice,  ///< refused upgrades and other events an operator may want to see
    warning, ///< something went wrong for one connection or one part
    error,   ///< something went wrong for the server
    off,     ///< nothing (as a threshold only)
};

/// What a log record is about.
enum class log_category {
    access,     ///< a connection's life: upgrade, refusal, close code
    diagnostic, ///< something for the operator: handler exceptions, setup, shutdown
};

/// A short lower-case name for `level`.
constexpr std::string_view to_string(log_level level) noexcept
{
    switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::notice: return "notice";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
    case log_level::off: return "off";
    }
    return "unknown";
}

/** Where the server's log records go.

    Passed in `server_options`; there is no global logger. The sink is called
    from the server's threads, possibly from several at once, so it must be
    thread-safe. A record below `level` costs one comparison.

    @par Example
    @code
    mallard::logger log{mallard::log_level::info,
        [](mallard::log_level, mallard::log_category, std::string_view line) {
            my_log(line);
        }};
    mallard::server srv{{.port = 8080, .log = log}, urls};
    @endcode
*/
struct logger {
    /// What receives each record: its level, its category and the line.
    using sink_type = std::function<void(log_level, log_category, std::string_view)>;

    /// Records below this level are discarded. Default `warning`: a quiet
    /// server unless something needs the operator's attention.
    log_level level = log_level::warning;

    /// Receives each record. Default: one line on stderr.
    sink_type sink = &stderr_sink;

    /// Whether a record at `at` would be written.
    bool enabled(log_level at) const noexcept
    {
        return at >= level && at != log_level::off && sink;
    }

    /// Writes `text` if `at` is enabled.
    void write(log_level at, log_category category, std::string_view text) const
    {
        if (enabled(at))
            sink(at, category, text);
    }

    /// The default sink: `mallard <level>: <text>` on stderr, one write per line.
    static void stderr_sink(log_level at, log_category, std::string_view text)
    {
        std::string line = "mallard ";
        line += to_string(at);
        line += ": ";
        line += text;
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stderr);
    }
};

} // namespace mallard

#endif
