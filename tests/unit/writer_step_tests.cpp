// SPDX-License-Identifier: BSL-1.0
// What a connection's writer does next, decided without sockets
// (detail/writer_step.hpp): write, cork, flush, close, wait, hold or finish.

#include <mallard/detail/writer_step.hpp>

#include <catch2/catch.hpp>

namespace {

using mallard::detail::next_writer_step;
using mallard::detail::reader_position;
using mallard::detail::writer_step;
using mallard::detail::writer_view;

writer_view one_message(std::size_t bytes, reader_position reader)
{
    writer_view v;
    v.message_waiting = true;
    v.next_message_bytes = bytes;
    v.reader = reader;
    return v;
}

writer_view holding(std::size_t bytes, reader_position reader)
{
    writer_view v;
    v.held_bytes = bytes;
    v.reader = reader;
    return v;
}

} // namespace

TEST_CASE("A reply from the handler's turn is corked, and one sent while the reader waits leaves at once",
          "[writer]")
{
    CHECK(next_writer_step(one_message(16, reader_position::in_handler)) ==
          writer_step::write_corked);
    CHECK(next_writer_step(one_message(16, reader_position::in_beast)) ==
          writer_step::write_corked);
    // A broadcast or a spawned task's message to a connection waiting for
    // its peer, when it cannot be framed at once (an uncorked write is on
    // its way, or a flush holds too much): nothing else is coming, so no
    // copy and no later flush.
    CHECK(next_writer_step(one_message(16, reader_position::at_peer)) == writer_step::write);
    auto burst = one_message(16, reader_position::at_peer);
    burst.more_waiting = true;
    CHECK(next_writer_step(burst) == writer_step::write_corked);
}

TEST_CASE("A message framed at once for a connection waiting for its peer is sent from the same turn",
          "[writer]")
{
    auto v = one_message(16, reader_position::at_peer);
    v.next_frames_at_once = true;
    CHECK(next_writer_step(v) == writer_step::write_corked);
    // Framed into the gathered bytes; the reader is at the peer, so they leave now.
    CHECK(next_writer_step(holding(18, reader_position::at_peer)) == writer_step::flush);
    // A large one is not copied, framed at once or not.
    auto large = one_message(8 * 1024 + 1, reader_position::at_peer);
    large.next_frames_at_once = true;
    CHECK(next_writer_step(large) == writer_step::write);
}

TEST_CASE("Large messages are never copied into a corked write", "[writer]")
{
    CHECK(next_writer_step(one_message(8 * 1024, reader_position::in_handler)) ==
          writer_step::write_corked);
    CHECK(next_writer_step(one_message(8 * 1024 + 1, reader_position::in_handler)) ==
          writer_step::write);
}

TEST_CASE("Beast takes one write at a time: a second message waits for the first", "[writer]")
{
    auto v = one_message(16, reader_position::in_handler);
    v.writing = true;
    CHECK(next_writer_step(v) == writer_step::wait);
    v.flushing = true;
    v.writing = false;
    CHECK(next_writer_step(v) == writer_step::write_corked); // held behind the flush, bounded
}

TEST_CASE("Gathered bytes leave when the reader reaches the peer, or at the end of a turn in the handler",
          "[writer]")
{
    CHECK(next_writer_step(holding(100, reader_position::at_peer)) == writer_step::flush);
    CHECK(next_writer_step(holding(100, reader_position::in_handler)) == writer_step::hold);
    CHECK(next_writer_step(holding(100, reader_position::in_beast)) == writer_step::hold);

    auto turn_over = holding(100, reader_position::in_handler);
    turn_over.turn_ended = true; // the handler awaits something else
    CHECK(next_writer_step(turn_over) == writer_step::flush);
    // Beast parsing frames it already has: the next message may add a reply.
    auto parsing = holding(100, reader_position::in_beast);
    parsing.turn_ended = true;
    CHECK(next_writer_step(parsing) == writer_step::hold);
}

TEST_CASE("Gathered bytes leave at 64 KiB even while replies are coming", "[writer]")
{
    CHECK(next_writer_step(holding(64 * 1024, reader_position::in_handler)) == writer_step::flush);
    auto v = holding(64 * 1024, reader_position::in_handler);
    v.flushing = true;
    CHECK(next_writer_step(v) == writer_step::wait);
}

TEST_CASE("A close frame follows every queued message and every gathered byte", "[writer]")
{
    writer_view v;
    v.close_requested = true;
    CHECK(next_writer_step(v) == writer_step::close);

    auto queued = one_message(16, reader_position::in_handler);
    queued.close_requested = true;
    CHECK(next_writer_step(queued) == writer_step::write_corked);

    auto held = holding(100, reader_position::in_handler);
    held.close_requested = true; // the reader waits for the close: flush now
    CHECK(next_writer_step(held) == writer_step::flush);

    auto writing = v;
    writing.writing = true;
    CHECK(next_writer_step(writing) == writer_step::wait);
}

TEST_CASE("Done: what is gathered is flushed, what is in flight completes, then the writer finishes",
          "[writer]")
{
    writer_view v;
    v.done = true;
    CHECK(next_writer_step(v) == writer_step::finish);
    v.held_bytes = 10;
    CHECK(next_writer_step(v) == writer_step::flush);
    v.flushing = true;
    CHECK(next_writer_step(v) == writer_step::wait);
    v = writer_view{};
    v.done = true;
    v.writing = true;
    v.message_waiting = true; // never written once done
    CHECK(next_writer_step(v) == writer_step::wait);
}

TEST_CASE("Nothing to do is idle", "[writer]")
{
    CHECK(next_writer_step(writer_view{}) == writer_step::idle);
}

TEST_CASE("While a flush waits for a slow peer, a discarding policy keeps messages in the queue",
          "[writer]")
{
    auto v = one_message(16, reader_position::at_peer);
    v.next_frames_at_once = true;
    v.flushing = true;
    v.held_bytes = 1024;
    // The close policy lets them gather beneath Beast (bounded there).
    CHECK(next_writer_step(v) == writer_step::write_corked);
    // keep_latest and drop_oldest need them where they can discard them.
    v.policy_discards = true;
    CHECK(next_writer_step(v) == writer_step::wait);
    // Once the flush is done, the newest one left goes.
    v.flushing = false;
    CHECK(next_writer_step(v) == writer_step::write_corked);
}
