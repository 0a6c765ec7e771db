// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_COALESCING_STREAM_HPP
#define MALLARD_DETAIL_COALESCING_STREAM_HPP

// A stream layer beneath Beast's websocket::stream that gathers several
// writes into one.
//
// Beast writes each message with its own write to the socket, and with
// TCP_NODELAY each becomes a TCP packet: on loopback most of the CPU time of
// a small echo is the kernel sending that packet. When replies come in a
// burst (a client with several requests in flight, a broadcast), the
// connection's writer corks this layer: Beast's writes are then copied into
// a buffer and complete at once, and one flush sends them together.
//
// Beast also writes by itself (a pong, the close frame answering the
// peer's). While the layer is corked or flushing, those writes queue behind
// the writer's bytes, so bytes reach the wire in the order they were
// written. The teardown at the end of a closing handshake flushes first, so
// that nothing queued is lost to the half-close.
//
// A write that is sure to be held (can_hold) may also be made through the
// synchronous write_some: Beast's synchronous write of a message then frames
// it straight into the buffer, without a composed operation and a posted
// completion. That write never touches the socket: it fails (would_block)
// rather than write or wait.
//
// What it holds is bounded: while a flush is in flight (the peer is slow to
// take what we sent), a write that would hold more than
// max_held_while_flushing waits for that flush before it completes. Beast
// then reads no more from that peer, and TCP pushes back on it: a client
// that floods pings and never reads the pongs cannot make us hold them.

#include <mallard/detail/config.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace mallard::detail {

/// Asked by a coalescing_stream before each read whether to pause instead
/// (the memory budget), told when a read goes to the peer (so that what is
/// gathered for it can leave first), and told what each read brought.
class read_pacer {
public:
    virtual bool pause_before_read() = 0;
    virtual void waits_for_peer() = 0;
    virtual void read_done(std::size_t bytes) noexcept = 0;

protected:
    ~read_pacer() = default;
};

/// A write's completion handler that counts the write done first; every
/// association of the handler it wraps (executor, allocator, cancellation)
/// is kept (see the associator below).
template <class Handler>
struct counted_write_handler {
    Handler handler;
    unsigned* in_flight;

    void operator()(error_code ec, std::size_t n)
    {
        --*in_flight;
        std::move(handler)(ec, n);
    }
};

template <class NextLayer>
class coalescing_stream {
public:
    using next_layer_type = NextLayer;
    using executor_type = typename NextLayer::executor_type;

    template <class... Args>
    explicit coalescing_stream(Args&&... args) : next_(std::forward<Args>(args)...)
    {
    }

    executor_type get_executor() noexcept { return next_.get_executor(); }
    NextLayer& next_layer() noexcept { return next_; }
    NextLayer const& next_layer() const noexcept { return next_; }

    /// True while the reader waits for the peer: Beast has used up what it
    /// read before. Until then, replies to what it has are still to come.
    bool waiting_for_peer() const noexcept { return reads_in_flight_ != 0; }

    /// Bytes read from the peer so far: any of them, a frame's middle too,
    /// is a sign of life for the receive timeout.
    std::uint64_t bytes_read() const noexcept { return bytes_read_; }

    /// Reads wait from now on, until `resume_reading`: Beast then reads
    /// nothing more from the peer, and TCP pushes back on it.
    void pause_reading() noexcept { reads_paused_ = true; }
    void resume_reading()
    {
        reads_paused_ = false;
        if (resumed_)
            resumed_->cancel();
    }
    bool reading_paused() const noexcept { return reads_paused_; }
    /// `pacer` is asked before every read from now on (null: never).
    void pace_reads(read_pacer* pacer) noexcept { pacer_ = pacer; }

    /// Bytes held for writing: gathered, and being sent by a flush.
    std::size_t buffered_bytes() const noexcept { return held_.size() + in_flight_.size(); }

    /// Writes from now on are held until `async_flush`.
    void cork() noexcept { corked_ = true; }
    std::size_t held_bytes() const noexcept { return held_.size(); }

    /// Uncorks and writes everything held, including what is written while
    /// this runs. Completes with the first write error, which every later
    /// flush reports too.
    template <class Token>
    auto async_flush(Token&& token)
    {
        return net::async_compose<Token, void(error_code)>(flush_op{*this}, token, next_);
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(MutableBuffers const& buffers, Token&& token)
    {
        return net::async_compose<Token, void(error_code, std::size_t)>(
            read_op<MutableBuffers>{*this, buffers}, token, next_);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(ConstBuffers const& buffers, Token&& token)
    {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, ConstBuffers const& buffers) {
                if (!corked_ && !flushing_) {
                    // Counted: a frame part-way through its write must not
                    // have bytes held behind its beginning (see can_hold).
                    ++writes_in_flight_;
                    next_.async_write_some(buffers, counted_write_handler<decltype(handler)>{
                                                        std::move(handler), &writes_in_flight_});
                    return;
                }
                auto const size = net::buffer_size(buffers);
                if (must_wait(size)) {
                    net::async_compose<decltype(handler), void(error_code, std::size_t)>(
                        write_after_flush_op<ConstBuffers>{*this, buffers}, handler, next_);
                    return;
                }
                auto const taken = hold(buffers);
                net::post(get_executor(), net::append(std::move(handler), failed_, taken));
            },
            token, buffers);
    }

