// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_REDIS_ENVELOPE_HPP
#define MALLARD_DETAIL_REDIS_ENVELOPE_HPP

// How a group message travels on a Redis channel: a 10-byte header, then the
// payload as it is (Redis strings are binary-safe).
//
//   byte 0     format version, 1
//   byte 1     't' text or 'b' binary; 'T' or 'B' a numbered message of a
//              group with history (text or binary); 'j' or 'l' a member
//              joined or left
//   bytes 2-9  the publishing server's node id, so it can skip its own echo
//   bytes 10-  the payload; for 'T' and 'B', "<offset>:<epoch>:<excluded
//              connection>:<publish id>:" before it (see history_store.hpp); for 'j' and
//              'l', "<connection id>:<presence info>" of the member, whose
//              server the node id names (see presence_store.hpp)

#include <mallard/opcode.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mallard::detail {

/// A server's identity on the backplane: random, made at start.
using node_id = std::array<char, 8>;

inline constexpr std::size_t envelope_header_size = 10;
inline constexpr char envelope_version = 1;

inline std::string seal_envelope(node_id const& origin, opcode op, std::string_view payload)
{
    std::string sealed;
    sealed.reserve(envelope_header_size + payload.size());
    sealed += envelope_version;
    sealed += op == opcode::binary ? 'b' : 't';
    sealed.append(origin.data(), origin.size());
    sealed += payload;
    return sealed;
}

/// A member joining (`joined`) or leaving a group, sealed.
inline std::string seal_presence(node_id const& origin, bool joined, std::uint64_t connection,
                                 std::string_view info)
{
    std::string sealed;
    sealed += envelope_version;
    sealed += joined ? 'j' : 'l';
    sealed.append(origin.data(), origin.size());
    sealed += std::to_string(connection);
    sealed += ':';
    sealed += info;
    return sealed;
}

struct opened_envelope {
    enum class kind { message, numbered, joined, left };
    kind what = kind::message;
    node_id origin{};
    opcode op = opcode::text;
    std::string_view payload;
    // For joined and left: the member's connection (payload: its info).
    std::uint64_t connection = 0;
};

/// The envelope in `bytes`, or nothing when they are not one of ours (a
/// foreign publisher on our channel, or another format version).
inline std::optional<opened_envelope> open_envelope(std::string_view bytes)
{
    if (bytes.size() < envelope_header_size || bytes[0] != envelope_version)
        return std::nullopt;
    opened_envelope opened;
    switch (bytes[1]) {
    case 't': break;
    case 'b': opened.op = opcode::binary; break;
    case 'T': opened.what = opened_envelope::kind::numbered; break;
    case 'B':
        opened.what = opened_envelope::kind::numbered;
        opened.op = opcode::binary;
        break;
    case 'j': opened.what = opened_envelope::kind::joined; break;
    case 'l': opened.what = opened_envelope::kind::left; break;
    default: return std::nullopt;
    }
    bytes.copy(opened.origin.data(), opened.origin.size(), 2);
    opened.payload = bytes.substr(envelope_header_size);
    if (opened.what == opened_envelope::kind::joined || opened.what == opened_envelope::kind::left) {
        auto const colon = opened.payload.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return std::nullopt;
        for (char digit : opened.payload.substr(0, colon)) {
            if (digit < '0' || digit > '9')
                return std::nullopt;
            opened.connection = opened.connection * 10 + static_cast<unsigned>(digit - '0');
        }
        opened.payload.remove_prefix(colon + 1);
    }
    return opened;
}

} // namespace mallard::detail

#endif
