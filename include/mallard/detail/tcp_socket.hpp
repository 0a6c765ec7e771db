// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_TCP_SOCKET_HPP
#define MALLARD_DETAIL_TCP_SOCKET_HPP

// An accepted TCP socket, on the io_context of the worker that serves it.
// The acceptor makes it with that executor type (async_accept into a
// worker's io_context), so nothing above it pays for a type-erased executor.

#include <mallard/detail/config.hpp>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace mallard::detail {

using tcp_socket = net::basic_stream_socket<net::ip::tcp, executor_type>;

} // namespace mallard::detail

#endif
