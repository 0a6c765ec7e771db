// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_WRITER_STEP_HPP
#define MALLARD_DETAIL_WRITER_STEP_HPP

// What a connection's writer does next, as a function of what it sees.
// Sans-I/O: the session carries the step out (detail/session.hpp) and asks
// again whenever something changed: a message was queued, a close was asked
// for, a write or flush completed, the reader reached the peer, a turn of the
// event loop ended. Unit tests drive it directly.
//
// Two kinds of write can be in flight at once: one Beast operation (a
// message, a ping or the close handshake; Beast allows one) and one flush of
// the bytes gathered beneath Beast (detail/coalescing_stream.hpp). While the
// layer is corked, Beast's writes are copied there and complete at once; the
// gathered bytes leave in one system call when the reader has used up what it
// read (so the replies to a burst of requests go together) or when the turn
// that corked ends with the handler waiting on something else. Nothing waits
// for a timer.

#include <cstddef>

namespace mallard::detail {

/// Where the connection's reader is.
enum class reader_position {
    in_handler, ///< delivering a message (on_receive, or between two of them)
    in_beast,   ///< Beast is parsing frames it already read: a message may follow at once
    at_peer,    ///< waiting for the peer's bytes (or paused by the memory budget)
};

/// What the writer sees.
struct writer_view {
    bool done = false;           ///< the reader ended, a write failed, or the close handshake is over
    bool writing = false;        ///< a Beast write, ping or close is in flight
    bool flushing = false;       ///< a flush of the gathered bytes is in flight
    bool message_waiting = false;
    std::size_t next_message_bytes = 0;
    bool more_waiting = false;   ///< another message waits behind the next one
    /// The next message can be framed straight into the gathered bytes,
    /// with no I/O (small enough, nothing uncorked on its way).
    bool next_frames_at_once = false;
    std::size_t held_bytes = 0;  ///< gathered beneath Beast, not yet flushed
    reader_position reader = reader_position::in_handler;
    bool turn_ended = false;     ///< asked from the end-of-turn check
    bool close_requested = false;
    /// The route's slow-consumer policy discards waiting messages
    /// (drop_oldest, keep_latest).
    bool policy_discards = false;
};

enum class writer_step {
    write,        ///< hand the next message to Beast as it is
    write_corked, ///< cork the layer first: more replies are coming
    flush,        ///< send the gathered bytes
    close,        ///< start the closing handshake
    wait,         ///< something is in flight: its completion asks again
    hold,         ///< bytes are gathered for replies still to come: ask again at the end of this turn
    idle,         ///< nothing to do until a message is queued or a close asked for
    finish,       ///< the writer is done for good
};

/// Messages up to this size are copied into a corked write with others;
/// larger ones are not worth the copy.
inline constexpr std::size_t coalesced_message_bytes = 8 * 1024;
/// Gathered bytes are sent at this size even while more replies are coming.
inline constexpr std::size_t flush_at_bytes = 64 * 1024;

inline writer_step next_writer_step(writer_view const& v) noexcept
{
    if (v.done) { // send what is gathered (a failed stream drops it), then stop
        if (v.held_bytes != 0 && !v.flushing)
            return writer_step::flush;
        return v.writing || v.flushing ? writer_step::wait : writer_step::finish;
    }
    if (v.held_bytes >= flush_at_bytes && !v.flushing)
        return writer_step::flush;
    if (v.message_waiting && !v.writing) {
        // A flush in flight waits for a slow peer. A policy that discards
        // messages must still reach the waiting ones: framed beneath Beast,
        // they would all be sent, however stale, once the peer catches up.
        if (v.flushing && v.policy_discards)
            return writer_step::wait;
        // Corked when replies are coming (they leave together), or when the
        // message is framed at once: then it is sent by a non-blocking send
        // from this turn, with no operation left in flight. Otherwise a lone
        // message (a broadcast or a spawned task's, to a connection waiting
        // for its peer) goes to Beast as it is: no copy and no later flush.
        bool const replies_coming = v.more_waiting || v.reader != reader_position::at_peer;
        return v.next_message_bytes <= coalesced_message_bytes &&
                       (replies_coming || v.next_frames_at_once)
                   ? writer_step::write_corked
                   : writer_step::write;
    }
    if (v.held_bytes != 0 && !v.flushing && !v.message_waiting) {
        // Flush once no reply can join: the reader waits for the peer, a
        // close frame must follow, or the turn ended with the handler waiting
        // on something else (Beast parsing buffered frames is not that: its
        // next message may add a reply, and reaching the peer flushes).
        if (v.reader == reader_position::at_peer || v.close_requested ||
            (v.turn_ended && v.reader == reader_position::in_handler))
            return writer_step::flush;
    }
    if (v.writing || v.flushing)
        return writer_step::wait;
    if (v.held_bytes != 0)
        return writer_step::hold;
    if (v.close_requested)
        return writer_step::close;
    return writer_step::idle;
}

} // namespace mallard::detail

#endif
