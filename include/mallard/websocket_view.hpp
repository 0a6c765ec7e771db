// SPDX-License-Identifier: BSL-1.0
/// @file
/// The base class of WebSocket views.
#ifndef MALLARD_WEBSOCKET_VIEW_HPP
#define MALLARD_WEBSOCKET_VIEW_HPP

#include <mallard/close_reason.hpp>
#include <mallard/connection.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/detail/outbound_message.hpp>
#include <mallard/group_history.hpp>
#include <mallard/opcode.hpp>
#include <mallard/options.hpp>
#include <mallard/presence.hpp>
#include <mallard/request.hpp>
#include <mallard/send_status.hpp>
#include <mallard/task.hpp>
#include <mallard/upgrade_decision.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mallard {

namespace detail {
class session_base;
struct view_access;
} // namespace detail

/// Who receives a view's `publish`.
enum class audience {
    everyone, ///< every member of the group, the sender included if a member
    others,   ///< every member but the sending connection
};

/** The base class of every WebSocket endpoint: one object per connection.

    Subclass it, override the callbacks you need, and register the class on a
    path with `mallard::path<View>(pattern, name)`.

    @par Lifecycle
    `on_open` runs once after the opening handshake; `on_receive` once per
    complete message, in order, never overlapping; `on_close` exactly once for
    every connection whose `on_open` started, whatever ended it. An exception
    escaping a callback is logged, the connection is closed with 1011, and
    `on_close` still runs.

    @par Threading
    A connection stays on one of the server's threads for its life; its
    callbacks and spawned tasks run there and never run at the same time as
    each other, so a view needs no lock for its own members.

    @par Class-level options
    Shadow any of the `static constexpr` members below in your view to change
    its default; a route may override it again at registration.

    @par Example
    @code
    class echo_view : public mallard::websocket_view {
    public:
        static constexpr auto receive_timeout = std::chrono::seconds{30};
        mallard::task<> on_receive(std::string_view data, mallard::opcode op) override {
            if (op == mallard::opcode::text) co_await send_text("You sent " + std::string(data));
        }
    };
    @endcode
*/
class websocket_view {
public:
    /// Close with 1001 when nothing arrives for this long. Default 120 s:
    /// long enough for a quiet chat, short enough to reap dead peers.
    static constexpr std::chrono::seconds receive_timeout{120};
    /// The largest frame accepted, in bytes. Default 1 MiB: bounds the
    /// memory one peer can make the server buffer.
    static constexpr std::size_t max_frame_size = 1024 * 1024;
    /// The largest message accepted, in bytes; 0 (the default) means the
    /// same as `max_frame_size`.
    static constexpr std::size_t max_message_size = 0;
    /// The bound on bytes queued for this client. Default 4 MiB: a few
    /// seconds of a busy feed, small enough that 1,000 stalled clients fit.
    static constexpr std::size_t max_send_queue_bytes = 4 * 1024 * 1024;
    /// `send_text`/`send_binary` from the view's own coroutines wait while
    /// its queue holds more than this; 0 (the default) means a quarter of
    /// `max_send_queue_bytes`, leaving room for what others send it.
    static constexpr std::size_t send_queue_high_water = 0;
    /// Send a ping this often; 0 (the default) never. Turn it on to keep
    /// idle connections alive through proxies that drop quiet sockets.
    static constexpr std::chrono::seconds ping_interval{0};
    /// Close with 1001 "pong timeout" when a ping goes unanswered this long:
    /// the client is gone without a FIN or RST (a device off the network, a
    /// laptop asleep), which TCP would notice only after minutes. Its send
    /// queue is dropped, and it gets as long again to answer the close frame
    /// before the connection is cut. Needs `ping_interval`; 0 (the default)
    /// never. Any pong answers; data from the client does not.
    static constexpr std::chrono::seconds pong_timeout{0};
    /// What happens when the send queue passes its bound. Default: close with 1008.
    static constexpr slow_consumer_policy slow_consumer = slow_consumer_policy::close;
    /// Close with 1008 when what is queued for this client makes no progress
    /// for this long: nothing of it could be written, as when the client
    /// stopped reading (a view waiting in its own `send_text` counts too).
    /// 0 never. Default 30 s: far longer than any healthy client stalls, and
    /// a stalled one stops holding its queue's memory well before the
    /// receive timeout would notice it.
    static constexpr std::chrono::seconds send_timeout{30};
    /** The kernel's send buffer for each connection, in bytes (`SO_SNDBUF`;
        Linux doubles the value for its bookkeeping). What the kernel holds
        is out of the slow-consumer policy's reach, and by default Linux grows
        it by itself, up to 4 MiB (`net.ipv4.tcp_wmem`): thousands of a live
        feed's messages a stalled client would still get before the newest.
        Set a few KiB on feeds with `keep_latest` or `drop_oldest` so that
        what a client falls behind by stays in mallard's queue, where the
        policy applies. 0 (the default) keeps the system's.
    */
    static constexpr std::size_t socket_send_buffer = 0;
    /// Negotiate permessage-deflate (RFC 7692) when a client offers it.
    /// Default off: zlib keeps ~300 KiB of state per connection and costs
    /// CPU per message; turn it on for large, repetitive text. The message
    /// size limit applies to the inflated bytes.
    static constexpr bool permessage_deflate = false;
    /// With permessage-deflate on, messages below this many bytes go
    /// uncompressed. Default 256: smaller ones rarely shrink.
    static constexpr std::size_t compression_threshold = 256;
    /// How fast each client may send: messages and bytes per second, their
    /// bursts, and what happens over the limit (pause reading, or close with
    /// 1008). Default: no limit.
    static constexpr rate_limit receive_rate{};
    /// Close with 3008 (`close_code::lifetime_reached`) "max lifetime" after
    /// this long, however busy; 0 (the default) never. Clients reconnect,
    /// e.g. to spread over servers added since.
    static constexpr std::chrono::seconds max_lifetime{0};
    /// How long before the time set by `expire_at` the view hears
    /// `on_expiring`. Default 30 s: time for a client to fetch a new token.
    static constexpr std::chrono::seconds expiry_notice{30};
    /** Subprotocols this view speaks (`Sec-WebSocket-Protocol`), most
        preferred first. Of those a client offers, the first here is chosen
        (RFC 6455 section 4.2.2) and readable as `subprotocol()`. Default: none.
        @code
        static constexpr std::string_view subprotocols[] = {"chat.v2", "chat.v1"};
        @endcode
    */
    static constexpr std::array<std::string_view, 0> subprotocols{};
    /// Refuse (HTTP 400) an upgrade that agrees on none of `subprotocols`,
    /// rather than accept it without one. Default false.
    static constexpr bool require_subprotocol = false;

