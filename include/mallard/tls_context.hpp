// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_TLS_CONTEXT_HPP
#define MALLARD_TLS_CONTEXT_HPP

// The seam between the server and TLS. The server only needs to hand a
// freshly accepted socket to "whatever serves wss://"; the OpenSSL side lives
// in <mallard/tls.hpp>, so programs without TLS never include or link OpenSSL.

#include <mallard/detail/config.hpp>
#include <mallard/task.hpp>

#include <boost/asio/ip/tcp.hpp>

namespace mallard {

namespace detail {
struct server_state;
struct worker;
} // namespace detail

/** A loaded certificate and key that serve wss://.

    Made by `mallard::load_tls` (in `<mallard/tls.hpp>`, CMake target
    `mallard::tls`) and set in `server_options::tls`. Immutable once made;
    one context may serve several servers.
*/
class tls_context {
public:
    virtual ~tls_context() = default;

    /// Serves one connection accepted on a TLS port: the TLS handshake, then
    /// HTTP and WebSocket as on a plain port. Runs on the worker's thread.
    virtual task<void> serve(net::ip::tcp::socket socket, detail::server_state& server,
                             detail::worker& w) const = 0;

protected:
    tls_context() = default;
    tls_context(tls_context const&) = default;
    tls_context& operator=(tls_context const&) = default;
};

} // namespace mallard

#endif
