// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_REDIS_ENVELOPE_HPP
#define MALLARD_DETAIL_REDIS_ENVELOPE_HPP

// How a group message travels on a Redis channel: a 10-byte header, then the
// payload as it is (Redis strings are binary-safe).
//
//   byte 0     format version, 1
//   byte 1     't' text or 'b' binary
//   bytes 2-9  the publishing server's node id, so it can skip its own echo
//   bytes 10-  the payload

#include <mallard/opcode.hpp>

#include <array>
#include <cstddef>
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

struct opened_envelope {
    node_id origin{};
    opcode op = opcode::text;
    std::string_view payload;
};

/// The envelope in `bytes`, or nothing when they are not one of ours (a
/// foreign publisher on our channel, or another format version).
inline std::optional<opened_envelope> open_envelope(std::string_view bytes)
{
    if (bytes.size() < envelope_header_size || bytes[0] != envelope_version ||
        (bytes[1] != 't' && bytes[1] != 'b'))
        return std::nullopt;
    opened_envelope opened;
    opened.op = bytes[1] == 'b' ? opcode::binary : opcode::text;
    bytes.copy(opened.origin.data(), opened.origin.size(), 2);
    opened.payload = bytes.substr(envelope_header_size);
    return opened;
}

} // namespace mallard::detail

#endif
