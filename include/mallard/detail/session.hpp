// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_SESSION_HPP
#define MALLARD_DETAIL_SESSION_HPP

// One WebSocket connection after routing: the opening handshake, then, on the
// connection's thread until it ends:
//
//   lifecycle  a coroutine: on_open, then the read loop calling on_receive
//              one message at a time, then: stop spawned tasks, on_close.
//   writer     completion handlers, no coroutine: the only code that writes
//              to the stream (Beast allows one write in flight): data
//              messages, pings, and the close frame. It takes each step
//              (detail/writer_step.hpp) from the turn that made it possible,
//              so a reply is handed to Beast from on_receive's own turn.
//   deadlines  no coroutine, no timer of its own: the worker's deadline
//              wheel (detail/deadline_wheel.hpp) calls on_due when the
//              next look is due; connection_deadlines decides (the receive
//              and send timeouts, keep-alive pings, the close deadline).
//
// The lifecycle and each write in flight hold a shared_ptr to the session;
// the deadline wheel holds its address only while the lifecycle runs;
// the session owns the view, so the view outlives every callback and spawned
// task.

#include <mallard/close_reason.hpp>
#include <mallard/detail/coalescing_stream.hpp>
#include <mallard/detail/connection_deadlines.hpp>
#include <mallard/detail/deadline_wheel.hpp>
#include <mallard/detail/deflate/offer.hpp>
#include <mallard/detail/http/responses.hpp>
#include <mallard/detail/pooled_buffer.hpp>
#include <mallard/detail/receive_limiter.hpp>
#include <mallard/detail/deflate/inflating_stream.hpp>
#include <mallard/detail/session_base.hpp>
#include <mallard/detail/utf8.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/detail/writer_step.hpp>
#include <mallard/version.hpp>
#include <mallard/websocket_view.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace mallard::detail {

