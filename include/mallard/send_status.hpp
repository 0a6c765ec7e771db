// SPDX-License-Identifier: BSL-1.0
/// @file
/// What became of a message handed to a send queue.
#ifndef MALLARD_SEND_STATUS_HPP
#define MALLARD_SEND_STATUS_HPP

namespace mallard {

/** What became of a message handed to `send_text`, `send_binary` or `ping`.

    Sends never throw: a connection can close at any moment (broadcasts race
    with disconnects all the time), so the outcome is a value to inspect or
    to ignore.
*/
enum class send_status {
    queued,  ///< in the connection's outbound queue; written in order
    dropped, ///< discarded by the route's slow-consumer policy
    closed,  ///< the connection is closing or closed; nothing was queued
};

} // namespace mallard

#endif