    websocket_view() = default;
    websocket_view(websocket_view const&) = delete;
    websocket_view& operator=(websocket_view const&) = delete;
    virtual ~websocket_view() = default;

    /** Decides whether this connection may open, before the 101 response.

        Runs once, on the connection's thread, with `request()` and
        `subprotocol()` available; it may await (a token lookup, say) but is
        cut off at the server's `handshake_timeout` (the client gets 503), and
        an exception escaping it answers 500. What it stores in the view's
        members (the authenticated user, say) is there in `on_open` and after.
        Do not send from it: the connection is not open yet. Default: accept.

        @par Example
        @code
        mallard::task<mallard::upgrade_decision> on_upgrade() override {
            user_ = co_await sessions_.find(request().query_param("token").value_or(""));
            if (!user_)
                co_return mallard::upgrade_decision::reject(
                    mallard::http::status::unauthorized, "Wrong or missing token\n");
            co_return mallard::upgrade_decision::accept();
        }
        @endcode
    */
    virtual task<upgrade_decision> on_upgrade() { co_return upgrade_decision::accept(); }

    /// Runs once after the opening handshake. Default: nothing.
    virtual task<> on_open() { co_return; }

    /** Runs once per complete message, in order.

        @param data The payload; valid until this coroutine returns. Copy it
        to keep it longer.
        @param op `opcode::text` (valid UTF-8, checked) or `opcode::binary`.
    */
    virtual task<> on_receive(std::string_view data, opcode op)
    {
        (void)data;
        (void)op;
        co_return;
    }

