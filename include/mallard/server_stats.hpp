// SPDX-License-Identifier: BSL-1.0
/// @file
/// A short summary of the server's counters.
#ifndef MALLARD_SERVER_STATS_HPP
#define MALLARD_SERVER_STATS_HPP

#include <cstdint>
#include <map>
#include <string>

namespace mallard {

/** A snapshot of a server's counters since it was made.

    Read with `server::stats()`; logged at `notice` when the server stops.
    Messages count whole WebSocket messages, bytes their payloads.
*/
struct server_stats {
    std::uint64_t connections_open = 0;    ///< WebSocket connections open now
    std::uint64_t connections_opened = 0;  ///< upgrades completed
    std::uint64_t messages_in = 0;         ///< messages received from clients
    std::uint64_t bytes_in = 0;            ///< their payload bytes
    std::uint64_t messages_out = 0;        ///< messages written to clients
    std::uint64_t bytes_out = 0;           ///< their payload bytes
    std::uint64_t messages_dropped = 0;    ///< discarded by a slow-consumer policy
    /// Publishes the backplane could not carry to other servers (they still
    /// reached this server's members): e.g. while Redis was unreachable.
    std::uint64_t backplane_dropped = 0;
    /// Bytes the connections held at the memory budget's last look (a few
    /// times a second; 0 without a budget): see `server_options::memory_budget`.
    std::uint64_t memory_held = 0;
    /// Connections whose reading the memory budget has paused, now.
    std::uint64_t connections_paused = 0;
    /// Connections ended, by the close code in `on_close` (1006: no close
    /// frame). Codes 1000-1015, 3000-3015 and 4000-4015 are counted one by
    /// one, any other under 0. `server::metrics()` also has the causes.
    std::map<std::uint16_t, std::uint64_t> closes_by_code;

    /// One line for logs: "open 3, opened 10, in 52 msg/1.2 KiB, ...".
    std::string summary() const
    {
        std::string text = "open " + std::to_string(connections_open) + ", opened " +
                           std::to_string(connections_opened) + ", in " +
                           std::to_string(messages_in) + " msg/" + std::to_string(bytes_in) +
                           " B, out " + std::to_string(messages_out) + " msg/" +
                           std::to_string(bytes_out) + " B, dropped " +
                           std::to_string(messages_dropped);
        if (backplane_dropped != 0)
            text += ", backplane dropped " + std::to_string(backplane_dropped);
        text += ", closes";
        if (closes_by_code.empty())
            text += " none";
        for (auto const& [code, count] : closes_by_code)
            text += " " + std::to_string(code) + "x" + std::to_string(count);
        return text;
    }
};

} // namespace mallard

#endif