template <class Stream>
class session final : public session_base, private read_pacer, private deadline_wheel::entry {
public:
    session(Stream stream, std::unique_ptr<websocket_view> view, connection_limits const& limits,
            logger const& log, std::uint64_t id, worker& owner, session_services services,
            std::chrono::milliseconds handshake_timeout, bool asks_view_on_upgrade)
        : session_base(owner.loop().get_executor(), limits, log, id, services)
        , ws_(std::move(stream))
        , view_(std::move(view))
        , worker_(owner)
        , buffer_(owner.buffers())
        , close_timeout_(handshake_timeout)
        , asks_view_on_upgrade_(asks_view_on_upgrade)
        , deadlines_({limits.receive_timeout, limits.send_timeout, limits.ping_interval,
                      limits.max_lifetime, limits.expiry_notice, limits.pong_timeout},
                     clock::now())
    {
        view_access::attach(*view_, this);
        // Our own receive timeout sends a close frame (1001) where Beast's idle
        // timeout would only drop the socket; Beast still bounds the opening
        // and closing handshakes.
        ws_.set_option(websocket::stream_base::timeout{
            handshake_timeout, websocket::stream_base::none(), false});
        ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
            res.set(http::field::server, server_header);
        }));
        ws_.read_message_max(limits.max_message_size); // inflated bytes, when compressed
        if (limits.permessage_deflate) {
            // Beast negotiates the one offer choose_deflate_offer() lets
            // through (see detail/deflate/offer.hpp) and compresses; ws_'s next
            // layer inflates (see detail/deflate/frame_inflater.hpp for why not Beast).
            websocket::permessage_deflate deflate;
            deflate.server_enable = true;
            deflate.msg_size_threshold = limits.compression_threshold;
            ws_.set_option(deflate);
        }
        // Whole messages go out as one frame from the caller's buffer: no
        // copy into a 4 KiB fragment buffer, and no Nagle-delayed tail.
        ws_.auto_fragment(false);
        ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
            deadlines_.activity(clock::now());
            if (kind == websocket::frame_type::pong)
                deadlines_.pong_received();
        });
        if (limits.receive_rate.limits()) // only limited routes pay for it
            rate_ = std::make_unique<rate_state>(limits.receive_rate, executor_);
        ws_.next_layer().pace_reads(this);
        if (limits.socket_send_buffer != 0) {
            error_code ignored; // a refusal leaves the system's size, as with no option
            beast::get_lowest_layer(ws_).socket().set_option(
                net::socket_base::send_buffer_size(static_cast<int>(limits.socket_send_buffer)),
                ignored);
        }
    }

    ~session() { worker_.unschedule(*this); }

    /// Asks the view, completes the opening handshake and runs the
    /// connection to its end. `already_read` is what the client sent right
    /// behind the upgrade request (its first frames), read with it.
    task<void> run(http::request<http::empty_body> upgrade, mallard::request req,
                   std::string subprotocol, std::string already_read)
    {
        auto self = shared_from_this();
        if (!already_read.empty())
            ws_.next_layer().next_layer().unread(std::move(already_read));
        request_ = std::move(req);
        subprotocol_ = std::move(subprotocol);
        handshake_registration registration{worker_, &beast::get_lowest_layer(ws_)};

        // A view that keeps the default hook accepts: no race to set up.
        auto decision = upgrade_decision::accept();
        if (asks_view_on_upgrade_)
            decision = co_await decide_upgrade();
        if (decision.accepted() && worker_.draining())
            decision = upgrade_decision::reject(http::status::service_unavailable,
                                                "Shutting down\n")
                           .header(http::field::retry_after,
                                   std::to_string(worker_.stop_plan().retry_after.count()));
        // From here the connection ends by itself: refused, or upgraded and
        // then closed with 1001 if the server is stopping. Cutting it during
        // the 101 would leave the client with no close frame.
        registration.release();
        if (!decision.accepted()) {
            log_.write(log_level::info, log_category::access,
                       std::to_string(static_cast<unsigned>(decision.status())) +
                           " from on_upgrade for " + request_.path());
            worker_.http_stats().refused(static_cast<unsigned>(decision.status()));
            co_await refuse_upgrade(decision, upgrade.version());
            co_return;
        }
        bool offered_deflate = false;
        bool repeat_window_15 = false;
        if (limits_.permessage_deflate) {
            auto const chosen = choose_deflate_offer(upgrade);
            upgrade.erase(http::field::sec_websocket_extensions);
            if (chosen) {
                upgrade.set(http::field::sec_websocket_extensions, chosen->offer);
                offered_deflate = true;
                repeat_window_15 = chosen->repeat_server_window_15;
            }
        }
        if (!subprotocol_.empty() || decision.headers().begin() != decision.headers().end() ||
            offered_deflate)
            ws_.set_option(websocket::stream_base::decorator(
                [this, subprotocol = subprotocol_, headers = decision.headers(),
                 repeat_window_15](websocket::response_type& res) {
                    res.set(http::field::server, server_header);
                    if (!subprotocol.empty())
                        res.set(http::field::sec_websocket_protocol, subprotocol);
                    for (auto const& field : headers)
                        res.insert(field.name_string(), field.value());
                    if (repeat_window_15)
                        repeat_server_window_15(res);
                    // Beast does not say whether it agreed; its answer does.
                    deflate_agreed_ = accepts_deflate(res);
                }));

        auto [ec] = co_await ws_.async_accept(upgrade, use_tuple);
        if (ec) { // Beast has answered 400 or 426 already
            log_.write(log_level::info, log_category::access,
                       "refused upgrade on " + request_.path() + ": " + ec.message());
            co_return;
        }
        if (deflate_agreed_)
            ws_.next_layer().next_layer().inflate_messages(); // before Beast reads a frame
        upgrade = http::request<http::empty_body>{}; // this frame lives as long as the connection: free the headers
        worker_.opened(this);
        services_.stats.opened();
        if (worker_.draining()) // accepted just before the drain began
            request_close(worker_.stop_plan().code, worker::stop_reason(worker_.stop_plan().code),
                          close_cause::shutdown);
        if (log_.enabled(log_level::info)) // the line is built only to be written
            log_.write(log_level::info, log_category::access,
                       "connection " + std::to_string(id_) + " opened on " + request_.path());

        // The writer and the timers run beside the lifecycle: awaitable
        // operator&& would keep frames and a cancellation slot alive as long
        // as the connection, and re-arm the slot on every write.
        ++running_beside_;
        writer_started_ = true;
        pump(); // on_upgrade may have queued messages already
        look_later(clock::now());
        co_await lifecycle();
        while (running_beside_ != 0)
            co_await state_changed_.wait();

        worker_.finished(this);
    }

    void abort() override
    {
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        ws_.next_layer().resume_reading(); // a read paused by the budget fails now
    }

    std::size_t held_bytes() const noexcept override
    {
        return buffer_.size() + queue_.bytes() + ws_.next_layer().buffered_bytes();
    }

    // read_pacer: between two of the memory budget's looks, a connection
    // holding much asks before each read whether its thread is over.
    bool pause_before_read() override
    {
        return worker_.memory_budgeted() && !close_request_ && !ended_ &&
               worker_.pause_before_read(this, held_bytes());
    }
    void read_done(std::size_t bytes) noexcept override { worker_.count_read(bytes); }

    // The reader goes to the peer: no more replies can join the gathered
    // bytes, and the writer's step says they leave now, before the read's
    // system call (a corked Beast write whose completion is still on its way
    // has its bytes there already).
    void waits_for_peer() override { pump(); }

    void expire_at(std::chrono::system_clock::time_point when) override
    {
        // Wall-clock expiry on the steady clock, bounded so that far-off
        // times (time_point::max()) stay representable.
        using std::chrono::system_clock;
        auto const now = clock::now();
        auto const wall_now = system_clock::now();
        auto const century = std::chrono::duration_cast<system_clock::duration>(
            std::chrono::hours{24 * 365 * 100});
        auto const left = when > wall_now ? std::min<system_clock::duration>(when - wall_now, century)
                                          : system_clock::duration::zero();
        deadlines_.expire_at(now + std::chrono::duration_cast<clock::duration>(left));
        if (writer_started_) // open: look again now; before that, the first look sees it
            look_later(now);
    }

    void pause_reading(bool paused) override
    {
        if (paused && !close_request_ && !ended_)
            ws_.next_layer().pause_reading();
        else
            ws_.next_layer().resume_reading();
    }