    /** Runs exactly once when the connection has ended, after every spawned
        task has been cancelled and has finished. Sends are no-ops by now.
    */
    virtual task<> on_close(close_reason why)
    {
        (void)why;
        co_return;
    }

    /** Runs `expiry_notice` before the time set by `expire_at` (once per
        call of it), as a task of the connection: ask the client for fresh
        credentials, and call `expire_at` with their expiry to extend. A
        connection not extended by then is closed with 3000
        (`close_code::expired`) "expired". Default: nothing.
    */
    virtual task<> on_expiring() { co_return; }

    /** Sets when this connection expires, e.g. when the token it was opened
        with does; callable from `on_upgrade` on, again to extend. Wall-clock
        time, as tokens carry it. See `on_expiring`.
    */
    MALLARD_DECL void expire_at(std::chrono::system_clock::time_point when);

    /** Queues a text message for this client.

        From the view's own callbacks and tasks, it waits while the queue holds
        more than `send_queue_high_water` bytes, so a push loop runs at the
        client's pace. It never throws.

        @return `queued`, `dropped` by the slow-consumer policy, or `closed`.
    */
    template <class Bytes>
        requires std::constructible_from<std::string, Bytes&&>
    task<send_status> send_text(Bytes&& text)
    {
        return send({detail::outbound_message::kind::text, own(std::forward<Bytes>(text)), {}});
    }

    /// Queues a text message whose bytes are shared with other recipients.
    task<send_status> send_text(std::shared_ptr<std::string const> text)
    {
        return send({detail::outbound_message::kind::text, {}, std::move(text)});
    }

    /// Queues a binary message for this client; see `send_text`.
    template <class Bytes>
        requires std::constructible_from<std::string, Bytes&&>
    task<send_status> send_binary(Bytes&& data)
    {
        return send({detail::outbound_message::kind::binary, own(std::forward<Bytes>(data)), {}});
    }

    /// Queues a binary message whose bytes are shared with other recipients.
    task<send_status> send_binary(std::shared_ptr<std::string const> data)
    {
        return send({detail::outbound_message::kind::binary, {}, std::move(data)});
    }

    /** Queues a ping; the client's pong counts as activity.

        @param payload At most 125 bytes (RFC 6455 section 5.5); longer is cut.
    */
    MALLARD_DECL send_status ping(std::string payload = {});

    /** Starts the closing handshake once the messages already queued are sent.

        @param code A code that may be sent: 1000-1003, 1007-1011, 1012-1013
        or 3000-4999.
        @param reason At most 123 bytes of UTF-8; longer is cut.
        @throws std::invalid_argument for a code RFC 6455 forbids sending
        (1005, 1006, 1015, unassigned ones).
        @see RFC 6455 section 7.4
    */
    MALLARD_DECL void close(close_code code = close_code::normal, std::string reason = {});

    /** Runs `t` on this connection's thread as a connection-scoped task.

        The task is cancelled when the connection ends (its pending
        `co_await` throws `operation_aborted`), and `on_close` runs only after
        it has finished. An exception escaping it closes the connection with 1011.
    */
    MALLARD_DECL void spawn(task<> t);

    /** Joins a group (a room, a topic); membership ends with the connection.

        Joining twice is joining once. Call it from the view's own callbacks
        and tasks.
    */
    MALLARD_DECL void join(std::string group);

