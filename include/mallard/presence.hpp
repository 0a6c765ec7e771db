// SPDX-License-Identifier: BSL-1.0
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
    enum class kind { joined, left };
    /// The group's name.
    std::string_view group{};
    kind what = kind::joined;
    /// Who joined or left.
    presence_member const& member;
    /// Every member after the change, in the order they joined.
    std::vector<presence_member> const& members;
};

} // namespace mallard

#endif
