// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_CONFIG_HPP
#define MALLARD_DETAIL_CONFIG_HPP

// The one place where mallard names its dependencies' namespaces, and the
// switch between header-only use and separate compilation.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

/*  MALLARD_SEPARATE_COMPILATION: define it for every translation unit of a
    program (the CMake target mallard::compiled does) and compile
    <mallard/src.hpp> in exactly one of them. Then the public headers are
    declarations, and the server, its sessions and the HTTP handling are
    compiled once, in that translation unit. Without it, mallard is header-only:
    every body is included, inline, at the end of its header.
*/
#ifdef MALLARD_SEPARATE_COMPILATION
#define MALLARD_DECL
#else
#define MALLARD_HEADER_ONLY 1
#define MALLARD_DECL inline
#endif

// Declared here so the aliases below need no heavy include.
namespace boost::beast::http {}
namespace boost::beast::websocket {}

namespace mallard {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using error_code = boost::system::error_code;

namespace detail {
/// Every connection is pinned to one single-threaded io_context for its life.
using executor_type = net::io_context::executor_type;

/// Every internal await: errors come back as values, never as exceptions.
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
} // namespace detail
} // namespace mallard

#endif