    /// Sends what is held now, without waiting, when the next layer can
    /// (plain TCP) and the socket takes all of it; true then, and the layer
    /// is uncorked. Otherwise false, and async_flush sends the rest (a
    /// failure is kept for it to report).
    bool try_flush() noexcept
    {
        if constexpr (requires(error_code& ec) { next_.try_write_some(net::buffer(held_), ec); }) {
            if (flushing_ || failed_ || writes_in_flight_ != 0 || held_.empty())
                return false;
            error_code ec;
            auto const sent = next_.try_write_some(net::buffer(held_), ec);
            if (ec == net::error::would_block || ec == net::error::try_again)
                return false;
            if (ec) {
                failed_ = ec;
                return false;
            }
            if (sent < held_.size()) {
                held_.erase(0, sent); // the kernel's buffer is full: the rest waits for it
                return false;
            }
            held_.clear();
            release_if_large(held_);
            corked_ = false;
            return true;
        } else {
            return false;
        }
    }

    /// Whether `size` bytes written now, through the synchronous write_some,
    /// are held without any I/O: the layer is corked, nothing written
    /// uncorked is still on its way (its frame would be cut in two), and
    /// the bytes fit beside a flush in flight.
    bool can_hold(std::size_t size) const noexcept { return corked_ && could_hold(size); }

    /// Whether can_hold(size) would be true once the layer is corked.
    bool could_hold(std::size_t size) const noexcept
    {
        return writes_in_flight_ == 0 && !failed_ && !must_wait(size);
    }

    /// SyncWriteStream, for writes the caller knows can_hold: holds the
    /// bytes; otherwise would_block, having written nothing.
    template <class ConstBuffers>
    std::size_t write_some(ConstBuffers const& buffers, error_code& ec)
    {
        if (!can_hold(net::buffer_size(buffers))) {
            ec = net::error::would_block;
            return 0;
        }
        ec = {};
        return hold(buffers);
    }

    template <class ConstBuffers>
    std::size_t write_some(ConstBuffers const& buffers)
    {
        error_code ec;
        auto const n = write_some(buffers, ec);
        if (ec)
            throw boost::system::system_error(ec);
        return n;
    }

    /// SyncReadStream in name only (Beast's synchronous write asks for a
    /// synchronous stream): reads are asynchronous here.
    template <class MutableBuffers>
    std::size_t read_some(MutableBuffers const&, error_code& ec)
    {
        ec = net::error::operation_not_supported;
        return 0;
    }

    template <class MutableBuffers>
    std::size_t read_some(MutableBuffers const& buffers)
    {
        error_code ec;
        read_some(buffers, ec);
        throw boost::system::system_error(ec);
    }

    template <class Handler>
    friend void async_teardown(beast::role_type role, coalescing_stream& stream, Handler&& handler)
    {
        net::async_compose<Handler, void(error_code)>(teardown_op{stream, role}, handler,
                                                      stream.next_);
    }

    friend void teardown(beast::role_type role, coalescing_stream& stream, error_code& ec)
    {
        using beast::websocket::teardown;
        teardown(role, stream.next_, ec);
    }

    /// The most held while a flush is in flight; see the top of this file.
    static constexpr std::size_t max_held_while_flushing = 64 * 1024;

private:
    // Flush buffers that grew past this are released afterwards, so one
    // burst does not pin its memory for the connection's lifetime.
    static constexpr std::size_t retained_buffer_bytes = 16 * 1024;

    bool must_wait(std::size_t size) const noexcept
    {
        return flushing_ && !failed_ && held_.size() + size > max_held_while_flushing;
    }

    // Copies `buffers` behind what is held; returns the bytes taken (none
    // once a write has failed: nothing more can be sent).
    template <class ConstBuffers>
    std::size_t hold(ConstBuffers const& buffers)
    {
        if (failed_)
            return 0;
        auto const size = net::buffer_size(buffers);
        auto const old = held_.size();
        held_.resize(old + size);
        net::buffer_copy(net::buffer(held_.data() + old, size), buffers);
        return size;
    }

    // Waits until no flush holds the way (each finished flush wakes it),
    // then writes as async_write_some would have. The first step always
    // waits, so it never completes inside its initiation.
    template <class ConstBuffers>
    struct write_after_flush_op {
        coalescing_stream& stream;
        ConstBuffers buffers;
        bool writing = false;

