// SPDX-License-Identifier: BSL-1.0
/// @file
/// What a group with a history remembers, and how a joining member asks for it.
#ifndef MALLARD_GROUP_HISTORY_HPP
#define MALLARD_GROUP_HISTORY_HPP

// What a group with history remembers, and what a member gets back when it
// joins from a position it saw before (`websocket_view::join` with `since`).

#include <mallard/opcode.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mallard {

/** A position in a group's history, as a client last saw it: the offset of
    the last message it received and the epoch of the history that offset
    belongs to.

    A client that has no position yet passes `since{}`: it matches no
    history, so its join reports `recovered == false` and hands it the last
    messages to start from.
*/
struct since {
    /// The offset of the last message the client received; 0 for none.
    std::uint64_t offset = 0;
    /// The epoch of the history that offset belongs to (`history_position::epoch`).
    std::string epoch{};
};

/// Where a group's history stands: its epoch and its last offset.
struct history_position {
    /// The offset of the group's last message; 0 before its first.
    std::uint64_t offset = 0;
    /** Names one unbroken history of the group: it changes whenever the
        history is lost (the process that held it restarted, the store lost
        it), so that an offset from another epoch is never taken for one of
        this history. An opaque string; compare it, do not parse it.
    */
    std::string epoch{};
};

/// One message of a group's history.
struct history_entry {
    /// Its place in the group: 1 for the first publish, +1 for each next one.
    std::uint64_t offset = 0;
    /// The payload as it was published (before `group_policy::format`).
    std::shared_ptr<std::string const> payload{};
    /// `opcode::text` or `opcode::binary`, as published.
    mallard::opcode op = mallard::opcode::text;
    /// When it was added to the history.
    std::chrono::system_clock::time_point time{};
};

/// A group's history as it is now: its position and the messages it keeps,
/// oldest first.
struct group_history {
    /// The offset of its newest message and its epoch.
    history_position position{};
    /// The messages it keeps, oldest first: at most the policy's
    /// `history_size`, none older than its `history_age`.
    std::vector<history_entry> messages{};
};

/** What `websocket_view::join` with a position reports.

    From the moment it returns, the member receives every later message of
    the group live, and none of those in `messages` again: `messages`
    followed by the live ones is the group's history with no gap and no
    duplicate, in offset order.
*/
struct join_result {
    /** Whether `messages` are exactly those after the position the client
        gave: its epoch is the group's and the history still reaches back to
        it. When false, the client's view of the group cannot be completed
        (it gave no position, the history was lost or has moved on past it):
        `messages` are then the last ones the group keeps, to start afresh.
    */
    bool recovered = false;
    /// The messages to hand the client before the live ones, oldest first.
    std::vector<history_entry> messages{};
    /// The group's position when the member joined (the last message of
    /// `messages`, or the one before the first live message).
    history_position position{};
};

} // namespace mallard

#endif
