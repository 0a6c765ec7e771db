// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_IMPL_CONNECTION_IPP
#define MALLARD_IMPL_CONNECTION_IPP

#include <mallard/connection.hpp>
#include <mallard/detail/session_base.hpp>

#include <utility>

namespace mallard {

MALLARD_DECL void connection::close(close_code code, std::string reason) const
{
    if (auto session = session_.lock())
        session->close(code, std::move(reason), close_cause::server_closed);
}

MALLARD_DECL bool connection::is_open() const noexcept
{
    auto session = session_.lock();
    return session && session->is_open();
}

MALLARD_DECL std::uint64_t connection::id() const noexcept
{
    auto session = session_.lock();
    return session ? session->id() : 0;
}

MALLARD_DECL std::size_t connection::buffered_amount() const noexcept
{
    auto session = session_.lock();
    return session ? session->buffered_amount() : 0;
}

MALLARD_DECL boost::asio::ip::address connection::client_address() const
{
    auto session = session_.lock();
    return session ? session->request().client_address() : boost::asio::ip::address{};
}

MALLARD_DECL boost::asio::ip::address connection::peer_address() const
{
    auto session = session_.lock();
    return session ? session->request().peer_address() : boost::asio::ip::address{};
}

MALLARD_DECL send_status connection::send(detail::outbound_message message) const
{
    auto session = session_.lock();
    return session ? session->send_now(std::move(message)) : send_status::closed;
}

} // namespace mallard

#endif
