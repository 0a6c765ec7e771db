// SPDX-License-Identifier: BSL-1.0
// A connection's deadlines decided without sockets
// (detail/connection_deadlines.hpp), the wheel's tick (choose_tick), and
// the deadline wheel on a real io_context (detail/deadline_wheel.hpp).

#include <mallard/detail/connection_deadlines.hpp>
#include <mallard/detail/deadline_wheel.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <vector>

namespace {

using namespace std::chrono_literals;
using mallard::detail::choose_tick;
using mallard::detail::connection_deadlines;
using mallard::detail::deadline_action;
using mallard::detail::deadline_inputs;
using mallard::detail::deadline_wheel;
using clock_type = std::chrono::steady_clock;

clock_type::time_point const t0 = clock_type::time_point{} + 1000s;

} // namespace

TEST_CASE("Receive timeout: nothing from the peer for the timeout closes, any byte postpones",
          "[deadlines]")
{
    connection_deadlines d({.receive_timeout = 300ms}, t0);
    deadline_inputs in;
    CHECK(d.next_look(t0, in) == t0 + 300ms);
    CHECK(d.look(t0 + 299ms, in) == deadline_action::none);
    in.bytes_read = 10; // a frame's middle arrived
    CHECK(d.look(t0 + 299ms, in) == deadline_action::none);
    CHECK(d.next_look(t0 + 299ms, in) == t0 + 599ms);
    CHECK(d.look(t0 + 598ms, in) == deadline_action::none);
    CHECK(d.look(t0 + 599ms, in) == deadline_action::receive_timeout);
}

TEST_CASE("Receive timeout: a read starting and a busy handler count as activity",
          "[deadlines]")
{
    connection_deadlines d({.receive_timeout = 300ms}, t0);
    deadline_inputs in;
    d.activity(t0 + 200ms);
    CHECK(d.look(t0 + 300ms, in) == deadline_action::none);
    CHECK(d.next_look(t0 + 300ms, in) == t0 + 500ms);
    in.in_handler = true; // on_receive takes long: not the peer's fault
    CHECK(d.look(t0 + 500ms, in) == deadline_action::none);
    in.in_handler = false;
    CHECK(d.look(t0 + 799ms, in) == deadline_action::none);
    CHECK(d.look(t0 + 800ms, in) == deadline_action::receive_timeout);
}

TEST_CASE("Send timeout: no write done for the timeout while sending closes, progress does not",
          "[deadlines]")
{
    connection_deadlines d({.send_timeout = 400ms}, t0);
    deadline_inputs in;
    // Idle writer: the look is set without it, and wakes when sending starts.
    CHECK(d.next_look(t0, in) == t0 + 400ms);
    CHECK(d.wake_for_sending());
    CHECK_FALSE(d.wake_for_sending()); // once
    in.sending = true;
    in.writes_done = 1;
    CHECK(d.look(t0 + 10ms, in) == deadline_action::none); // started sending: progress
    // While sending it looks every quarter of the send timeout.
    CHECK(d.next_look(t0 + 10ms, in) == t0 + 110ms);
    CHECK_FALSE(d.wake_for_sending());
    in.writes_done = 2;
    CHECK(d.look(t0 + 110ms, in) == deadline_action::none);
    CHECK(d.look(t0 + 210ms, in) == deadline_action::none);
    CHECK(d.look(t0 + 509ms, in) == deadline_action::none);
    CHECK(d.look(t0 + 510ms, in) == deadline_action::send_timeout);
}

TEST_CASE("Send timeout: a writer with nothing to write is never late", "[deadlines]")
{
    connection_deadlines d({.send_timeout = 400ms}, t0);
    deadline_inputs in;
    CHECK(d.look(t0 + 10s, in) == deadline_action::none);
    CHECK(d.look(t0 + 20s, in) == deadline_action::none);
}

TEST_CASE("Keep-alive pings go out every interval", "[deadlines]")
{
    connection_deadlines d({.receive_timeout = 1s, .ping_interval = 50ms}, t0);
    deadline_inputs in;
    CHECK(d.next_look(t0, in) == t0 + 50ms);
    CHECK(d.look(t0 + 49ms, in) == deadline_action::none);
    CHECK(d.look(t0 + 52ms, in) == deadline_action::ping);
    CHECK(d.next_look(t0 + 52ms, in) == t0 + 102ms);
    CHECK(d.look(t0 + 60ms, in) == deadline_action::none);
}