private:
    using clock = std::chrono::steady_clock;

    // The view's on_upgrade, bounded by the handshake timeout: a hook waiting
    // on a slow token service must not hold a socket forever.
    task<upgrade_decision> decide_upgrade()
    {
        using namespace net::experimental::awaitable_operators;
        net::steady_timer deadline(executor_, close_timeout_);
        auto outcome = co_await (ask_view() || deadline.async_wait(use_tuple));
        if (outcome.index() == 0)
            co_return std::get<0>(std::move(outcome));
        log_.write(log_level::warning, log_category::diagnostic,
                   "on_upgrade for " + request_.path() +
                       " did not finish within the handshake timeout");
        co_return upgrade_decision::reject(http::status::service_unavailable,
                                           "Upgrade decision timed out\n");
    }

    task<upgrade_decision> ask_view()
    {
        try {
            co_return co_await view_->on_upgrade();
        } catch (...) {
            log_exception(handler_callback::on_upgrade, std::current_exception());
        }
        co_return upgrade_decision::reject(http::status::internal_server_error,
                                           "Internal server error\n");
    }

    task<void> refuse_upgrade(upgrade_decision const& decision, unsigned version)
    {
        http::response<http::string_body> res{decision.status(), version};
        for (auto const& field : decision.headers())
            res.insert(field.name_string(), field.value());
        if (res.find(http::field::content_type) == res.end())
            res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = decision.body();
        beast::get_lowest_layer(ws_).expires_after(close_timeout_);
        co_await respond(ws_.next_layer(), res, false);
    }

    task<void> lifecycle()
    {
        try {
            co_await view_->on_open();
        } catch (...) {
            handler_failed(handler_callback::on_open, std::current_exception());
        }
        close_reason why = co_await read_loop();
        mark_ended();
        worker_.closed();
        services_.stats.closed(static_cast<std::uint16_t>(why.code), why.cause);
        abort(); // Beast has torn the connection down already unless it failed
        worker_.unschedule(*this);
        co_await stop_tasks();
        if (log_.enabled(log_level::info))
            log_.write(log_level::info, log_category::access,
                       "connection " + std::to_string(id_) + " closed: " +
                           std::to_string(static_cast<unsigned>(why.code)) + " (" +
                           std::string(to_string(why.cause)) + ")");
        try {
            co_await view_->on_close(std::move(why));
        } catch (...) {
            log_exception(handler_callback::on_close, std::current_exception());
        }
    }

    task<close_reason> read_loop()
    {
        for (;;) {
            if (close_request_)
                co_return co_await finish_close();
            deadlines_.activity(clock::now());
            reading_ = true;
            auto [ec, size] = co_await ws_.async_read(buffer_, use_tuple);
            reading_ = false;
            if (ws_.next_layer().held_bytes() != 0)
                pump(); // bytes gathered earlier: leave at this turn's end if no reply joins them
            if (ec && is_inflate_error(ec) && !close_request_ && !writing_)
                co_await close_after_inflate_error();
            if (ec)
                co_return classify(ec);
            services_.stats.received(size);
            // After we ask to close, data still in flight from the peer is
            // read (to reach its close frame) but not delivered.
            auto const op = ws_.got_text() ? opcode::text : opcode::binary;
            std::string_view data(static_cast<char const*>(buffer_.data().data()), size);
            if (op == opcode::text && !utf8_tail_complete(data))
                request_close(close_code::invalid_payload, "invalid UTF-8",
                              close_cause::invalid_payload); // RFC 6455 section 8.1
            receive_verdict verdict;
            if (rate_ && !close_request_)
                verdict = apply_rate(size);
            if (!close_request_) {
                try {
                    co_await view_->on_receive(data, op);
                } catch (...) {
                    handler_failed(handler_callback::on_receive, std::current_exception());
                }
            }
            buffer_.release(); // an idle connection holds no buffer of its own
            if (queue_.departed() < queue_.queued())
                co_await hand_over_replies(queue_.queued());
            if (verdict.what == receive_verdict::kind::pause && !close_request_)
                co_await pause_for_rate(verdict.wait);
        }
    }

    // --- the receive rate -----------------------------------------------------

    // A limited route's connections keep their buckets and the timer their
    // reader waits on while over the rate.
    struct rate_state {
        rate_state(rate_limit const& rate, executor_type const& ex)
            : limiter(rate, clock::now()), timer(ex)
        {
        }
        receive_limiter limiter;
        net::steady_timer timer;
        bool waiting = false;
    };

    receive_verdict apply_rate(std::size_t size)
    {
        auto const verdict = rate_->limiter.received(size, clock::now());
        if (verdict.what == receive_verdict::kind::go_on)
            return verdict;
        services_.stats.rate_limited();
        if (verdict.what == receive_verdict::kind::close)
            request_close(close_code::policy_violation, "rate limit", close_cause::rate_limit);
        return verdict;
    }

    // Reads nothing for `wait`: the client's bytes stay in its socket and TCP
    // holds it back. Replies already queued leave meanwhile (the reader
    // counts as waiting for the peer), and a close request ends the wait.
    task<void> pause_for_rate(clock::duration wait)
    {
        rate_->waiting = true;
        pump();
        rate_->timer.expires_after(wait);
        co_await rate_->timer.async_wait(use_tuple);
        rate_->waiting = false;
    }

    // Waits until the writer has taken the first `queued` messages to Beast.
    // The next read may fail on a frame the peer sent right behind this
    // message (a reserved opcode, say): Beast then writes its close frame at
    // once, and a reply still waiting in our queue would be lost behind it.
    // Once the writer's write is in flight, Beast's close waits for it.
    task<void> hand_over_replies(std::uint64_t queued)
    {
        while (queue_.departed() < queued && !writer_finished_) {
            reader_waiting_ = true;
            co_await state_changed_.wait();
            reader_waiting_ = false;
        }
    }

    void wake_reader()
    {
        if (reader_waiting_)
            state_changed_.notify();
    }

    // Once a close is requested the reader starts no new read: the writer's
    // async_close reads up to the peer's close frame itself. A read of ours
    // started beside it could find a bad frame already buffered; Beast 1.81
    // then deadlocks (the close holds the write lock waiting for the read
    // lock, the read holds the read lock waiting for the write lock) until
    // the close deadline cuts the socket.
    task<close_reason> finish_close()
    {
        while (!writer_finished_)
            co_await state_changed_.wait();
        co_return classify(writer_error_);
    }

    // --- the writer ---------------------------------------------------------
    //
    // pump() asks next_writer_step what to do and starts it; every completion
    // and every event that could change the answer asks again.

    void message_queued() override { pump(); }

    void close_requested() override
    {
        if (rate_)
            rate_->timer.cancel(); // the reader reads on, to the peer's close frame
        // A client that left a ping unanswered gets as long again for the
        // close frame, however long the handshake timeout is.
        auto const grace = close_request_ && close_request_->cause == close_cause::pong_timeout
                               ? std::min(close_timeout_, limits_.pong_timeout)
                               : close_timeout_;
        close_deadline_ = clock::now() + grace;
        look_soon(); // the next look is the close deadline
        wake_reader();   // the request may have cleared what it waits for
        ws_.next_layer().resume_reading(); // the peer's close frame is owed
        // Not from inside whatever asked for the close (a read, another
        // connection's publish): the close handshake starts from a turn of its own.
        post_pump();
    }

    void reader_ended() override { post_pump(); }

    void post_pump()
    {
        net::post(executor_, [self = shared_from_this(), this] { pump(); });
    }

    reader_position where_reader() const noexcept
    {
        if (!reading_)
            return rate_ && rate_->waiting ? reader_position::at_peer : reader_position::in_handler;
        auto const& out = ws_.next_layer();
        return out.waiting_for_peer() || out.reading_paused() ? reader_position::at_peer
                                                               : reader_position::in_beast;
    }

    writer_view what_writer_sees(bool turn_ended) const noexcept
    {
        writer_view v;
        v.done = ended_ || writer_failed_ || close_done_;
        v.writing = writing_;
        v.flushing = flushing_;
        v.policy_discards = limits_.slow_consumer != slow_consumer_policy::close;
        v.message_waiting = queue_.has_waiting();
        if (v.message_waiting) {
            v.next_message_bytes = queue_.next_waiting().bytes().size();
            v.more_waiting = queue_.waiting() > 1;
            v.next_frames_at_once = frames_at_once(queue_.next_waiting());
        }
        v.held_bytes = ws_.next_layer().held_bytes();
        v.reader = where_reader();
        v.turn_ended = turn_ended;
        v.close_requested = close_request_.has_value();
        return v;
    }

    void pump(bool turn_ended = false)
    {
        if (!writer_started_ || writer_finished_)
            return;
        for (;;) {
            switch (next_writer_step(what_writer_sees(turn_ended))) {
            case writer_step::write:
                start_write(false);
                break;
            case writer_step::write_corked:
                start_write(true);
                break;
            case writer_step::flush:
                start_flush();
                break;
            case writer_step::close:
                start_close();
                return;
            case writer_step::wait:
                return;
            case writer_step::hold:
                // Replies may still join: look again once this turn is over
                // (the reader reaching the peer flushes sooner).
                if (!turn_ended && !turn_check_posted_) {
                    turn_check_posted_ = true;
                    net::post(executor_, [self = shared_from_this(), this] {
                        turn_check_posted_ = false;
                        pump(true);
                    });
                }
                return;
            case writer_step::idle:
                sending_ = false;
                return;
            case writer_step::finish:
                writer_finished_ = true;
                --running_beside_;
                state_changed_.notify(); // finish_close and run wait for this
                wake_reader();
                return;
            }
        }
    }

    void start_write(bool corked)
    {
        if (!sending_)
            started_sending();
        auto const& message = queue_.begin_write();
        wake_reader();
        if (corked)
            ws_.next_layer().cork();
        if (corked && frames_at_once(message)) {
            // Framed by Beast straight into the corked layer's buffer: no
            // I/O, so nothing to wait for, and the next step follows now.
            ws_.text(message.type == outbound_message::kind::text);
            error_code ec;
            ws_.write(net::buffer(message.bytes().data(), message.bytes().size()), ec);
            finish_write(ec, queue_.in_flight_bytes(), true);
            return;
        }
        writing_ = true;
        if (message.type == outbound_message::kind::ping) {
            ws_.async_ping(websocket::ping_data(message.bytes().data(), message.bytes().size()),
                           [self = shared_from_this(), this](error_code ec) {
                               wrote(ec, 0, false);
                           });
            return;
        }
        ws_.text(message.type == outbound_message::kind::text);
        ws_.async_write(net::buffer(message.bytes().data(), message.bytes().size()),
                        [self = shared_from_this(), this](error_code ec, std::size_t) {
                            wrote(ec, queue_.in_flight_bytes(), true);
                        });
    }

    // Whether Beast's synchronous write of `message` would only be held by
    // the layer once it is corked (coalescing_stream::could_hold), never
    // written or waited for. Not with permessage-deflate: its compressed
    // size is not known before, and a write refused half-way would cut a frame.
    bool frames_at_once(outbound_message const& message) const noexcept
    {
        constexpr std::size_t largest_frame_header = 10; // a server's frames are unmasked
        return message.type != outbound_message::kind::ping && !deflate_agreed_ &&
               ws_.next_layer().could_hold(message.bytes().size() + largest_frame_header);
    }

    void wrote(error_code ec, std::size_t bytes, bool data)
    {
        finish_write(ec, bytes, data);
        pump();
    }

    void finish_write(error_code ec, std::size_t bytes, bool data)
    {
        writing_ = false;
        ++writes_done_;
        if (!ec && data)
            services_.stats.sent(bytes);
        wrote_one();
        failed(ec);
    }

    void start_flush()
    {
        // Over plain TCP the socket usually takes it all at once: then there
        // is nothing to wait for, and the next step follows now.
        if (ws_.next_layer().try_flush()) {
            ++writes_done_;
            return;
        }
        flushing_ = true;
        ws_.next_layer().async_flush([self = shared_from_this(), this](error_code ec) {
            flushing_ = false;
            ++writes_done_;
            failed(ec);
            pump();
        });
    }

    void start_close()
    {
        auto const& request = *close_request_;
        writing_ = true;
        ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(request.code),
                                                request.reason),
                        [self = shared_from_this(), this](error_code ec) {
                            writing_ = false;
                            writer_error_ = ec;
                            close_done_ = true; // no more writes after the close frame (RFC 6455 section 5.5.1)
                            pump();
                        });
    }

    // A failed write ends the writer; the read loop sees the same failure,
    // or a close waiting for the writer reports it.
    void failed(error_code ec)
    {
        if (!ec || writer_failed_)
            return;
        writer_failed_ = true;
        writer_error_ = ec;
    }

    // The writer had nothing to write and now has: that counts as progress
    // for the send timeout, and a timer asleep for longer than a quarter of
    // it is woken to look more often (at most once per quarter, as it goes
    // back to sleep only after a look finds the writer idle).
    void started_sending()
    {
        sending_ = true;
        ++writes_done_;
        if (deadlines_.wake_for_sending())
            look_soon();
    }

    // --- the deadlines -------------------------------------------------------
    //
    // The worker's deadline wheel calls on_due when the time set by
    // look_later has come; connection_deadlines decides.

    deadline_inputs what_deadlines_see() const noexcept
    {
        deadline_inputs in;
        in.close_requested = close_request_.has_value();
        in.close_deadline = close_deadline_;
        in.in_handler = !reading_;
        in.bytes_read = ws_.next_layer().bytes_read();
        in.sending = sending_;
        in.writes_done = writes_done_;
        return in;
    }

    void look_later(clock::time_point now)
    {
        if (ended_)
            return;
        auto const due = deadlines_.next_look(now, what_deadlines_see());
        if (due == clock::time_point::max())
            worker_.unschedule(*this);
        else
            worker_.schedule(*this, due);
    }

    // At the wheel's next tick, from a turn of its own.
    void look_soon()
    {
        if (!ended_)
            worker_.schedule(*this, clock::time_point{});
    }

    void on_due(clock::time_point now) override
    {
        if (ended_)
            return;
        switch (deadlines_.look(now, what_deadlines_see())) {
        case deadline_action::none:
            break;
        case deadline_action::abort:
            abort();
            break;
        case deadline_action::send_timeout:
            request_close(close_code::policy_violation, "send timeout", close_cause::send_timeout);
            break;
        case deadline_action::receive_timeout:
            request_close(close_code::going_away, "receive timeout", close_cause::receive_timeout);
            break;
        case deadline_action::ping:
            (void)send_now({outbound_message::kind::ping, {}, {}});
            break;
        case deadline_action::pong_timeout:
            request_close(close_code::going_away, "pong timeout", close_cause::pong_timeout);
            break;
        case deadline_action::expiring:
            spawn(view_->on_expiring());
            break;
        case deadline_action::expired:
            request_close(close_code::expired, "expired", close_cause::expired);
            break;
        case deadline_action::lifetime_reached:
            request_close(close_code::lifetime_reached, "max lifetime", close_cause::max_lifetime);
            break;
        }
        look_later(now);
    }

    static bool is_inflate_error(error_code const& ec) { return ec == inflate_error::bad_data; }

    // When a compressed message does not inflate, our inflating layer fails
    // Beast's read, and Beast 1.81 fails the stream without a close frame.
    // RFC 6455 section 7.1.7 asks for one, so we write it (1007) to the
    // transport ourselves: Beast writes nothing more on a failed stream,
    // and no write of ours is in flight. Then, as in a closing handshake,
    // stop sending and wait for the peer's end, so that a reset does not
    // destroy the close frame before the peer reads it.
    task<void> close_after_inflate_error()
    {
        auto const frame = close_frame(close_code::invalid_payload);
        auto& tcp = beast::get_lowest_layer(ws_);
        tcp.expires_after(close_timeout_);
        auto [ec, written] = co_await net::async_write(ws_.next_layer(), net::buffer(frame),
                                                       use_tuple);
        (void)written;
        if (!ec) // the writer may have corked the stream: the frame must be sent now
            std::tie(ec) = co_await ws_.next_layer().async_flush(use_tuple);
        if (ec)
            co_return;
        error_code ignored;
        tcp.socket().shutdown(net::socket_base::shutdown_send, ignored);
        std::array<char, 512> discarded;
        for (;;) {
            auto [read_error, n] = co_await tcp.async_read_some(net::buffer(discarded), use_tuple);
            (void)n;
            if (read_error)
                break;
        }
    }

    // An unmasked close frame from a server with `code` and no reason.
    static std::array<unsigned char, 4> close_frame(close_code code)
    {
        auto const value = static_cast<std::uint16_t>(code);
        return {0x88, 0x02, static_cast<unsigned char>(value >> 8),
                static_cast<unsigned char>(value & 0xff)};
    }

    close_reason classify(error_code const& ec) const
    {
        close_reason why;
        why.error = ec;
        if (close_request_) {
            why.code = close_request_->code;
            why.reason = close_request_->reason;
            why.cause = close_request_->cause;
        } else if (ec == websocket::error::closed) {
            auto const& peer = ws_.reason();
            why.code = peer.code == websocket::close_code::none
                           ? close_code::no_status
                           : static_cast<close_code>(static_cast<std::uint16_t>(peer.code));
            why.reason = std::string(peer.reason.data(), peer.reason.size());
            why.cause = close_cause::peer_closed;
            why.error = {};
        } else if (ec == websocket::error::message_too_big ||
                   ec == websocket::error::buffer_overflow) {
            why.code = close_code::message_too_big;
            why.cause = close_cause::message_too_big;
        } else if (ec == websocket::error::bad_frame_payload || is_inflate_error(ec)) {
            why.code = close_code::invalid_payload;
            why.cause = close_cause::invalid_payload;
        } else if (ec == websocket::condition::protocol_violation) {
            why.code = close_code::protocol_error;
            why.cause = close_cause::protocol_error;
        } else {
            why.code = close_code::abnormal;
            why.cause = close_cause::network_error;
        }
        return why;
    }

    // Beast above two layers of ours: writes gathered (coalescing_stream),
    // client messages inflated (inflating_stream), then TCP or TLS.
    websocket::stream<coalescing_stream<inflating_stream<Stream>>> ws_;
    std::unique_ptr<websocket_view> view_;
    worker& worker_;
    pooled_buffer buffer_; // the message being read or handled
    bool reader_waiting_ = false;
    bool writer_started_ = false;  // the 101 is sent: the writer may write
    bool writer_finished_ = false;
    bool writer_failed_ = false;   // a write or flush failed
    bool close_done_ = false;      // the close handshake is over
    bool flushing_ = false;        // a flush of the gathered bytes is in flight
    bool turn_check_posted_ = false;
    error_code writer_error_; // what ended the writer: its close, or a failed write
    unsigned running_beside_ = 0;
    std::chrono::milliseconds close_timeout_;
    bool asks_view_on_upgrade_; // see route::asks_on_upgrade
    clock::time_point close_deadline_;
    bool reading_ = false;
    bool writing_ = false; // a Beast write, ping or close is in flight
    bool sending_ = false; // the writer has something to write, or is writing it
    std::uint64_t writes_done_ = 0; // writes and flushes completed, for the send timeout
    bool deflate_agreed_ = false; // the 101 accepted permessage-deflate
    connection_deadlines deadlines_;
    std::unique_ptr<rate_state> rate_; // with a receive_rate only
};

} // namespace mallard::detail

#endif
