// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_IMPL_WEBSOCKET_VIEW_IPP
#define MALLARD_IMPL_WEBSOCKET_VIEW_IPP

// What a view does through the connection it is attached to.

#include <mallard/connection.hpp>
#include <mallard/detail/session_base.hpp>
#include <mallard/websocket_view.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace mallard {

MALLARD_DECL send_status websocket_view::ping(std::string payload)
{
    if (payload.size() > 125)
        payload.resize(125);
    return session_ ? session_->send_now({detail::outbound_message::kind::ping,
                                          std::move(payload), {}})
                    : send_status::closed;
}

MALLARD_DECL void websocket_view::close(close_code code, std::string reason)
{
    if (!is_sendable(code))
        throw std::invalid_argument("mallard::websocket_view::close: code " +
                                    std::to_string(static_cast<unsigned>(code)) +
                                    " may not be sent; use 1000-1003, 1007-1013 or 3000-4999");
    if (session_)
        session_->close(code, std::move(reason), close_cause::server_closed);
}

MALLARD_DECL void websocket_view::spawn(task<> t)
{
    if (session_)
        session_->spawn(std::move(t));
}

MALLARD_DECL void websocket_view::join(std::string group)
{
    if (session_)
        session_->join(std::move(group));
}

MALLARD_DECL task<join_result> websocket_view::join(std::string const& group, since const& from,
                                                  std::string const& presence)
{
    // The arguments are copied into this frame before the first suspension
    // (the caller's temporaries live until then): g++ 12 copies aggregates
    // passed by value into a coroutine frame byte for byte, which breaks
    // their strings.
    std::string name = group;
    detail::join_request request;
    request.from = from;
    request.presence = presence;
    join_result joined;
    if (session_)
        joined = co_await session_->join_from(name, request);
    co_return joined;
}

MALLARD_DECL task<std::vector<presence_member>>
websocket_view::presence(std::string const& group) const
{
    if (!session_)
        co_return std::vector<presence_member>{};
    co_return session_->groups().presence(group);
}

MALLARD_DECL task<group_history> websocket_view::history(std::string const& group) const
{
    if (!session_)
        co_return group_history{};
    auto history = co_await session_->read_history(group);
    co_return history;
}

MALLARD_DECL void websocket_view::leave(std::string const& group)
{
    if (session_)
        session_->leave(group);
}

MALLARD_DECL std::size_t websocket_view::publish(std::string const& group,
                                                 std::shared_ptr<std::string const> message,
                                                 opcode op, audience to)
{
    if (!session_)
        return 0;
    session_->count_publish();
    return session_->groups().publish(group, std::move(message), op,
                                      to == audience::others ? session_->id() : 0);
}

MALLARD_DECL void websocket_view::expire_at(std::chrono::system_clock::time_point when)
{
    if (session_)
        session_->expire_at(when);
}

MALLARD_DECL std::size_t websocket_view::buffered_amount() const noexcept
{
    return session_ ? session_->buffered_amount() : 0;
}

MALLARD_DECL std::size_t websocket_view::group_size(std::string const& group) const
{
    return session_ ? session_->groups().size(group) : 0;
}

MALLARD_DECL mallard::request const& websocket_view::request() const
{
    return attached().request();
}

MALLARD_DECL std::string const& websocket_view::subprotocol() const
{
    return attached().subprotocol();
}

MALLARD_DECL connection_limits const& websocket_view::limits() const
{
    return attached().limits();
}

MALLARD_DECL mallard::connection websocket_view::connection() const
{
    return mallard::connection(session_ ? session_->weak_from_this()
                                        : std::weak_ptr<detail::session_base>{});
}

MALLARD_DECL bool websocket_view::is_open() const noexcept
{
    return session_ && session_->is_open();
}

MALLARD_DECL std::string websocket_view::spare_buffer() noexcept
{
    return session_ ? session_->spare_buffer() : std::string{};
}

MALLARD_DECL task<send_status> websocket_view::send(detail::outbound_message message)
{
    if (!session_)
        co_return send_status::closed;
    // From this connection's own thread, wait while its queue is over the
    // high-water mark, so that a view pushing to its client never outruns it.
    auto const own_thread = session_->executor().running_in_this_thread();
    auto const status = session_->send_now(std::move(message));
    if (own_thread && status == send_status::queued && session_->over_high_water())
        co_await session_->until_drained();
    co_return status;
}

MALLARD_DECL detail::session_base const& websocket_view::attached() const
{
    if (!session_)
        throw std::logic_error("mallard::websocket_view: request(), subprotocol() and "
                               "limits() are available from on_upgrade on, not in a "
                               "constructor");
    return *session_;
}

} // namespace mallard

#endif
