// SPDX-License-Identifier: BSL-1.0
/// @file
/// Per-group policies: history, message format and presence, chosen by group name.
#ifndef MALLARD_GROUP_POLICY_HPP
#define MALLARD_GROUP_POLICY_HPP

// Groups that remember (history, offsets, recovery) and that know who is in
// them (presence), chosen by name on the server (`server_options::groups`).

#include <mallard/group_history.hpp>
#include <mallard/presence.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mallard {

/** How the groups whose names match `pattern` behave; for
    `server_options::groups`.

    A group without a matching policy is fire-and-forget, as groups are by
    default: a publish reaches the members of the moment, at most once, and
    is gone. With `history_size`, the group keeps its last messages, numbers
    every publish with an offset, and lets a member that comes back recover
    what it missed (`websocket_view::join` with `since`). With `presence`,
    the group lists its members (`websocket_view::presence`) and tells them
    when someone joins or leaves.

    @par Example
    @code
    mallard::group_policy rooms{.pattern = "room:*", .history_size = 100,
                                .history_age = std::chrono::hours{1}, .presence = true};
    options.groups.push_back(rooms);
    @endcode
*/
struct group_policy {
    /// The group names it applies to: a name as it is ("lobby"), or a
    /// prefix followed by one `*` at the end ("room:*"). The first policy
    /// that matches a name is the group's.
    std::string pattern{};

    /// How many messages the group keeps, the newest. 0 (the default): no
    /// history, no offsets.
    std::size_t history_size = 0;

    /// With `history_size`, also forget messages older than this. 0 (the
    /// default): kept until `history_size` newer ones push them out.
    std::chrono::milliseconds history_age{0};

    /** With `history_size`: what the members receive for a message, given
        the group's name and the message with its offset. It runs once per
        message in each process, and every member there shares the result:
        this is where a message gets the offset its client will pass back
        as `since` (e.g. `{"type":"message","offset":7,...}`). It must not
        throw. Empty (the default): members receive the payload as it was
        published.
    */
    std::function<std::string(std::string_view group, history_entry const& entry)> format{};

    /// Whether the group keeps a list of its members, each with the value
    /// it joined with. Default false.
    bool presence = false;

    /** With `presence`: the messages every member (the one that joined or
        left included, while a member) receives when someone joins or
        leaves, e.g. a notice and the new member list. They take no offset
        and stay out of the history. It runs once per change and must not
        throw. Empty (the default): members are not told.
    */
    std::function<std::vector<std::string>(presence_change const& change)> presence_messages{};
};

} // namespace mallard

#endif