    /** Joins a group from a position its client saw before, and with a
        value for the group's presence list.

        For a group with history (`group_policy::history_size`), the result
        holds the messages to hand the client first: every message after
        `from` when `recovered`, otherwise the last ones the group keeps
        (`since{}` asks for those). From its return on, the member gets the
        later messages live, with no gap and no duplicate; send the result
        before you next wait and the client sees them in offset order. For a
        group with presence (`group_policy::presence`), `presence` is this
        member's value in `presence(group)` and in the notices.

        Awaitable, so that a history kept elsewhere (e.g. in Redis) fits the
        same call. Joining a group the connection is a member of already
        does nothing and returns an empty result.

        @note g++ 12 miscompiles a braced temporary written inside a
        `co_await` expression (`co_await join(g, mallard::since{7, e})`
        frees a string twice): build the `since` in a named variable first.
    */
    [[nodiscard]] MALLARD_DECL task<join_result> join(std::string const& group,
                                                      since const& from,
                                                      std::string const& presence = {});

    /// Leaves a group, if a member.
    MALLARD_DECL void leave(std::string const& group);

    /// The members of a group with presence (`group_policy::presence`);
    /// empty for other groups. As `server::presence`.
    MALLARD_DECL task<std::vector<presence_member>> presence(std::string const& group) const;

    /// The history of a group with history (`group_policy::history_size`):
    /// its position and the messages it keeps; empty for other groups.
    MALLARD_DECL task<group_history> history(std::string const& group) const;

    /** Sends a message to every member of `group`, on every thread (and,
        through the server's backplane, every process).

        The payload is built once and shared; each member gets it through its
        own queue, so no member, slow or not, delays the sender or the others.
        Never waits, never throws.

        @return the number of members on this server when it was published.
    */
    std::size_t publish(std::string const& group, std::string message,
                        opcode op = opcode::text, audience to = audience::everyone)
    {
        return publish(group, std::make_shared<std::string const>(std::move(message)), op, to);
    }

    /// Publishes a payload already shared with other recipients.
    MALLARD_DECL std::size_t publish(std::string const& group,
                                     std::shared_ptr<std::string const> message,
                                     opcode op = opcode::text, audience to = audience::everyone);

    /// The number of members of `group` on this server.
    MALLARD_DECL std::size_t group_size(std::string const& group) const;

    /** Bytes queued for this client and not yet written (as uWebSockets'
        `getBufferedAmount`): e.g. to skip an update for a client that has
        not taken the last one. 0 before `on_open` and after the end.
    */
    MALLARD_DECL std::size_t buffered_amount() const noexcept;

    /// The upgrade request; available from `on_upgrade` on.
    /// @throws std::logic_error when called in a constructor.
    MALLARD_DECL mallard::request const& request() const;

    /// The subprotocol agreed with the client; empty when none. Available
    /// from `on_upgrade` on.
    MALLARD_DECL std::string const& subprotocol() const;

    /// The limits in force on this connection.
    MALLARD_DECL connection_limits const& limits() const;

    /// A handle to this connection that other threads and views may keep.
    MALLARD_DECL mallard::connection connection() const;

    /// Whether the connection is open: no close requested, none received.
    MALLARD_DECL bool is_open() const noexcept;

private:
    friend struct detail::view_access;

    // The bytes as a string the queue owns: a moved-in string as it is;
    // anything else copied into a buffer the connection has used before.
    template <class Bytes>
    std::string own(Bytes&& bytes)
    {
        if constexpr (std::is_same_v<Bytes, std::string>) { // an rvalue string
            return std::move(bytes);
        } else if constexpr (std::is_convertible_v<Bytes&&, std::string_view>) {
            std::string buffer = spare_buffer();
            buffer.assign(std::string_view(bytes));
            return buffer;
        } else {
            return std::string(std::forward<Bytes>(bytes));
        }
    }

    // A written message's buffer, when the connection has one to spare.
    MALLARD_DECL std::string spare_buffer() noexcept;
    MALLARD_DECL task<send_status> send(detail::outbound_message message);
    MALLARD_DECL detail::session_base const& attached() const;

    detail::session_base* session_ = nullptr;
};

namespace detail {
/// Lets a session attach itself to the view it owns.
struct view_access {
    static void attach(websocket_view& view, session_base* session) { view.session_ = session; }
};
} // namespace detail

} // namespace mallard

#ifdef MALLARD_HEADER_ONLY
#include <mallard/impl/websocket_view.ipp>
#endif

#endif
