// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_GROUP_HUB_HPP
#define MALLARD_DETAIL_GROUP_HUB_HPP

// What a session needs of the server's groups, as an interface so that
// session_base does not depend on the server (detail::fanout implements it).

#include <mallard/opcode.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mallard::detail {

class session_base;
class stats_counters;

class group_hub {
public:
    virtual ~group_hub() = default;

    /// On the session's thread: adds it to `group` (once).
    virtual void join(std::size_t worker, session_base& session, std::string const& group) = 0;
    /// On the session's thread: removes it from `group`, if a member.
    virtual void leave(std::size_t worker, session_base& session, std::string const& group) = 0;
    /// Any thread: sends to every member; returns the local member count.
    virtual std::size_t publish(std::string const& group, std::shared_ptr<std::string const> payload,
                                opcode op, std::uint64_t excluded_connection) = 0;
    /// Any thread: the number of members on this server.
    virtual std::size_t size(std::string const& group) const = 0;
};

/// What a session is given by its server: groups, its route's counters on
/// its thread, its thread's index and its route's.
struct session_services {
    group_hub& groups;
    stats_counters& stats;
    std::size_t worker_index;
    std::size_t route_index;
};

} // namespace mallard::detail

#endif