TEST_CASE("Pong timeout: a ping unanswered for the timeout closes, a pong in time does not",
          "[deadlines][pong]")
{
    connection_deadlines d({.receive_timeout = 10s, .ping_interval = 200ms, .pong_timeout = 500ms},
                           t0);
    deadline_inputs in;
    CHECK(d.look(t0 + 200ms, in) == deadline_action::ping);
    CHECK(d.next_look(t0 + 200ms, in) == t0 + 400ms); // the next ping comes first
    d.activity(t0 + 300ms);
    d.pong_received();
    CHECK(d.look(t0 + 400ms, in) == deadline_action::ping); // answered: a new wait
    CHECK(d.look(t0 + 600ms, in) == deadline_action::ping); // still waiting for the one before
    CHECK(d.next_look(t0 + 600ms, in) == t0 + 800ms);
    CHECK(d.look(t0 + 800ms, in) == deadline_action::ping);
    CHECK(d.next_look(t0 + 800ms, in) == t0 + 900ms); // 400 ms + 500 ms, not pushed back
    CHECK(d.look(t0 + 899ms, in) == deadline_action::none);
    in.bytes_read = 100; // data is not a pong
    CHECK(d.look(t0 + 900ms, in) == deadline_action::pong_timeout);
    CHECK(d.look(t0 + 901ms, in) == deadline_action::none); // once
}

TEST_CASE("Pong timeout: off without a timeout, and a pong clears a late look", "[deadlines][pong]")
{
    connection_deadlines off({.ping_interval = 100ms}, t0);
    deadline_inputs in;
    for (auto at = t0 + 100ms; at < t0 + 2s; at += 100ms)
        CHECK(off.look(at, in) == deadline_action::ping);

    connection_deadlines d({.ping_interval = 100ms, .pong_timeout = 150ms}, t0);
    CHECK(d.look(t0 + 100ms, in) == deadline_action::ping);
    d.pong_received(); // answered just before the deadline's look
    CHECK(d.look(t0 + 200ms, in) == deadline_action::ping);
    CHECK(d.next_look(t0 + 200ms, in) == t0 + 300ms);
    d.pong_received();
    CHECK(d.look(t0 + 300ms, in) == deadline_action::ping);
    CHECK(d.look(t0 + 400ms, in) == deadline_action::ping);
    CHECK(d.look(t0 + 450ms, in) == deadline_action::pong_timeout);
}

TEST_CASE("Once a close is requested only its deadline counts", "[deadlines]")
{
    connection_deadlines d({.receive_timeout = 100ms, .ping_interval = 10ms}, t0);
    deadline_inputs in;
    in.close_requested = true;
    in.close_deadline = t0 + 5s;
    CHECK(d.next_look(t0, in) == t0 + 5s);
    CHECK(d.look(t0 + 1s, in) == deadline_action::none); // no timeout, no ping
    CHECK(d.look(t0 + 5s, in) == deadline_action::abort);
}

TEST_CASE("Without timeouts or pings there is nothing to look at", "[deadlines]")
{
    connection_deadlines d({}, t0);
    CHECK(d.next_look(t0, deadline_inputs{}) == clock_type::time_point::max());
}

TEST_CASE("max_lifetime closes a connection however busy it is", "[deadlines][lifetime]")
{
    connection_deadlines d({.receive_timeout = 10s, .max_lifetime = 2s}, t0);
    deadline_inputs in;
    CHECK(d.next_look(t0, in) == t0 + 2s);
    in.bytes_read = 100; // activity does not postpone it
    CHECK(d.look(t0 + 1999ms, in) == deadline_action::none);
    CHECK(d.look(t0 + 2s, in) == deadline_action::lifetime_reached);
}

TEST_CASE("An expiry tells the view once, its notice before, then closes unless moved",
          "[deadlines][lifetime]")
{
    connection_deadlines d({.expiry_notice = 30s}, t0);
    deadline_inputs in;
    CHECK(d.next_look(t0, in) == clock_type::time_point::max());
    d.expire_at(t0 + 100s);
    CHECK(d.next_look(t0, in) == t0 + 70s);
    CHECK(d.look(t0 + 69s, in) == deadline_action::none);
    CHECK(d.look(t0 + 70s, in) == deadline_action::expiring);
    CHECK(d.next_look(t0 + 70s, in) == t0 + 100s); // told once
    CHECK(d.look(t0 + 80s, in) == deadline_action::none);
    // Extended: a new notice before the new expiry, and no close at the old one.
    d.expire_at(t0 + 200s);
    CHECK(d.look(t0 + 100s, in) == deadline_action::none);
    CHECK(d.look(t0 + 170s, in) == deadline_action::expiring);
    CHECK(d.look(t0 + 200s, in) == deadline_action::expired);
}

