// SPDX-License-Identifier: BSL-1.0
/// @file
/// Who is in a group: the members, and the changes members are told of.
#ifndef MALLARD_PRESENCE_HPP
#define MALLARD_PRESENCE_HPP

// Who is in a group: each member with the small value it joined with.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mallard {

/// One member of a group with presence.
struct presence_member {
    /// What the member joined with (`websocket_view::join`'s `presence`):
    /// a user id, a display name; small, it is copied to every listing.
    std::string info{};
    /// Its connection's id (`connection::id()`) on its server: tells apart
    /// two members with the same info, such as one user in two tabs.
    std::uint64_t connection = 0;
    /// Which server holds it, as the backplane names servers: empty for
    /// this one. With `connection`, it identifies the member.
    std::string server{};
};

/// A member joined or left a group with presence.
struct presence_change {
    /// Which of the two happened.
    enum class kind {
        joined, ///< the member joined the group
        left,   ///< the member left it, or its connection or its server ended
    };
    /// The group's name.
    std::string_view group{};
    /// Whether the member joined or left.
    kind what = kind::joined;
    /// Who joined or left.
    presence_member const& member;
    /// Every member after the change, in the order they joined.
    std::vector<presence_member> const& members;
};

} // namespace mallard

#endif
