// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_IMPL_SERVER_IPP
#define MALLARD_IMPL_SERVER_IPP

#include <mallard/detail/server_impl.hpp>
#include <mallard/server.hpp>

#include <memory>
#include <utility>

namespace mallard {

MALLARD_DECL server::server(server_options options, router routes)
    : impl_(std::make_unique<detail::server_impl>(std::move(options), std::move(routes)))
{
}

MALLARD_DECL server::~server() = default;

MALLARD_DECL unsigned short server::port() const noexcept { return impl_->port(); }

MALLARD_DECL unsigned short server::plain_port() const noexcept { return impl_->plain_port(); }

MALLARD_DECL unsigned short server::admin_port() const noexcept { return impl_->admin_port(); }

MALLARD_DECL std::size_t server::connection_count() const noexcept
{
    return impl_->connection_count();
}

MALLARD_DECL void server::spawn(task<> t) { impl_->spawn(std::move(t)); }

MALLARD_DECL std::size_t server::publish(std::string const& group, std::string message, opcode op)
{
    return impl_->publish(group, std::move(message), op);
}

MALLARD_DECL std::size_t server::group_size(std::string const& group) const
{
    return impl_->group_size(group);
}

MALLARD_DECL std::vector<presence_member> server::presence(std::string const& group) const
{
    return impl_->groups().presence(group);
}

MALLARD_DECL group_history server::history(std::string const& group) const
{
    return impl_->history(group);
}

MALLARD_DECL server_stats server::stats() const { return impl_->stats(); }

MALLARD_DECL server_metrics server::metrics() const { return impl_->metrics(); }

MALLARD_DECL void server::run() { impl_->run(); }

MALLARD_DECL void server::stop() { impl_->stop(); }

MALLARD_DECL void server::drain(std::chrono::milliseconds window) { impl_->drain(window); }

} // namespace mallard

#endif
