// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_GROUP_HUB_HPP
#define MALLARD_DETAIL_GROUP_HUB_HPP

// What a session needs of the server's groups, as an interface so that
// session_base does not depend on the server (detail::fanout implements it).

#include <mallard/group_history.hpp>
#include <mallard/opcode.hpp>
#include <mallard/presence.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mallard::detail {

class session_base;
class stats_counters;

/// How a session joins a group.
struct join_request {
    /// Where its client stands in the group's history; none: it joins for
    /// the live messages only.
    std::optional<since> from{};
    /// Its value in the group's presence list.
    std::string presence{};
};

class group_hub {
public:
    virtual ~group_hub() = default;

    /** On the session's thread: adds it to `group` (once, checked by the
        session). For a group with history, what the member gets back (see
        join_result); nothing when its history is being read elsewhere:
        then `session.history_read(ticket, ...)` is posted to the session's
        thread when it arrives, and the session calls `finish_join`.
    */
    virtual std::optional<join_result> join(std::size_t worker, session_base& session,
                                            std::string const& group,
                                            join_request const& request, std::uint64_t ticket) = 0;
    /// On the session's thread: completes a join whose history was read
    /// elsewhere with what was read; returns what the member gets back.
    virtual join_result finish_join(std::size_t worker, session_base& session,
                                    std::string const& group, join_result read) = 0;
    /// On the session's thread: removes it from `group`, if a member.
    virtual void leave(std::size_t worker, session_base& session, std::string const& group) = 0;
    /// Any thread: sends to every member; returns the local member count.
    virtual std::size_t publish(std::string const& group, std::shared_ptr<std::string const> payload,
                                opcode op, std::uint64_t excluded_connection) = 0;
    /// Any thread: the number of members on this server.
    virtual std::size_t size(std::string const& group) const = 0;
    /// Any thread: the members of a group with presence.
    virtual std::vector<presence_member> presence(std::string const& group) const = 0;
    /// Any thread: reads the history of a group with history; `done` runs
    /// once, on any thread (at once when this process keeps it).
    virtual void read_history(std::string const& group,
                              std::function<void(group_history)> done) = 0;
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