TEST_CASE("An expiry already past closes at the next look", "[deadlines][lifetime]")
{
    connection_deadlines d({.expiry_notice = 30s}, t0);
    d.expire_at(t0);
    CHECK(d.look(t0, deadline_inputs{}) == deadline_action::expired);
}

TEST_CASE("The wheel's tick is an eighth of the smallest interval, within 1 ms and 250 ms",
          "[deadlines]")
{
    CHECK(choose_tick({300ms, 0ms, 50ms}) == 6ms);
    CHECK(choose_tick({120s, 10s}) == 250ms);
    CHECK(choose_tick({4ms}) == 1ms);
    CHECK(choose_tick({0ms}) == 250ms);
}

namespace {

struct recorded : deadline_wheel::entry {
    std::vector<clock_type::time_point>* fired_at;
    std::function<void(recorded&)> then;
    void on_due(clock_type::time_point now) override
    {
        fired_at->push_back(now);
        if (then)
            then(*this);
    }
};

} // namespace

TEST_CASE("The deadline wheel fires entries at or after their time, in order, and stops when "
          "nothing is scheduled", "[deadlines]")
{
    boost::asio::io_context loop(1);
    deadline_wheel wheel(loop, 2ms);
    std::vector<clock_type::time_point> a_fired, b_fired, c_fired;
    recorded a, b, c;
    a.fired_at = &a_fired;
    b.fired_at = &b_fired;
    c.fired_at = &c_fired;
    auto const start = clock_type::now();
    wheel.schedule(a, start + 30ms);
    wheel.schedule(b, start + 5ms);
    wheel.schedule(c, start + 10ms);
    wheel.cancel(c); // never fires
    CHECK(wheel.size() == 2);
    loop.run(); // returns only once the wheel has stopped ticking
    REQUIRE(a_fired.size() == 1);
    REQUIRE(b_fired.size() == 1);
    CHECK(c_fired.empty());
    CHECK(b_fired[0] >= start + 5ms);
    CHECK(a_fired[0] >= start + 30ms);
    CHECK(b_fired[0] < a_fired[0]);
    CHECK(wheel.size() == 0);
}

TEST_CASE("The deadline wheel keeps an entry due laps ahead until its time, and lets a handler "
          "schedule again", "[deadlines]")
{
    boost::asio::io_context loop(1);
    deadline_wheel wheel(loop, 1ms); // 512 slots: one lap is 512 ms
    std::vector<clock_type::time_point> far_fired, repeat_fired;
    recorded far, repeat;
    far.fired_at = &far_fired;
    repeat.fired_at = &repeat_fired;
    repeat.then = [&](recorded& self) {
        if (repeat_fired.size() < 3)
            wheel.schedule(self, clock_type::time_point{}); // a time past: the next tick
    };
    auto const start = clock_type::now();
    wheel.schedule(far, start + 1100ms); // two laps and more
    wheel.schedule(repeat, start + 3ms);
    loop.run();
    REQUIRE(far_fired.size() == 1);
    CHECK(far_fired[0] >= start + 1100ms);
    REQUIRE(repeat_fired.size() == 3);
    CHECK(repeat_fired[0] >= start + 3ms);
    CHECK(repeat_fired[0] <= repeat_fired[1]); // equal when one turn covers several ticks
    CHECK(repeat_fired[1] <= repeat_fired[2]);
}

TEST_CASE("The deadline wheel moves an entry scheduled again, and a handler may cancel another",
          "[deadlines]")
{
    boost::asio::io_context loop(1);
    deadline_wheel wheel(loop, 1ms);
    std::vector<clock_type::time_point> a_fired, b_fired, c_fired;
    recorded a, b, c;
    a.fired_at = &a_fired;
    b.fired_at = &b_fired;
    c.fired_at = &c_fired;
    a.then = [&](recorded&) { wheel.cancel(b); };
    auto const start = clock_type::now();
    wheel.schedule(a, start + 50ms);
    wheel.schedule(c, start + 40ms);
    wheel.schedule(a, start + 2ms); // moved earlier
    wheel.schedule(b, start + 2ms); // same slot, behind a: a's handler cancels it
    CHECK(wheel.size() == 3);
    loop.run();
    REQUIRE(a_fired.size() == 1);
    REQUIRE(c_fired.size() == 1);
    CHECK(a_fired[0] <= c_fired[0]); // a fired at its new time, before c
    CHECK(a_fired[0] >= start + 2ms);
    CHECK(b_fired.empty());
    CHECK_FALSE(b.scheduled());
    CHECK(wheel.size() == 0);
}
