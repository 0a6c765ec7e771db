// SPDX-License-Identifier: BSL-1.0
/// @file
/// The kinds of WebSocket data message.
#ifndef MALLARD_OPCODE_HPP
#define MALLARD_OPCODE_HPP

#include <cstdint>

namespace mallard {

/** The WebSocket frame opcodes.

    A view only ever receives `text` or `binary` in `on_receive`: control
    frames are answered by the library and continuation frames are joined
    into whole messages.

    @see RFC 6455 section 5.2
*/
enum class opcode : std::uint8_t {
    continuation = 0x0, ///< a later fragment of a message
    text = 0x1,         ///< a UTF-8 text message
    binary = 0x2,       ///< a binary message
    close = 0x8,        ///< the closing handshake
    ping = 0x9,         ///< a keep-alive probe; answered with a pong
    pong = 0xA,         ///< the answer to a ping
};

} // namespace mallard

#endif