        template <class Self>
        void operator()(Self& self, error_code ec = {}, std::size_t n = 0)
        {
            if (writing)
                return self.complete(ec, n);
            auto& s = stream;
            if (s.must_wait(net::buffer_size(buffers))) {
                if (!s.flushed_)
                    s.flushed_.emplace(s.get_executor(), net::steady_timer::time_point::max());
                return s.flushed_->async_wait(std::move(self));
            }
            if (!s.corked_ && !s.flushing_) {
                writing = true;
                ++s.writes_in_flight_;
                return s.next_.async_write_some(
                    buffers, counted_write_handler<Self>{std::move(self), &s.writes_in_flight_});
            }
            auto const taken = s.hold(buffers);
            self.complete(s.failed_, taken);
        }
    };

    // Waits while reading is paused (each resume wakes it), then reads.
    template <class MutableBuffers>
    struct read_op {
        coalescing_stream& stream;
        MutableBuffers buffers;
        bool started = false;

        template <class Self>
        void operator()(Self& self, error_code ec = {}, std::size_t n = 0)
        {
            if (!started) {
                auto& s = stream;
                if (!s.reads_paused_ && s.pacer_ && s.pacer_->pause_before_read())
                    s.reads_paused_ = true;
                if (s.reads_paused_) {
                    if (!s.resumed_)
                        s.resumed_.emplace(s.get_executor(), net::steady_timer::time_point::max());
                    if (s.pacer_)
                        s.pacer_->waits_for_peer();
                    return s.resumed_->async_wait(std::move(self));
                }
                started = true;
                ++stream.reads_in_flight_;
                if (s.pacer_)
                    s.pacer_->waits_for_peer(); // gathered replies leave before we wait
                return stream.next_.async_read_some(buffers, std::move(self));
            }
            --stream.reads_in_flight_;
            stream.bytes_read_ += n;
            if (stream.pacer_)
                stream.pacer_->read_done(n);
            self.complete(ec, n);
        }
    };

    // One flush writes at a time; another flush (the teardown's and the
    // writer's can overlap) waits for it, then writes what is left.
    struct flush_op {
        coalescing_stream& stream;
        bool writing = false;
        bool suspended = false; // completing now is no longer inside the initiation

        template <class Self>
        void operator()(Self& self, error_code ec = {}, std::size_t = 0)
        {
            auto& s = stream;
            if (writing) {
                writing = false;
                s.flushing_ = false;
                s.in_flight_.clear();
                if (ec && !s.failed_)
                    s.failed_ = ec;
                if (s.flushed_)
                    s.flushed_->cancel();
            }
            s.corked_ = false;
            if (s.failed_)
                s.held_.clear(); // nothing more can be sent
            if (s.flushing_) {
                suspended = true;
                if (!s.flushed_)
                    s.flushed_.emplace(s.get_executor(), net::steady_timer::time_point::max());
                return s.flushed_->async_wait(std::move(self));
            }
            if (!s.held_.empty()) {
                suspended = writing = s.flushing_ = true;
                std::swap(s.held_, s.in_flight_);
                return net::async_write(s.next_, net::buffer(s.in_flight_), std::move(self));
            }
            if (!std::exchange(suspended, true))
                return net::post(s.get_executor(), std::move(self));
            release_if_large(s.held_);
            release_if_large(s.in_flight_);
            self.complete(s.failed_);
        }
    };

    // Flushes, then hands the closing to the next layer, whatever the flush
    // reported: the socket must be closed either way.
    struct teardown_op {
        coalescing_stream& stream;
        beast::role_type role;
        enum { flush, close, done } step = flush;

        template <class Self>
        void operator()(Self& self, error_code ec = {})
        {
            switch (step) {
            case flush:
                step = close;
                return stream.async_flush(std::move(self));
            case close: {
                step = done;
                using beast::websocket::async_teardown;
                return async_teardown(role, stream.next_, std::move(self));
            }
            case done:
                return self.complete(ec);
            }
        }
    };

    static void release_if_large(std::string& buffer) noexcept
    {
        if (buffer.capacity() > retained_buffer_bytes)
            std::string().swap(buffer);
    }

    NextLayer next_;
    std::string held_;      // written while corked or flushing, not yet sent
    std::string in_flight_; // being sent by a flush
    std::optional<net::steady_timer> flushed_; // wakes a flush waiting for another
    std::optional<net::steady_timer> resumed_; // wakes a read waiting while paused
    bool reads_paused_ = false;
    read_pacer* pacer_ = nullptr;
    error_code failed_;
    unsigned reads_in_flight_ = 0;
    unsigned writes_in_flight_ = 0; // uncorked writes passed to the next layer
    std::uint64_t bytes_read_ = 0;
    bool corked_ = false;
    bool flushing_ = false;
};

} // namespace mallard::detail

namespace boost::asio {

template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct associator<Associator, mallard::detail::counted_write_handler<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
    static typename Associator<Handler, DefaultCandidate>::type
    get(mallard::detail::counted_write_handler<Handler> const& h) noexcept
    {
        return Associator<Handler, DefaultCandidate>::get(h.handler);
    }

    static auto get(mallard::detail::counted_write_handler<Handler> const& h,
                    DefaultCandidate const& c) noexcept
        -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c))
    {
        return Associator<Handler, DefaultCandidate>::get(h.handler, c);
    }
};

} // namespace boost::asio

#endif
